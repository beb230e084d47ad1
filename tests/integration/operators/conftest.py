"""Real servers for the operator tests, started once per session on free loopback ports: a Slack-like webhook
(http.server in a thread), an SMTP server (aiosmtpd) with STARTTLS/implicit TLS and AUTH on a self-signed certificate
generated here, and scratch schemas in the PostgreSQL at 127.0.0.1:5432."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------------------------------------- webhook (Slack)


@dataclass
class Hook:
    """What the stand-in answers on one path, and what it received."""

    plan: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # answered in order, then 200
    received: list[dict[str, Any]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)


class WebhookServer:
    def __init__(self) -> None:
        self.hooks: dict[str, Hook] = {}
        hooks = self.hooks

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                hook = hooks.setdefault(self.path, Hook())
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                hook.received.append(json.loads(body or b"{}"))
                hook.times.append(time.monotonic())
                status, headers = hook.plan.pop(0) if hook.plan else (200, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"error")

            do_PUT = do_POST

            def log_message(self, *_args: Any) -> None:  # keep test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def hook(self, *plan: tuple[int, dict[str, str]]) -> tuple[str, Hook]:
        """A fresh path answering ``plan`` first."""
        path = f"/services/T000/B000/{uuid.uuid4().hex}"
        self.hooks[path] = Hook(plan=list(plan))
        return self.url(path), self.hooks[path]


@pytest.fixture(scope="session")
def webhook_server() -> Iterator[WebhookServer]:
    server = WebhookServer()
    yield server
    server.server.shutdown()
    server.server.server_close()


# ---------------------------------------------------------------------------------------------- SMTP


def self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meta-test-smtp")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp.crt", directory / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


SMTP_USER, SMTP_PASSWORD = "alerts", "smtp-pass-0f9a8b7c"


@dataclass
class SmtpServers:
    starttls_port: int
    ssl_port: int
    ca_file: Path
    messages: list[Any]
    logins: list[str]


@pytest.fixture(scope="session")
def smtp_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServers]:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = self_signed(tmp_path_factory.mktemp("smtp-tls"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    messages: list[Any] = []
    logins: list[str] = []

    class Handler:
        async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
            from email import message_from_bytes

            messages.append(message_from_bytes(envelope.original_content))
            return "250 Message accepted for delivery"

    def authenticate(_server: Any, _session: Any, _envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == SMTP_USER
            and data.password.decode() == SMTP_PASSWORD
        )
        if ok:
            logins.append(mechanism)
        return AuthResult(success=ok, handled=False)

    starttls = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=context,
        require_starttls=True,
        authenticator=authenticate,
        auth_require_tls=True,
    )
    implicit = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=free_port(),
        ssl_context=context,
        authenticator=authenticate,
        auth_require_tls=False,  # the whole connection is TLS; aiosmtpd only tracks STARTTLS
    )
    starttls.start()
    implicit.start()
    yield SmtpServers(starttls.port, implicit.port, cert, messages, logins)
    starttls.stop()
    implicit.stop()


# ---------------------------------------------------------------------------------------------- PostgreSQL


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A scratch schema, dropped afterwards."""
    schema = f"meta_test_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(PG_URL, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield schema
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()
