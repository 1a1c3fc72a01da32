"""A fleet of simulated desktop clients, each a real `keyplane_client.Client` over HTTP.

One run is one cycle of every device: a device without a license activates
with the license key of its grant; a licensed device refreshes. Either way
it then fetches the manifest and the overlay release, decides offline with
`Client.decision()` and checks in. Devices are spread over several worker
processes; each device keeps its own state directory, so a second run
continues where the first stopped (a refused device retries activation, a
revoked one learns of its revocation from the signed manifest).

This module imports nothing from Django or the server, so the simulated
clients trust only what the library verifies against the pinned root keys.
"""

import json
import logging
import multiprocessing
import random
import statistics
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from keyplane_client import Client, KeyplaneClientError, RootKeys, ServerError

logger = logging.getLogger(__name__)

PLATFORMS = ("windows-11", "macos-14", "ubuntu-24.04")
# A rate-limited request is retried after the server's Retry-After, this many times at most.
MAX_RATE_LIMIT_RETRIES = 5
MAX_RETRY_WAIT_SECONDS = 10.0


class Writer(Protocol):
    """A destination for progress lines: a text stream or a management command's output wrapper."""

    def write(self, text: str) -> Any: ...

    def flush(self) -> None: ...


@dataclass(frozen=True)
class FleetGrant:
    """A license key the fleet activates with, and the product it licenses."""

    license_key: str
    product: str
    label: str = ""
    # Relative number of devices that use this grant.
    weight: int = 1


@dataclass(frozen=True)
class DeviceSpec:
    index: int
    name: str
    platform: str
    grant: int
    product: str
    license_key: str
    state_dir: str


@dataclass
class DeviceResult:
    """The outcome of one device's cycle."""

    index: int
    name: str
    grant: int
    action: str  # "activate" or "refresh"
    outcome: str  # "granted", "refused", "refreshed", "failed"
    code: str = ""
    device_id: str | None = None
    decision_state: str = ""
    decision_reason: str = ""
    manifest_version: int | None = None
    overlay_release: int | None = None
    checkin: str = ""  # "accepted", "unavailable", "failed" or "" when not attempted
    errors: list[str] = field(default_factory=list)
    elapsed_ms: float = 0.0


def root_keys_fetch(server: str, *, timeout: float = 10.0) -> dict[str, Any]:
    """Fetch the platform root key set; a real application pins it at build time instead."""
    url = f"{server.rstrip('/')}/.well-known/keyplane/root-keys.json"
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - URL built from the operator's --server
        data: dict[str, Any] = json.loads(response.read())
    return data


def floor_measure(server: str, *, samples: int = 20) -> float:
    """Return the median milliseconds of a GET of the root key set: the cheapest request.

    The fleet's per-device times are reported against it, so a figure
    measured on a loaded machine can be compared with one from another.
    """
    url = f"{server.rstrip('/')}/.well-known/keyplane/root-keys.json"
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - URL built from the operator's --server
            response.read()
        timings.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(timings), 1)


def fleet_plan(
    *,
    tenant: str,
    grants: list[FleetGrant],
    devices: int,
    state_root: Path,
    seed: int = 7,
) -> list[DeviceSpec]:
    """Assign each device a grant by weight, in a stable shuffled order.

    The same arguments always give the same plan, so a later run reuses each
    device's state directory and license key.
    """
    if not grants:
        raise ValueError("the fleet needs at least one license key")
    total_weight = sum(max(grant.weight, 0) for grant in grants)
    if total_weight <= 0:
        raise ValueError("at least one grant needs a positive weight")
    assignment: list[int] = []
    for number, grant in enumerate(grants):
        assignment.extend([number] * round(devices * grant.weight / total_weight))
    while len(assignment) < devices:
        assignment.append(len(assignment) % len(grants))
    assignment = assignment[:devices]
    random.Random(seed).shuffle(assignment)  # noqa: S311 - a reproducible plan, not a secret

    specs = []
    for index, grant_number in enumerate(assignment):
        name = f"{tenant}-ws-{index:04d}"
        specs.append(
            DeviceSpec(
                index=index,
                name=name,
                platform=PLATFORMS[index % len(PLATFORMS)],
                grant=grant_number,
                product=grants[grant_number].product,
                license_key=grants[grant_number].license_key,
                state_dir=str(state_root / tenant / name),
            )
        )
    return specs


def _with_rate_limit_retry(call: Callable[[], Any]) -> Any:
    for attempt in range(MAX_RATE_LIMIT_RETRIES + 1):
        try:
            return call()
        except ServerError as error:
            if error.code != "rate_limited" or attempt == MAX_RATE_LIMIT_RETRIES:
                raise
            time.sleep(min(error.retry_after or 1.0, MAX_RETRY_WAIT_SECONDS))
    raise AssertionError("unreachable")


_worker_context: dict[str, Any] = {}


def _worker_init(server: str, tenant: str, root_jwks: dict[str, Any]) -> None:
    # The library logs every refused refresh as a warning; the summary counts them instead.
    logging.getLogger("keyplane_client").setLevel(logging.ERROR)
    _worker_context.update(server=server, tenant=tenant, root_keys=RootKeys.from_jwks(root_jwks))


def device_cycle(spec: DeviceSpec) -> DeviceResult:
    """Run one cycle of one device: activate or refresh, fetch, decide, check in."""
    started = time.perf_counter()
    Path(spec.state_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
    client = Client(
        server=_worker_context["server"],
        tenant=_worker_context["tenant"],
        product=spec.product,
        state_dir=spec.state_dir,
        root_keys=_worker_context["root_keys"],
    )
    result = DeviceResult(
        index=spec.index,
        name=spec.name,
        grant=spec.grant,
        action="refresh" if client.license is not None else "activate",
        outcome="failed",
    )

    # 1. Activate a new device, refresh a licensed one.
    try:
        if result.action == "activate":
            _with_rate_limit_retry(
                lambda: client.activate(
                    spec.license_key, device_name=spec.name, platform=spec.platform
                )
            )
            result.outcome = "granted"
        else:
            _with_rate_limit_retry(client.refresh)
            result.outcome = "refreshed"
    except ServerError as error:
        result.code = error.code
        if error.status >= 500:
            # A server failure is no decision about this device; report it as an error.
            result.errors.append(f"{result.action}: {error.code}")
        else:
            result.outcome = "refused"
    except KeyplaneClientError as error:
        result.code = error.reason
        result.errors.append(f"{result.action}: {error.reason}")

    # 2. Fetch the manifest and, while licensed, the overlay release; both may be unchanged (304).
    if client.license is not None:
        try:
            _with_rate_limit_retry(client.fetch_manifest)
        except KeyplaneClientError as error:
            result.errors.append(f"manifest: {error.reason}")
        manifest = client.manifest
        pointer = manifest.overlay if manifest is not None else None
        current = client.overlay.release if client.overlay is not None else None
        # Activation and refresh already fetch a changed overlay; fetch only what is still missing.
        if pointer is not None and pointer.release != current and client.decision().licensed:
            try:
                _with_rate_limit_retry(client.fetch_overlay)
            except KeyplaneClientError as error:
                result.errors.append(f"overlay: {error.reason}")

    # 3. Decide offline from the verified cache.
    decision = client.decision()
    result.decision_state = decision.state.value
    result.decision_reason = decision.reason
    result.device_id = client.license.device_id if client.license is not None else None
    result.manifest_version = client.manifest.version if client.manifest is not None else None
    result.overlay_release = client.overlay.release if client.overlay is not None else None

    # 4. Check in, which only a device with a token can do.
    if client.license is not None:
        try:
            accepted = _with_rate_limit_retry(client.checkin)
            result.checkin = "accepted" if accepted else "unavailable"
        except ServerError as error:
            result.checkin = "failed"
            result.errors.append(f"checkin: {error.code}")
        except KeyplaneClientError as error:
            result.checkin = "failed"
            result.errors.append(f"checkin: {error.reason}")
    client.stop()
    result.elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    return result


def fleet_run(
    *,
    server: str,
    tenant: str,
    specs: list[DeviceSpec],
    processes: int,
    root_jwks: dict[str, Any],
    on_result: Callable[[DeviceResult], None] | None = None,
) -> list[DeviceResult]:
    """Run one cycle of every device over `processes` worker processes.

    Workers are spawned, not forked: the caller may run threads (Celery's
    control connection, the previous pool's handlers), and a fork can copy
    a lock one of them holds, leaving the child stuck on it for good.
    """
    context = multiprocessing.get_context("spawn")
    results: list[DeviceResult] = []
    with context.Pool(
        processes=max(1, processes), initializer=_worker_init, initargs=(server, tenant, root_jwks)
    ) as pool:
        for result in pool.imap_unordered(device_cycle, specs, chunksize=1):
            results.append(result)
            if on_result is not None:
                on_result(result)
    results.sort(key=lambda item: item.index)
    return results


def _counts(values: Iterator[str]) -> dict[str, int]:
    return dict(sorted(Counter(values).items()))


def fleet_summary(
    results: list[DeviceResult],
    *,
    tenant: str,
    grants: list[FleetGrant],
    seconds: float,
    floor_ms: float,
) -> dict[str, Any]:
    """Summarise one cycle as JSON-ready counts; the orchestrator and benchmarks read it."""
    latencies = sorted(result.elapsed_ms for result in results)
    percentile_95 = latencies[max(0, round(len(latencies) * 0.95) - 1)] if latencies else 0.0
    median = round(statistics.median(latencies), 1) if latencies else 0.0
    activations = [result for result in results if result.action == "activate"]
    refreshes = [result for result in results if result.action == "refresh"]
    per_grant: dict[str, dict[str, int]] = {}
    for number, grant in enumerate(grants):
        mine = [result for result in results if result.grant == number]
        per_grant[grant.label or str(number)] = {
            "devices": len(mine),
            "licensed": sum(1 for r in mine if r.decision_state in ("valid", "grace")),
        }
    return {
        "tenant": tenant,
        "devices": len(results),
        "seconds": round(seconds, 2),
        "activations": {
            "granted": sum(1 for r in activations if r.outcome == "granted"),
            "refused": _counts(r.code for r in activations if r.outcome == "refused"),
            "failed": sum(1 for r in activations if r.outcome == "failed"),
        },
        "refreshes": {
            "ok": sum(1 for r in refreshes if r.outcome == "refreshed"),
            "refused": _counts(r.code for r in refreshes if r.outcome == "refused"),
            "failed": sum(1 for r in refreshes if r.outcome == "failed"),
        },
        "decisions": _counts(r.decision_state for r in results),
        "reasons": _counts(r.decision_reason for r in results),
        "manifest_versions": _counts(str(r.manifest_version) for r in results),
        "overlay_releases": _counts(str(r.overlay_release) for r in results),
        "checkins": _counts(r.checkin for r in results if r.checkin),
        "errors": _counts(error for r in results for error in r.errors),
        "grants": per_grant,
        "devices_per_second": round(len(results) / seconds, 1) if seconds > 0 else 0.0,
        "device_ms": {
            "median": median,
            "p95": percentile_95,
            "floor_request": floor_ms,
            "median_vs_floor": round(median / floor_ms, 1) if floor_ms > 0 else None,
        },
    }


def results_as_json(results: list[DeviceResult]) -> list[dict[str, Any]]:
    return [asdict(result) for result in results]
