"""The control plane is an optional extra: the core and its CLI import none of its dependencies until used."""

from __future__ import annotations

import subprocess
import sys

from meta.service.extra import SERVER_MODULES, missing_server_modules


def test_the_core_and_its_cli_import_no_server_dependency() -> None:
    probe = (
        "import sys, meta, meta.cli\n"
        "from meta.plugins.manager import observer_kinds, targets\n"
        "kinds = observer_kinds(); targets()\n"
        "from meta.cli import cli\n"
        "cli.load_plugins()\n"
        f"loaded = [m for m in {SERVER_MODULES!r} if m in sys.modules]\n"
        "assert sorted(kinds) == ['airflow', 'local', 'prefect'], kinds\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"imported without being used: {result.stdout.strip()}"


def test_a_missing_extra_is_a_clear_error(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import importlib.util

    from meta.service import extra
    from meta.spec.errors import MetaError

    real = importlib.util.find_spec
    monkeypatch.setattr(extra.importlib.util, "find_spec", lambda name: None if name == "uvicorn" else real(name))
    assert missing_server_modules() == ["uvicorn"]
    try:
        extra.require_server_extra()
    except MetaError as exc:
        assert "uvicorn" in str(exc) and "meta-orchestrator[server]" in str(exc)
    else:
        raise AssertionError("no error for a missing uvicorn")
