"""``python -m meta``: the ``meta`` command, for environments where the console script is not on PATH."""

from meta.cli import main

main()
