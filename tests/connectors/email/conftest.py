"""Real mail servers for the email tests.

``dovecot``: a throwaway Dovecot 2.3 (Debian's ``dovecot-imapd``) with its own
config in a temp dir, started with ``dovecot -F -c FILE`` once per session.
It needs root (Dovecot's privilege separation), so without root the tests
that use it are skipped. It offers plain IMAP and STARTTLS with a self-signed
certificate made by ``openssl``.

``smtp_sink``: an aiosmtpd server on a free port that records each mail it
accepts, and can answer with scripted failures first.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

USER, PASSWORD = "bot@helpline.test", "secret"
SAMPLES = Path(__file__).with_name("samples")
RESPONSES = Path(__file__).with_name("responses")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


DOVECOT_CONF = """\
protocols = imap
base_dir = {root}/base
state_dir = {root}/state
listen = 127.0.0.1
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
default_internal_user = dovecot
default_login_user = dovenull
log_path = {root}/dovecot.log
mail_location = maildir:{root}/mail/%n
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/passwd
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={root}/mail/%n
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


@dataclass
class Dovecot:
    """A running Dovecot and stdlib-imaplib helpers to look into it (run them in a thread)."""

    root: Path
    port: int
    ca_file: Path
    host: str = "127.0.0.1"

    def connect(self, mailbox: str) -> imaplib.IMAP4:
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        client.login(USER, PASSWORD)
        client.select(mailbox)
        return client

    def new_mailbox(self) -> str:
        name = f"t{uuid.uuid4().hex[:10]}"
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        client.login(USER, PASSWORD)
        client.create(name)
        client.logout()
        return name

    def append(self, mailbox: str, raw: bytes) -> None:
        client = self.connect(mailbox)
        typ, data = client.append(
            mailbox, None, None, raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        )
        assert typ == "OK", data
        client.logout()

    def flags(self, mailbox: str) -> dict[str, set[str]]:
        """Message-ID -> flags, read with FETCH (FLAGS ...) which changes nothing."""
        client = self.connect(mailbox)
        _typ, data = client.uid("fetch", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        client.logout()
        found: dict[str, set[str]] = {}
        for item in data:
            if not isinstance(item, tuple):
                continue
            meta, header = item
            flags = meta.decode().split("FLAGS (")[1].split(")")[0].split()
            msg_id = message_from_bytes(header, policy=policy.default)["Message-ID"]
            found[str(msg_id).strip()] = set(flags)
        return found

    def kick(self) -> None:
        """Drop every IMAP session of the user, as a server restart would."""
        conf = str(self.root / "dovecot.conf")
        subprocess.run(
            ["doveadm", "-c", conf, "kick", USER], check=True, capture_output=True, timeout=30
        )


@pytest.fixture
def mailbox(dovecot: Dovecot) -> str:
    """A fresh, empty mailbox of the test user."""
    return dovecot.new_mailbox()


def _make_cert(root: Path) -> None:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dovecot exited: {log.read_text() if log.exists() else ''}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError("dovecot did not open its port")


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    if os.geteuid() != 0:
        pytest.skip("Dovecot needs root to drop privileges to its own users; run as root")
    if shutil.which("dovecot") is None or shutil.which("openssl") is None:
        pytest.skip("no dovecot or openssl binary (apt-get install dovecot-imapd openssl)")
    # Under /tmp (not pytest's 0700 tmp dirs): the dovecot users must traverse it.
    root = Path(tempfile.mkdtemp(prefix="helpline-dovecot-"))
    root.chmod(0o755)
    for sub in ("base", "state"):
        (root / sub).mkdir()
        (root / sub).chmod(0o755)
    (root / "mail").mkdir()
    shutil.chown(root / "mail", "dovecot", "dovecot")
    (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    _make_cert(root)
    port = free_port()
    conf = root / "dovecot.conf"
    conf.write_text(DOVECOT_CONF.format(root=root, port=port))
    proc = subprocess.Popen(["dovecot", "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        _wait_for_port(port, proc, root / "dovecot.log")
        yield Dovecot(root, port, root / "cert.pem")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class SinkHandler:
    """Records accepted mail; answers ``failures`` (e.g. ``"451 try later"``) first."""

    failures: list[str] = field(default_factory=list)
    received: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"relay",
            b"relay-secret",
        )
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.failures:
            answer = self.failures.pop(0)
            self.refused.append(answer)
            return answer
        raw = envelope.original_content or b""
        msg = message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.received.append(msg)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 OK"


@dataclass
class SmtpSink:
    handler: SinkHandler
    port: int
    host: str = "127.0.0.1"
    controller: Controller | None = None

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.handler.received if address in str(m["To"])]


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    handler = SinkHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpSink(handler, port, controller=controller)
    finally:
        controller.stop()


def email_section(dovecot: Dovecot, mailbox: str, sink: SmtpSink, **extra: Any) -> str:
    """The ``connectors.email`` YAML for a test app."""
    lines = {
        "enabled": "true",
        "address": "support@helpline.test",
        "display_name": "Helpline Support",
        "poll_interval_s": "30",
        "reconnect_min_s": "0.1",
        "reconnect_max_s": "1",
        "timeout_s": "10",
        "imap": (
            f"{{host: 127.0.0.1, port: {dovecot.port}, user: '{USER}', password: {PASSWORD}, "
            f"mailbox: {mailbox}, ssl: false, starttls: false}}"
        ),
        "smtp": f"{{host: 127.0.0.1, port: {sink.port}, starttls: false}}",
    }
    lines.update({k: str(v) for k, v in extra.items()})
    return "".join(f"    {k}: {v}\n" for k, v in lines.items())


@pytest.fixture
def tls_smtp_sink(dovecot: Dovecot) -> Iterator[SmtpSink]:
    """A sink that requires STARTTLS (with Dovecot's test certificate) and AUTH."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(dovecot.root / "cert.pem", dovecot.root / "key.pem")
    handler = SinkHandler()
    port = free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, tls_context=context,
        require_starttls=True, authenticator=handler.authenticate, auth_required=True,
    )  # fmt: skip
    controller.start()
    try:
        yield SmtpSink(handler, port, controller=controller)
    finally:
        controller.stop()
