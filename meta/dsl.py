"""The Python DSL, as pipeline files import it (``from meta.dsl import pipeline, shell``).

A public name only: the implementation lives in ``meta.authoring.dsl``, whose ``__all__`` is exactly this module's.
"""

from meta.authoring.dsl import *  # noqa: F403 - re-export the DSL's __all__ unchanged
from meta.authoring.dsl import __all__ as __all__
