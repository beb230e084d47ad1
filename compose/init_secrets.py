"""Create the compose stack's missing secret files (random values): ``python3 compose/init_secrets.py [FOLDER]``.

Writes into compose/secrets/ (gitignored) or the folder given as the argument, which docker-compose.yml reads as
``${META_COMPOSE_SECRETS:-./secrets}``. Existing files are kept, so running it again changes nothing; the Airflow
admin password the control plane signs in with is taken from ``airflow_passwords.json`` when that file exists.
Prints the names it wrote, never a value. Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path

# local development stack: the postgres service's POSTGRES_PASSWORD placeholder in docker-compose.yml
POSTGRES_PASSWORD = "airflow"  # noqa: S105


def write(folder: Path, name: str, text: str, written: list[str]) -> None:
    path = folder / name
    if path.exists():
        return
    path.touch(mode=0o600)
    path.write_text(text, encoding="utf-8")
    written.append(name)


def init_secrets(folder: Path) -> list[str]:
    """Create the missing secret files in ``folder``; returns the names written."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    passwords_file = folder / "airflow_passwords.json"
    if passwords_file.exists():
        admin = json.loads(passwords_file.read_text(encoding="utf-8"))["admin"]
    else:
        admin = secrets.token_urlsafe(18)
        passwords = {"admin": admin, "viewer": secrets.token_urlsafe(18)}
        write(folder, passwords_file.name, json.dumps(passwords) + "\n", written)
    write(folder, "airflow_admin_password", admin, written)
    write(folder, "jwt_secret", secrets.token_hex(32), written)
    write(folder, "openlineage_ingest_token", "meta_ingest_" + secrets.token_urlsafe(32), written)
    write(folder, "meta_admin_token", "meta_admin_" + secrets.token_urlsafe(32), written)
    write(folder, "postgres_password", POSTGRES_PASSWORD, written)
    return written


def main(argv: list[str]) -> None:
    folder = Path(argv[0]) if argv else Path(__file__).resolve().parent / "secrets"
    written = init_secrets(folder)
    print(f"{folder}: wrote {', '.join(written)}" if written else f"{folder}: every secret file exists already")


if __name__ == "__main__":
    main(sys.argv[1:])
