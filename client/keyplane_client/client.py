"""`Client`: the online side of the library, around the pure `decide()`.

A `Client` owns one state directory for one tenant and product. It loads and
verifies the cache on construction, so `decision()` works offline at once,
and talks to the server only when asked (`activate`, `refresh`, ...) or from
its background refresher thread. Every response from the server is verified
against the pinned root keys before it replaces anything in the cache, and
a failed request never changes the decision.

Callbacks registered with `on_decision_change` and `on_overlay_change` run
on the thread that noticed the change (the caller's or the refresher's), so
a UI should hand them to its own event loop before touching widgets.
"""

import contextlib
import logging
import platform as platform_module
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from keyplane_client import __version__
from keyplane_client.cache import Cache
from keyplane_client.decision import DEFAULT_RULES, Decision, DecisionRules, decide
from keyplane_client.device import DeviceIdentity, DeviceKeyStore, FileKeyStore
from keyplane_client.errors import (
    KeyplaneClientError,
    RollbackError,
    ServerError,
    TransportError,
    VerificationError,
)
from keyplane_client.state import (
    LocalState,
    state_after_check,
    state_after_failure,
    state_after_manifest,
    state_after_refresh,
)
from keyplane_client.tokens import (
    License,
    Manifest,
    Overlay,
    verify_license,
    verify_manifest,
    verify_overlay,
)
from keyplane_client.transport import HttpTransport
from keyplane_client.trust import Keyring, RootKeys, verify_key_certificate

logger = logging.getLogger(__name__)

DecisionCallback = Callable[[Decision, Decision | None], None]
OverlayCallback = Callable[[Overlay | None, Overlay | None], None]

# Refresh when this share of the token's lifetime has passed, minus jitter,
# so a fleet issued at the same moment does not refresh in the same second.
REFRESH_AT_LIFETIME = 0.6
REFRESH_JITTER = 0.1
MIN_REFRESH_DELAY = 30.0
BACKOFF_BASE_SECONDS = 30.0
BACKOFF_MAX_SECONDS = 3600.0
# Persist the last-check clock reading at most this often; the high-water
# mark loses at most this much when the process is killed.
STATE_SAVE_INTERVAL = 60
# The check-in endpoint accepts at most this many apply results.
MAX_OVERLAY_RESULTS = 16


class Client:
    """Activate, refresh and decide for one tenant and product."""

    def __init__(
        self,
        *,
        server: str,
        tenant: str,
        product: str,
        state_dir: Path | str,
        root_keys: RootKeys,
        key_store: DeviceKeyStore | None = None,
        pins: tuple[str, ...] = (),
        ca_file: str | None = None,
        transport: HttpTransport | None = None,
        clock: Callable[[], float] = time.time,
        rules: DecisionRules = DEFAULT_RULES,
        client_version: str = __version__,
        manifest_poll_interval: float = 900.0,
        checkin_interval: float = 3600.0,
        rng: random.Random | None = None,
    ) -> None:
        self.tenant = tenant
        self.product = product
        self.state_dir = Path(state_dir)
        self.root_keys = root_keys
        self.rules = rules
        self.client_version = client_version
        self.manifest_poll_interval = manifest_poll_interval
        self.checkin_interval = checkin_interval
        self._last_checkin = 0.0
        self._clock = clock
        # Jitter only spreads refreshes over time; it protects no secret.
        self._rng = rng or random.Random()  # noqa: S311
        self._transport = transport or HttpTransport(
            server, pins=pins, ca_file=ca_file, user_agent=f"keyplane-client/{client_version}"
        )
        self.identity = DeviceIdentity.load_or_create(
            key_store or FileKeyStore(self.state_dir / "device-key.pem")
        )
        self.cache = Cache(self.state_dir, identity=self.identity, tenant=tenant, product=product)

        self._lock = threading.RLock()
        self._decision_callbacks: list[DecisionCallback] = []
        self._overlay_callbacks: list[OverlayCallback] = []
        self._last_decision: Decision | None = None
        self._state_saved_at = 0
        self._next_refresh_at: float | None = None
        self._last_manifest_poll = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._timings: dict[str, float] = {}
        self._overlay_results: list[dict[str, Any]] = []
        self._load_cache()

    # Loading.

    def _load_cache(self) -> None:
        with self._lock:
            self.state: LocalState = self.cache.load_state()
            self.keyring: Keyring = self.cache.keyring_with_manifest_certificates(
                self.cache.load_keyring(self.root_keys), self.root_keys
            )
            self.manifest: Manifest | None = self.cache.load_manifest(self.keyring)
            if self.manifest is not None:
                self.keyring = self._with_manifest_keys(self.keyring, self.manifest)
            self.license: License | None = self.cache.load_license(
                self.keyring, device_id=self.state.device_id
            )
            pointer = self.manifest.overlay if self.manifest else None
            self.overlay: Overlay | None = self.cache.load_overlay(self.keyring, pointer=pointer)
            self._schedule_refresh()

    def _with_manifest_keys(self, keyring: Keyring, manifest: Manifest) -> Keyring:
        return keyring.extended(manifest.key_certificates, self.root_keys)

    # Decisions.

    def now(self) -> int:
        return int(self._clock())

    def decision(self) -> Decision:
        """Decide now from the cached, verified objects; notify callbacks on change."""
        with self._lock:
            now = self.now()
            result = decide(
                self.license, self.manifest, self.overlay, self.state, now, rules=self.rules
            )
            if result.reason != "clock_rollback":
                self.state = state_after_check(self.state, now=now)
                if now - self._state_saved_at >= STATE_SAVE_INTERVAL:
                    self._save_state()
            previous, self._last_decision = self._last_decision, result
        if not result.same_outcome(previous):
            logger.info("license decision is now %s (%s)", result.state.value, result.reason)
            for callback in list(self._decision_callbacks):
                try:
                    callback(result, previous)
                except Exception:
                    logger.exception("decision callback failed")
        return result

    def on_decision_change(self, callback: DecisionCallback) -> None:
        self._decision_callbacks.append(callback)

    def on_overlay_change(self, callback: OverlayCallback) -> None:
        self._overlay_callbacks.append(callback)

    def _save_state(self) -> None:
        self.cache.save_state(self.state)
        self._state_saved_at = self.now()

    # Requests.

    def _path(self, endpoint: str) -> str:
        return f"/t/{quote(self.tenant, safe='')}/api/v1/client/{endpoint}"

    def _request(
        self,
        method: str,
        endpoint: str,
        *,
        body: Any = None,
        proof: bool = True,
        headers: dict[str, str] | None = None,
    ) -> Any:
        path = self._path(endpoint)
        all_headers = dict(headers or {})
        if proof:
            all_headers["DPoP"] = self.identity.proof(
                method=method, url=self._transport.url(path), now=self.now()
            )
        started = time.perf_counter()
        try:
            return self._transport.request(method, path, json_body=body, headers=all_headers)
        finally:
            self._timings[endpoint.split("?", 1)[0]] = round(
                (time.perf_counter() - started) * 1000, 1
            )

    def fetch_keys(self) -> Keyring:
        """Fetch the tenant key certificates and keep those that verify against the root keys."""
        response = self._request("GET", "keys", proof=False)
        compacts = response.data.get("keys") if isinstance(response.data, dict) else None
        if not isinstance(compacts, list):
            raise VerificationError(
                "the keys response has no 'keys' list", reason="response_invalid"
            )
        fetched = []
        for compact in compacts:
            try:
                fetched.append(verify_key_certificate(compact, self.root_keys, tenant=self.tenant))
            except KeyplaneClientError as exc:
                logger.warning("server offered a key certificate that does not verify: %s", exc)
        with self._lock:
            self.keyring = self.keyring.merged(Keyring(self.tenant, fetched))
            self.cache.save_keyring(self.keyring)
            return self.keyring

    def _verify_with_key_fetch(self, verify: Callable[[], Any]) -> Any:
        """Run `verify`; on an unknown signing key fetch the tenant keys once and retry."""
        try:
            return verify()
        except VerificationError as exc:
            if exc.reason != "key_unknown":
                raise
        self.fetch_keys()
        return verify()

    def _accept_manifest(self, compact: str) -> Manifest:
        manifest: Manifest = self._verify_with_key_fetch(
            lambda: verify_manifest(compact, self.keyring, product=self.product)
        )
        floor = self.state.max_manifest_version
        if manifest.version < floor:
            raise RollbackError(
                f"manifest version {manifest.version} is older than version {floor} already seen",
                reason="manifest_rollback",
            )
        self.keyring = self._with_manifest_keys(self.keyring, manifest)
        return manifest

    def _accept_refresh(self, data: Any, *, device_id: str | None) -> Decision:
        """Verify a token and manifest from activate or refresh, then replace the cache."""
        if not isinstance(data, dict) or not isinstance(data.get("token"), str):
            raise VerificationError("the response has no token", reason="response_invalid")
        with self._lock:
            manifest = (
                self._accept_manifest(data["manifest"])
                if isinstance(data.get("manifest"), str)
                else self.manifest
            )
            license: License = self._verify_with_key_fetch(
                lambda: verify_license(
                    data["token"],
                    self.keyring,
                    product=self.product,
                    device_id=device_id,
                    key_thumbprint=self.identity.thumbprint,
                )
            )
            if self.license is not None and license.issued_at < self.license.issued_at:
                raise VerificationError(
                    f"the server sent a token issued at {license.issued_at}, "
                    "older than the cached one",
                    reason="token_stale",
                )
            self.cache.save_keyring(self.keyring)
            if manifest is not None and manifest is not self.manifest:
                self.cache.save_signed("manifest.jwt", manifest.compact)
                self.manifest = manifest
            self.cache.save_signed("license.jwt", license.compact)
            self.license = license
            self.state = state_after_refresh(
                self.state, license=license, manifest=manifest, now=self.now()
            )
            self._save_state()
            self._schedule_refresh()
        if (
            self.manifest
            and self.manifest.overlay
            and (self.overlay is None or self.overlay.release != self.manifest.overlay.release)
        ):
            try:
                self.fetch_overlay()
            except KeyplaneClientError as exc:
                logger.warning("overlay fetch failed (%s): %s", exc.reason, exc)
        return self.decision()

    def activate(
        self, license_key: str, *, device_name: str | None = None, platform: str | None = None
    ) -> Decision:
        """Activate this device with a license key; raise `ServerError` if the server rejects it."""
        if not self.keyring.certificates:
            self.fetch_keys()
        body = {
            "license_key": license_key,
            "product": self.product,
            "device": {
                "name": device_name or platform_module.node() or "device",
                "platform": platform or platform_module.platform(terse=True),
            },
        }
        response = self._request("POST", "activate", body=body)
        device_id = response.data.get("device_id") if isinstance(response.data, dict) else None
        if not isinstance(device_id, str) or not device_id:
            raise VerificationError(
                "the activation response has no device_id", reason="response_invalid"
            )
        return self._accept_refresh(response.data, device_id=device_id)

    def refresh(self) -> Decision:
        """Get a fresh token; on any failure raise and leave the decision unchanged."""
        if self.license is None:
            raise KeyplaneClientError(
                "this device is not activated; activate it first", reason="not_activated"
            )
        try:
            response = self._request("POST", "refresh", body={"product": self.product})
            return self._accept_refresh(response.data, device_id=self.license.device_id)
        except KeyplaneClientError as exc:
            self._record_failure(exc)
            if isinstance(exc, ServerError) and exc.code in ("license_revoked", "device_revoked"):
                # The refusal itself is unsigned; the signed manifest carries the revocation.
                try:
                    self.fetch_manifest()
                except KeyplaneClientError as manifest_exc:
                    logger.warning("manifest fetch after %s failed: %s", exc.code, manifest_exc)
            raise

    def deactivate(self) -> Decision:
        """Release this device's seat and drop the token; the high-water mark stays."""
        self._request("POST", "deactivate", body={"product": self.product})
        with self._lock:
            self.cache.delete("license.jwt")
            self.cache.delete("overlay.jwt")
            self.license = None
            self.overlay = None
            self._next_refresh_at = None
            self._save_state()
        return self.decision()

    def fetch_manifest(self) -> Manifest | None:
        """Fetch the manifest with its ETag; return the new manifest, or None if unchanged."""
        etags = self.cache.load_etags()
        headers = {"If-None-Match": etags["manifest"]} if "manifest" in etags else {}
        response = self._request(
            "GET", f"manifest?product={quote(self.product)}", proof=False, headers=headers
        )
        self._last_manifest_poll = self._clock()
        if response.status == 304:
            return None
        compact = response.data.get("manifest") if isinstance(response.data, dict) else None
        if not isinstance(compact, str):
            raise VerificationError(
                "the manifest response has no manifest", reason="response_invalid"
            )
        with self._lock:
            manifest = self._accept_manifest(compact)
            if "etag" in response.headers:
                etags["manifest"] = response.headers["etag"]
                self.cache.save_etags(etags)
            if self.manifest is not None and manifest.version == self.manifest.version:
                return None
            self.cache.save_keyring(self.keyring)
            self.cache.save_signed("manifest.jwt", manifest.compact)
            self.manifest = manifest
            self.state = state_after_manifest(self.state, manifest=manifest)
            self._save_state()
        self.decision()
        return manifest

    def fetch_overlay(self) -> Overlay | None:
        """Fetch the overlay release the manifest points to; return it, or None if unchanged."""
        etags = self.cache.load_etags()
        headers = {"If-None-Match": etags["overlay"]} if "overlay" in etags and self.overlay else {}
        response = self._request("GET", f"overlay?product={quote(self.product)}", headers=headers)
        if response.status == 304:
            return None
        compact = response.data.get("overlay") if isinstance(response.data, dict) else None
        if not isinstance(compact, str):
            raise VerificationError(
                "the overlay response has no overlay", reason="response_invalid"
            )
        with self._lock:
            pointer = self.manifest.overlay if self.manifest else None
            overlay: Overlay = self._verify_with_key_fetch(
                lambda: verify_overlay(compact, self.keyring, product=self.product, pointer=pointer)
            )
            previous = self.overlay
            if previous is not None and previous.sha256 == overlay.sha256:
                return None
            self.cache.save_signed("overlay.jwt", overlay.compact)
            self.overlay = overlay
            if "etag" in response.headers:
                etags["overlay"] = response.headers["etag"]
                self.cache.save_etags(etags)
        for callback in list(self._overlay_callbacks):
            try:
                callback(overlay, previous)
            except Exception:
                logger.exception("overlay callback failed for release %s", overlay.release)
                self.record_overlay_result(overlay.release, ok=False, error="callback_failed")
        return overlay

    def record_overlay_result(self, release: int, *, ok: bool, error: str | None = None) -> None:
        """Record whether the application applied an overlay release.

        `error` is a short code such as `schema_mismatch`. The result goes with
        the next check-in; use `report_overlay_result` to send it at once.
        """
        self._overlay_results.append({"release": release, "ok": ok, "error": error})
        del self._overlay_results[:-MAX_OVERLAY_RESULTS]

    def report_overlay_result(self, release: int, *, ok: bool, error: str | None = None) -> bool:
        """Record the apply result and post it to `overlay/apply`.

        Return False if the server has no such endpoint.
        """
        self.record_overlay_result(release, ok=ok, error=error)
        body = {"product": self.product, "release": release, "ok": ok, "code": error or ""}
        try:
            self._request("POST", "overlay/apply", body=body)
        except ServerError as exc:
            if exc.status in (404, 405):
                return False
            raise
        return True

    def checkin(self) -> bool:
        """Report health to the server; return False if the server has no check-in endpoint."""
        last = self._last_decision or self.decision()
        body = {
            "product": self.product,
            "token_jti": self.license.token_id if self.license else None,
            "manifest_version": self.manifest.version if self.manifest else None,
            "overlay_release": self.overlay.release if self.overlay else None,
            "decision": {"state": last.state.value, "reason": last.reason},
            "client_version": self.client_version,
            "timings_ms": dict(self._timings),
            "overlay_apply": list(self._overlay_results),
        }
        try:
            self._request("POST", "checkin", body=body)
        except ServerError as exc:
            if exc.status in (404, 405):
                logger.info("server has no check-in endpoint (%s); skipping", exc.status)
                return False
            raise
        self._overlay_results.clear()
        return True

    # Refresh scheduling.

    def _schedule_refresh(self) -> None:
        if self.license is None:
            self._next_refresh_at = None
            return
        lifetime = max(0, self.license.expires_at - self.license.issued_at)
        share = REFRESH_AT_LIFETIME - self._rng.uniform(0, REFRESH_JITTER)
        # A token with a very short lifetime must not make the refresher spin.
        earliest = self._clock() + MIN_REFRESH_DELAY
        self._next_refresh_at = max(self.license.issued_at + lifetime * share, earliest)

    def _record_failure(self, exc: KeyplaneClientError) -> None:
        with self._lock:
            self.state = state_after_failure(self.state, now=self.now())
            self._save_state()
            delay = min(
                BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (self.state.refresh_failures - 1)
            )
            delay *= self._rng.uniform(0.5, 1.0)
            if isinstance(exc, ServerError) and exc.retry_after:
                delay = max(delay, exc.retry_after)
            self._next_refresh_at = self._clock() + delay
        logger.warning(
            "refresh failed (%s), attempt %s; next attempt in %.0f s",
            exc.reason,
            self.state.refresh_failures,
            delay,
        )

    @property
    def next_refresh_at(self) -> float | None:
        return self._next_refresh_at

    def run_once(self) -> float:
        """Run one refresher step: decide, then refresh or poll when due.

        Return the seconds until the next step is due.
        """
        self.decision()
        now = self._clock()
        if self._next_refresh_at is not None and now >= self._next_refresh_at:
            # A failure is logged by _record_failure and the decision stays as it was.
            with contextlib.suppress(KeyplaneClientError):
                self.refresh()
        elif (
            self.license is not None
            and now - self._last_manifest_poll >= self.manifest_poll_interval
        ):
            try:
                self.fetch_manifest()
            except KeyplaneClientError as exc:
                self._last_manifest_poll = now
                logger.warning("manifest poll failed (%s): %s", exc.reason, exc)
        elif self.license is not None and now - self._last_checkin >= self.checkin_interval:
            self._last_checkin = now
            try:
                self.checkin()
            except KeyplaneClientError as exc:
                logger.warning("check-in failed (%s): %s", exc.reason, exc)
        decision = self.decision()
        waits = [self.manifest_poll_interval, self.checkin_interval]
        if decision.next_boundary is not None:
            waits.append(decision.next_boundary - now)
        if self._next_refresh_at is not None:
            waits.append(self._next_refresh_at - now)
        return max(0.05, min(waits))

    def start(self, *, max_wait: float = 60.0) -> None:
        """Start the background refresher thread (daemon); idempotent."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()

        def loop() -> None:
            logger.info("refresher started for tenant %s product %s", self.tenant, self.product)
            while not self._stop.is_set():
                try:
                    wait = self.run_once()
                except Exception:
                    logger.exception("refresher step failed")
                    wait = max_wait
                self._stop.wait(min(wait, max_wait))
            logger.info("refresher stopped")

        self._thread = threading.Thread(target=loop, name="keyplane-refresher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        with self._lock:
            self._save_state()


__all__ = ["Client", "TransportError"]
