"""``${secret:NAME}`` resolution through the provider chain, and redaction from logs and exceptions."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from meta.execution import secrets
from meta.spec.errors import MetaError

pytestmark = pytest.mark.usefixtures("clean_secrets")


def test_env_provider_normalises_the_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("META_SECRET_SLACK_DATA_TEAM", "https://hooks.example/T0/B0/xyz")
    assert secrets.resolve("${secret:slack.data-team}") == "https://hooks.example/T0/B0/xyz"


def test_file_provider_strips_one_newline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("META_SECRETS_DIR", str(tmp_path))
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "password").write_text("s3cr3t-pw\n\n")
    assert secrets.resolve({"url": "postgresql://u:${secret:db/password}@h/d"}) == {
        "url": "postgresql://u:s3cr3t-pw\n@h/d"
    }
    assert secrets.FileSecretProvider(tmp_path).get("../etc/passwd") is None


def test_env_wins_over_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("META_SECRETS_DIR", str(tmp_path))
    (tmp_path / "token").write_text("from-file")
    monkeypatch.setenv("META_SECRET_TOKEN", "from-env")
    assert secrets.get_secret("token") == "from-env"


def test_runtime_provider_comes_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("META_SECRET_TOKEN", "from-env")

    class Backend:
        name = "backend"

        def get(self, name: str) -> str | None:
            return "from-backend" if name == "token" else None

    with secrets.runtime_provider(Backend()):
        assert secrets.get_secret("token") == "from-backend"
        assert secrets.get_secret("TOKEN") == "from-env"
    assert secrets.get_secret("token") == "from-env"


def test_missing_secret_says_where_it_looked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("META_SECRETS_DIR", str(tmp_path))
    with pytest.raises(secrets.SecretNotFound) as info:
        secrets.resolve(["ok", "${secret:nope-x}"])
    assert "environment variable META_SECRET_NOPE_X" in str(info.value)
    assert f"file {tmp_path / 'nope-x'}" in str(info.value)


def test_log_records_from_any_logger_are_redacted(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("META_SECRET_API_TOKEN", "tok-12345-abcdef")
    token = secrets.get_secret("api_token")
    caplog.set_level(logging.DEBUG)
    logging.getLogger("some.library").info("calling with %s", token)
    logging.getLogger("meta.x").warning(f"inline {token} too")
    try:
        raise RuntimeError(f"boom {token}")
    except RuntimeError:
        logging.getLogger("meta.y").exception("failed")
    handler = logging.StreamHandler()
    logging.getLogger("meta.z").addHandler(handler)
    logging.getLogger("meta.z").error("to stderr: %s", token)
    logging.getLogger("meta.z").removeHandler(handler)
    assert "calling with ***" in caplog.text and "inline *** too" in caplog.text
    assert token not in caplog.text
    assert token not in capsys.readouterr().err
    assert "boom ***" in caplog.text


def test_exception_messages_are_redacted_and_keep_meta_types(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("META_SECRET_PW", "hunter2-long")
    pw = secrets.get_secret("pw")

    class MyError(MetaError, ValueError):
        pass

    with pytest.raises(MyError) as info, secrets.redacting():
        raise MyError(f"login failed for {pw}")
    assert str(info.value) == "login failed for ***"

    with pytest.raises(secrets.RedactedError) as info2, secrets.redacting():
        try:
            raise KeyError(pw)
        except KeyError as exc:
            raise OSError("socket closed") from exc
    assert pw not in str(info2.value) and info2.value.__cause__ is None
    assert "caused by KeyError: '***'" in str(info2.value)

    clean = ValueError("nothing secret")
    assert secrets.redact_exception(clean) is clean


def test_short_values_are_not_masked() -> None:
    secrets.mark_sensitive("ab")
    assert secrets.redact("ab cd") == "ab cd"


def test_has_reference() -> None:
    assert secrets.has_reference({"a": ["x", "${secret:A}"]})
    assert not secrets.has_reference({"a": "$secret:A"})
