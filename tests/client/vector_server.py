"""A small Keyplane client API on 127.0.0.1 that signs with the vector keys.

It speaks the client protocol (keys, activate, refresh, deactivate,
manifest and overlay with ETags, check-in) so `Client` and the CLI can be
tested over real HTTP and TLS without the Django site. Switches on the
instance make it fail or revoke on demand. The tests against the real site
are in test_server_interop.py.
"""

import hashlib
import json
import ssl
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from keyplane_client.jose import (
    jwk_thumbprint,
    parse_compact,
    public_key_from_jwk,
    verify_signature,
)

from tests.vectors.tokens import DAY, PRODUCT, TENANT, VectorKeys


class VectorServer:
    def __init__(self, keys: VectorKeys, *, clock=None, tls_dir: Path | None = None) -> None:
        self.keys = keys
        self.clock = clock or (lambda: keys.now)
        self.manifest_version = 3
        self.revoked: dict[str, list[str]] = {"grants": [], "devices": [], "tokens": []}
        self.refresh_status: int | None = None  # respond to refresh with this status when set
        self.checkin_status = 404
        self.overlay_config: dict[str, Any] | None = {"theme": "dark"}
        self.overlay_release = 1
        self.requests: list[tuple[str, str]] = []
        self.checkins: list[dict[str, Any]] = []
        self.not_modified = 0
        self.license_claims: dict[str, Any] = {}
        self.device_thumbprint: str | None = None
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self._httpd.server_address[1]
        self.scheme = "http"
        self.spki_pin: str | None = None
        self.ca_file: str | None = None
        if tls_dir is not None:
            self._enable_tls(tls_dir)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host = "localhost" if self.scheme == "https" else "127.0.0.1"
        return f"{self.scheme}://{host}:{self.port}"

    def _enable_tls(self, directory: Path) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        cert_path, key_path = directory / "server.pem", directory / "server.key"
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        import base64

        self.spki_pin = "sha256/" + base64.b64encode(hashlib.sha256(spki).digest()).decode()
        self.ca_file = str(cert_path)
        self.scheme = "https"

    def start(self) -> "VectorServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # Signed objects at the server's current time.

    def manifest(self) -> str:
        now = int(self.clock())
        overlay = None
        if self.overlay_config is not None:
            from keyplane_client.tokens import canonical_json

            digest = hashlib.sha256(canonical_json(self.overlay_config)).hexdigest()
            overlay = {"release": self.overlay_release, "sha256": digest}
        return self.keys.manifest(
            mver=self.manifest_version,
            iat=now,
            exp=now + 7 * DAY,
            revoked=self.revoked,
            overlay=overlay,
        )

    def license(self) -> str:
        now = int(self.clock())
        claims = {
            "iat": now, "nbf": now, "exp": now + DAY, "term_end": now + 30 * DAY,
            "grace_until": now + 44 * DAY, "offline_until": now + 7 * DAY,
            "mver": self.manifest_version, "cnf": {"jkt": self.device_thumbprint},
        }  # fmt: skip
        claims.update(self.license_claims)
        return self.keys.license(**claims)

    def overlay(self) -> str:
        return self.keys.overlay(
            release=self.overlay_release, config=self.overlay_config, iat=int(self.clock())
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(
                self, status: int, body: Any = None, headers: dict[str, str] | None = None
            ) -> None:
                payload = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                content_type = "application/problem+json" if status >= 400 else "application/json"
                if payload:
                    self.send_header("Content-Type", content_type)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _problem(self, status: int, code: str) -> None:
                problem = {"type": "about:blank", "title": code, "status": status, "code": code}
                self._send(status, {**problem, "detail": code, "remediation": "fix it"})

            def _proof_ok(self, method: str) -> bool:
                proof = self.headers.get("DPoP")
                if not proof:
                    self._problem(401, "proof_missing")
                    return False
                jws = parse_compact(proof)
                verify_signature(jws, public_key_from_jwk(jws.header["jwk"]))
                expected = f"{server.url}{self.path.split('?', 1)[0]}"
                if jws.claims["htm"] != method or jws.claims["htu"] != expected:
                    self._problem(401, "proof_invalid")
                    return False
                thumbprint = jwk_thumbprint(jws.header["jwk"])
                if server.device_thumbprint not in (None, thumbprint):
                    self._problem(401, "proof_invalid")
                    return False
                server.device_thumbprint = thumbprint
                return True

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def do_GET(self) -> None:
                server.requests.append(("GET", self.path))
                base = f"/t/{TENANT}/api/v1/client/"
                if self.path == "/.well-known/keyplane/root-keys.json":
                    return self._send(200, server.keys.root_jwks)
                if self.path == base + "keys":
                    return self._send(200, {"keys": [server.keys.key_certificate()]})
                if self.path == f"{base}manifest?product={PRODUCT}":
                    etag = f'"m{server.manifest_version}-{len(server.revoked["grants"])}"'
                    if self.headers.get("If-None-Match") == etag:
                        server.not_modified += 1
                        return self._send(304, headers={"ETag": etag})
                    return self._send(200, {"manifest": server.manifest()}, {"ETag": etag})
                if self.path == f"{base}overlay?product={PRODUCT}":
                    if not self._proof_ok("GET"):
                        return None
                    etag = f'"o{server.overlay_release}"'
                    if self.headers.get("If-None-Match") == etag:
                        return self._send(304, headers={"ETag": etag})
                    body = {"release": server.overlay_release, "overlay": server.overlay()}
                    return self._send(200, body, {"ETag": etag})
                return self._problem(404, "not_found")

            def do_POST(self) -> None:
                server.requests.append(("POST", self.path))
                base = f"/t/{TENANT}/api/v1/client/"
                body = self._body()
                if not self.path.startswith(base) or not self._proof_ok("POST"):
                    return None if self.path.startswith(base) else self._problem(404, "not_found")
                endpoint = self.path[len(base) :]
                if endpoint == "activate":
                    if body.get("license_key") != "KP-GOOD-KEY":
                        return self._problem(403, "license_invalid")
                    response = {
                        "device_id": "42",
                        "token": server.license(),
                        "manifest": server.manifest(),
                    }
                    return self._send(201, response)
                if endpoint == "refresh":
                    if server.refresh_status is not None:
                        return self._problem(server.refresh_status, "rate_limited")
                    return self._send(
                        200, {"token": server.license(), "manifest": server.manifest()}
                    )
                if endpoint == "deactivate":
                    return self._send(204)
                if endpoint == "checkin":
                    if server.checkin_status != 202:
                        return self._problem(server.checkin_status, "not_found")
                    server.checkins.append(body)
                    return self._send(202, {})
                return self._problem(404, "not_found")

        return Handler
