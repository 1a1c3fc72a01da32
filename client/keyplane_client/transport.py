"""HTTPS transport on the standard library, with optional public-key pinning.

Certificates are validated the usual way (system trust store or `ca_file`).
With pins configured, the server's leaf certificate must also carry a public
key whose SHA-256 over the DER SubjectPublicKeyInfo equals one of the pins,
checked before any request byte is sent. Several pins allow key rotation.
Pins are written as in HPKP, `sha256/<base64>`, or as bare base64 or hex.

Plain `http://` is accepted only for loopback hosts, for development and
tests.
"""

import base64
import binascii
import hashlib
import http.client
import json
import logging
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from keyplane_client.errors import PinMismatchError, ServerError, TransportError

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def parse_pin(pin: str) -> bytes:
    """Decode one SPKI SHA-256 pin from `sha256/<base64>`, base64 or hex."""
    text = pin.strip().removeprefix("sha256/")
    try:
        raw = bytes.fromhex(text) if len(text) == 64 else base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise TransportError(
            f"TLS pin {pin!r} is neither base64 nor hex: {exc}", reason="tls_pin_invalid"
        ) from exc
    if len(raw) != 32:
        raise TransportError(
            f"TLS pin {pin!r} is not a SHA-256 digest (32 bytes)", reason="tls_pin_invalid"
        )
    return raw


def spki_sha256(certificate_der: bytes) -> bytes:
    certificate = x509.load_der_x509_certificate(certificate_der)
    spki = certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).digest()


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args: Any, pins: frozenset[bytes], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pins = pins

    def connect(self) -> None:
        super().connect()
        if not self._pins:
            return
        certificate = self.sock.getpeercert(binary_form=True)
        if certificate is None or spki_sha256(certificate) not in self._pins:
            self.close()
            raise PinMismatchError(
                f"the TLS public key of {self.host} matches none of the "
                f"{len(self._pins)} configured pins; "
                "check the server certificate or update the pins"
            )


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes
    data: Any = field(default=None)


class HttpTransport:
    """Send JSON requests to one Keyplane server."""

    def __init__(
        self,
        base_url: str,
        *,
        pins: Iterable[str] = (),
        ca_file: str | None = None,
        timeout: float = 15.0,
        user_agent: str = "keyplane-client",
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise TransportError(
                f"server URL {base_url!r} must be an absolute https URL",
                reason="server_url_invalid",
            )
        if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
            raise TransportError(
                f"server URL {base_url!r} uses plain http; use https "
                "(http is accepted only for loopback hosts)",
                reason="server_url_invalid",
            )
        self.base_url = base_url.rstrip("/")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._base_path = parts.path.rstrip("/")
        self._pins = frozenset(parse_pin(pin) for pin in pins)
        self._context = (
            ssl.create_default_context(cafile=ca_file) if parts.scheme == "https" else None
        )
        self._timeout = timeout
        self._user_agent = user_agent

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _connection(self) -> http.client.HTTPConnection:
        if self._scheme == "https":
            return _PinnedHTTPSConnection(
                self._host,
                self._port,
                timeout=self._timeout,
                context=self._context,
                pins=self._pins,
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Send one request; return 2xx and 304 responses, raise for problems and network errors."""
        body = None if json_body is None else json.dumps(json_body).encode("utf-8")
        all_headers = {
            "Accept": "application/json",
            "User-Agent": self._user_agent,
            **(headers or {}),
        }
        if body is not None:
            all_headers["Content-Type"] = "application/json"
        connection = self._connection()
        try:
            connection.request(method, self._base_path + path, body=body, headers=all_headers)
            raw = connection.getresponse()
            payload = raw.read()
            response_headers = {name.lower(): value for name, value in raw.getheaders()}
            status = raw.status
        except PinMismatchError:
            raise
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            raise TransportError(f"{method} {self.url(path)} failed: {exc}") from exc
        finally:
            connection.close()

        data = None
        if payload and "json" in response_headers.get("content-type", ""):
            try:
                data = json.loads(payload)
            except (ValueError, RecursionError):
                data = None
        if 200 <= status < 300 or status == 304:
            return Response(status=status, headers=response_headers, body=payload, data=data)
        raise _server_error(method, self.url(path), status, response_headers, data)


def _server_error(
    method: str, url: str, status: int, headers: Mapping[str, str], data: Any
) -> ServerError:
    problem = data if isinstance(data, dict) else {}
    code = problem.get("code") if isinstance(problem.get("code"), str) else f"http_{status}"
    detail = problem.get("detail") or problem.get("title") or f"HTTP {status}"
    retry_after = None
    try:
        retry_after = float(headers["retry-after"]) if "retry-after" in headers else None
    except ValueError:
        retry_after = None
    return ServerError(
        f"{method} {url} failed with {status} {code}: {detail}",
        status=status,
        code=str(code),
        remediation=str(problem.get("remediation") or ""),
        retry_after=retry_after,
    )
