"""The emulator's TLS: its own CA, a server certificate, and a pyOpenSSL connection as a file.

Betfair accepts any self-signed client certificate in the handshake and judges it in
the application, against the certificate uploaded for the account. Python's `ssl`
module cannot do that: with CERT_OPTIONAL an untrusted client certificate fails the
handshake, and there is no verify callback. pyOpenSSL has one, so the server context
here asks for a client certificate, accepts whatever comes (or nothing), and leaves the
verdict to the login endpoint.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import secrets
import selectors
import socket
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from OpenSSL import SSL

from bfprov import crypto
from bfprov.errors import BfprovError
from bfprov.files import write_file
from bfprov.layout import DIR_MODE, PUBLIC_MODE, SECRET_MODE

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer
    from OpenSSL.crypto import X509

_T = TypeVar("_T")

CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"

_CA_DAYS = 3650
_SERVER_DAYS = 90  # a fresh one is issued at every start
_CLOCK_SKEW = timedelta(minutes=5)

CAKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class SandboxError(BfprovError):
    """The emulator's state directory cannot be used; the message says why."""


# --- files -------------------------------------------------------------------------------


def write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Replace `path` with `data`, with permissions `mode` from the first byte on.

    The emulator's files go through bfprov's one writer (temporary file created 0600,
    synced, renamed), so a key is never readable by others, not even for a moment.
    """
    write_file(path, data, mode, overwrite=True)


def ensure_state_dir(path: Path) -> None:
    """Create the state directory (0700) if it is missing."""
    try:
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        raise SandboxError(f"cannot create the sandbox directory {path}: {exc.strerror}") from exc
    if not path.is_dir():
        raise SandboxError(f"the sandbox path {path} is not a directory")


# --- the CA and the server certificate -----------------------------------------------------


def load_or_create_ca(state_dir: Path) -> tuple[x509.Certificate, CAKey]:
    """The CA of `state_dir` (ca.pem 0644, ca.key 0600), created on first use.

    An existing pair is reused so that a BFPROV_CA_BUNDLE pointing at ca.pem stays
    valid across restarts of the emulator.
    """
    cert_path, key_path = state_dir / CA_CERT_FILE, state_dir / CA_KEY_FILE
    if cert_path.exists() and key_path.exists():
        return _load_ca(cert_path, key_path)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bfprov sandbox"),
            # A random suffix tells two sandboxes' CAs apart in a trust store.
            x509.NameAttribute(NameOID.COMMON_NAME, f"bfprov sandbox CA {secrets.token_hex(4)}"),
        ]
    )
    now = datetime.now(UTC).replace(microsecond=0)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            crypto.key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # The key first: a ca.pem without its key would be useless at the next start.
    write_atomically(key_path, key_pem, SECRET_MODE)
    write_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM), PUBLIC_MODE)
    return cert, key


def _load_ca(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, CAKey]:
    advice = f"delete {cert_path.name} and {key_path.name} in {cert_path.parent} to make a new CA"
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError, x509.InvalidVersion) as exc:
        raise SandboxError(f"the sandbox CA cannot be read; {advice}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise SandboxError(f"the sandbox CA key is neither EC nor RSA; {advice}")
    if cert.public_key() != key.public_key():
        raise SandboxError(f"the sandbox CA certificate does not match its key; {advice}")
    if key_path.stat().st_mode & 0o077:
        key_path.chmod(SECRET_MODE)  # the CA can mint server certificates: keep it private
    return cert, key


def issue_server_certificate(
    ca_cert: x509.Certificate, ca_key: CAKey, hosts: Iterable[str]
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A new server certificate for `hosts` (DNS names or IP addresses), signed by the CA."""
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):  # ordered and without duplicates
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC).replace(microsecond=0)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=_SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            crypto.key_usage(digital_signature=True),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        # Python 3.13's strict verification wants the authority key identifier.
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _accept_any(conn: SSL.Connection, cert: X509, errnum: int, depth: int, ok: int) -> bool:
    # Self-signed client certificates are the norm here; the login endpoint judges them.
    return True


def server_context(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> SSL.Context:
    """A TLS 1.2+ server context that asks for a client certificate and accepts any."""
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.use_certificate(cert)
    context.use_privatekey(key)
    context.check_privatekey()
    # VERIFY_PEER without FAIL_IF_NO_PEER_CERT: the certificate is requested, optional,
    # and whatever the client sends is accepted by the callback. That also waives the
    # security level's "key too small" for the RSA-1024 keys Betfair still accepts.
    context.set_verify(SSL.VERIFY_PEER, _accept_any)
    # No resumption: a resumed session carries the certificate of an earlier handshake,
    # while every login must be judged on the certificate presented now.
    context.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    context.set_options(SSL.OP_NO_TICKET)
    return context


def fingerprint(cert: x509.Certificate) -> str:
    """Lowercase hex SHA-256 of the certificate's DER, the identity of a client certificate."""
    return cert.fingerprint(hashes.SHA256()).hex()


# --- a TLS connection as a file ----------------------------------------------------------


def _wait(sock: socket.socket, event: int, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    with selectors.DefaultSelector() as selector:
        selector.register(sock, event)
        if remaining <= 0 or not selector.select(remaining):
            raise TimeoutError("the TLS peer is too slow")


def _retry(call: Callable[[], _T], sock: socket.socket, timeout: float) -> _T:
    """Run a pyOpenSSL call on a non-blocking socket until it completes or times out.

    pyOpenSSL raises WantRead/WantWrite instead of honouring a Python socket timeout,
    so the waiting happens here, against one deadline for the whole call.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except SSL.WantReadError:
            _wait(sock, selectors.EVENT_READ, deadline)
        except SSL.WantWriteError:
            _wait(sock, selectors.EVENT_WRITE, deadline)


def accept(context: SSL.Context, sock: socket.socket, timeout: float) -> SSL.Connection:
    """The server side of a TLS handshake on `sock`, bounded by `timeout` seconds.

    Raises SSL.Error, OSError or TimeoutError when the handshake fails or stalls.
    """
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = SSL.Connection(context, sock)
    conn.set_accept_state()
    _retry(conn.do_handshake, sock, timeout)
    return conn


def close_notify(conn: SSL.Connection) -> None:
    """Send TLS close_notify, without waiting for the peer's: it may already be gone."""
    with contextlib.suppress(SSL.Error, OSError):
        conn.shutdown()


class TLSStream(io.RawIOBase):
    """A pyOpenSSL connection as a raw binary stream, for BufferedReader/BufferedWriter.

    Each read or write waits at most `timeout` seconds, so a stalled client cannot hold
    a server thread forever. A clean close (close_notify) or an abrupt one both read
    as end of file. Closing the stream leaves the connection open.
    """

    def __init__(self, conn: SSL.Connection, sock: socket.socket, timeout: float) -> None:
        super().__init__()
        self._conn = conn
        self._sock = sock
        self.timeout = timeout  # may change between reads (a kept-alive connection idles)

    def readable(self) -> bool:
        """Always: this is a connection."""
        return True

    def writable(self) -> bool:
        """Always: this is a connection."""
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        """Read up to len(buffer) bytes; 0 at the end of the stream."""
        view = memoryview(buffer).cast("B")
        try:
            return _retry(lambda: self._conn.recv_into(view), self._sock, self.timeout)
        except (SSL.ZeroReturnError, SSL.SysCallError):
            return 0
        except SSL.Error as exc:
            raise ConnectionError(f"TLS error while reading: {exc}") from exc

    def write(self, data: ReadableBuffer) -> int:
        """Write some of `data` (partial writes are allowed); returns the count written."""
        view = memoryview(data).cast("B")
        try:
            return _retry(lambda: self._conn.send(view), self._sock, self.timeout)
        except (SSL.ZeroReturnError, SSL.SysCallError) as exc:
            raise BrokenPipeError("the TLS peer closed the connection") from exc
        except SSL.Error as exc:
            raise ConnectionError(f"TLS error while writing: {exc}") from exc
