"""The on-disk cache in the state directory, tamper-evident.

Layout of the state directory:

    device-key.pem   the device private key (FileKeyStore, mode 0600)
    root-keys.json   pinned root keys, when the application does not ship them
    keys.json        tenant key certificates, {"keys": [<kp-key-cert+jwt>, ...]}
    license.jwt      the current license token
    manifest.jwt     the newest manifest
    overlay.jwt      the current overlay release
    etags.json       HTTP validators for conditional GETs (not trusted for anything)
    state.json       LocalState with an HMAC-SHA256 under a device-bound key

Signed objects stay signed on disk and are verified again on every load.
The state is MACed with a key derived from the device private key and bound
to the tenant and product. A file that is missing, corrupt, edited or fails
verification is logged and treated as absent, never trusted.
"""

import hashlib
import hmac
import json
import logging
from pathlib import Path
from typing import Any

from keyplane_client.device import DeviceIdentity, write_private_file
from keyplane_client.errors import KeyplaneClientError
from keyplane_client.jose import parse_compact
from keyplane_client.state import LocalState
from keyplane_client.tokens import (
    License,
    Manifest,
    Overlay,
    OverlayPointer,
    verify_license,
    verify_manifest,
    verify_overlay,
)
from keyplane_client.trust import Keyring, RootKeys, verify_key_certificate

logger = logging.getLogger(__name__)

STATE_FORMAT = 1


class Cache:
    """Read and write the cached objects of one tenant and product."""

    def __init__(
        self, directory: Path | str, *, identity: DeviceIdentity, tenant: str, product: str
    ) -> None:
        self.directory = Path(directory)
        self.identity = identity
        self.tenant = tenant
        self.product = product
        self._state_key = identity.mac_key("state")

    def path(self, name: str) -> Path:
        return self.directory / name

    def _read_text(self, name: str) -> str | None:
        try:
            return self.path(name).read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            logger.warning("cached %s is unreadable and treated as absent: %s", name, exc)
            return None

    def _write_text(self, name: str, text: str) -> None:
        write_private_file(self.path(name), text.encode("utf-8"))

    def delete(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    # Tenant keys.

    def load_keyring(self, root_keys: RootKeys) -> Keyring:
        """Certificates that still verify against the root keys; others are dropped."""
        text = self._read_text("keys.json")
        if text is None:
            return Keyring(self.tenant)
        try:
            compacts = json.loads(text)["keys"]
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            logger.warning("cached keys.json is corrupt and treated as absent: %s", exc)
            return Keyring(self.tenant)
        certificates = []
        for compact in compacts if isinstance(compacts, list) else []:
            try:
                certificates.append(verify_key_certificate(compact, root_keys, tenant=self.tenant))
            except KeyplaneClientError as exc:
                logger.warning("cached key certificate dropped (%s): %s", exc.reason, exc)
        return Keyring(self.tenant, certificates)

    def keyring_with_manifest_certificates(self, keyring: Keyring, root_keys: RootKeys) -> Keyring:
        """Add the key certificates carried in the cached manifest, each verified against the roots.

        The manifest's own signature is not needed for this, because every
        certificate is checked against the pinned root keys. It lets the
        cache recover when keys.json is lost but manifest.jwt is intact.
        """
        text = self._read_text("manifest.jwt")
        if text is None:
            return keyring
        try:
            compacts = parse_compact(text).claims.get("key_certificates") or []
        except KeyplaneClientError:
            return keyring
        if not isinstance(compacts, list):
            return keyring
        return keyring.extended([c for c in compacts if isinstance(c, str)], root_keys)

    def save_keyring(self, keyring: Keyring) -> None:
        self._write_text(
            "keys.json", json.dumps({"keys": [c.compact for c in keyring.certificates]})
        )

    # Signed objects.

    def load_license(self, keyring: Keyring, *, device_id: str | None) -> License | None:
        text = self._read_text("license.jwt")
        if text is None:
            return None
        try:
            return verify_license(
                text,
                keyring,
                product=self.product,
                device_id=device_id,
                key_thumbprint=self.identity.thumbprint,
            )
        except KeyplaneClientError as exc:
            logger.warning("cached license dropped (%s): %s", exc.reason, exc)
            return None

    def load_manifest(self, keyring: Keyring) -> Manifest | None:
        text = self._read_text("manifest.jwt")
        if text is None:
            return None
        try:
            return verify_manifest(text, keyring, product=self.product)
        except KeyplaneClientError as exc:
            logger.warning("cached manifest dropped (%s): %s", exc.reason, exc)
            return None

    def load_overlay(self, keyring: Keyring, *, pointer: OverlayPointer | None) -> Overlay | None:
        text = self._read_text("overlay.jwt")
        if text is None:
            return None
        try:
            return verify_overlay(text, keyring, product=self.product, pointer=pointer)
        except KeyplaneClientError as exc:
            logger.warning("cached overlay dropped (%s): %s", exc.reason, exc)
            return None

    def save_signed(self, name: str, compact: str) -> None:
        self._write_text(name, compact)

    # HTTP validators.

    def load_etags(self) -> dict[str, str]:
        text = self._read_text("etags.json")
        try:
            data = json.loads(text) if text else {}
        except (ValueError, RecursionError):
            return {}
        return (
            {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}
            if isinstance(data, dict)
            else {}
        )

    def save_etags(self, etags: dict[str, str]) -> None:
        self._write_text("etags.json", json.dumps(etags, sort_keys=True))

    # MACed local state.

    def _state_mac(self, payload: dict[str, Any]) -> str:
        message = b"\0".join(
            (
                f"keyplane-state-v{STATE_FORMAT}".encode(),
                self.tenant.encode("utf-8"),
                self.product.encode("utf-8"),
                json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8"),
            )
        )
        return hmac.new(self._state_key, message, hashlib.sha256).hexdigest()

    def load_state(self) -> LocalState:
        """The stored state, or a fresh one if it is missing, corrupt or fails its MAC."""
        text = self._read_text("state.json")
        if text is None:
            return LocalState()
        try:
            document = json.loads(text)
            payload, mac = document["state"], document["mac"]
            if not isinstance(payload, dict) or not isinstance(mac, str):
                raise ValueError("unexpected layout")
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            logger.warning("cached state is corrupt and treated as absent: %s", exc)
            return LocalState()
        if not hmac.compare_digest(mac, self._state_mac(payload)):
            logger.warning("cached state failed its MAC check and is treated as absent")
            return LocalState()
        try:
            return LocalState.from_dict(payload)
        except (TypeError, ValueError) as exc:
            logger.warning("cached state has invalid fields and is treated as absent: %s", exc)
            return LocalState()

    def save_state(self, state: LocalState) -> None:
        payload = state.to_dict()
        document = {"format": STATE_FORMAT, "state": payload, "mac": self._state_mac(payload)}
        self._write_text("state.json", json.dumps(document, sort_keys=True))
