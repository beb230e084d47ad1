"""Integration tests of the Airflow adapter run against one real Airflow per session (tests/fixtures).

The fixture is imported rather than listed in ``pytest_plugins``: pytest refuses ``pytest_plugins`` outside the
top-level conftest. The fixture reuses an Airflow another registration already started, so a session has one.
"""

from tests.fixtures.airflow_server import airflow_server  # noqa: F401 - a pytest fixture
