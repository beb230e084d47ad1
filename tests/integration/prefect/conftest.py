"""Integration tests of the Prefect adapter against one real Prefect server + process worker per session.

The fixture is imported rather than listed in ``pytest_plugins`` (refused outside the top-level conftest); it reuses
a server another registration already started, so a session has one.
"""

from tests.fixtures.prefect_server import prefect_server  # noqa: F401 - a pytest fixture
