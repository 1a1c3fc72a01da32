"""Offline check, repeated decision and cold start of keyplane_client.

Run from the repository root:

    .venv/bin/python benchmarks/client/bench_client.py

All times are CPU time of the measuring process (`time.process_time`), so
that other processes on a shared machine do not inflate them. CPU time
leaves out waiting for the CPU and for the disk, so it is a lower bound of
wall time.

Each figure is reported with its floor measured in the same run. The full
offline check (parse, verify, decide) is compared with a bare Ed25519 verify
of the same bytes with `cryptography`. The cold start (import, load and
verify the cache, first decision, timed inside a fresh interpreter) is
compared with importing `cryptography`'s Ed25519 and verifying one
signature the same way. The repeated decision (`decide()` on an already verified token) is
reported in microseconds and as a share of the bare verify. Keys and tokens
are generated at run time with the shared test vectors.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "client")]

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: E402
from keyplane_client.cache import Cache  # noqa: E402
from keyplane_client.decision import decide  # noqa: E402
from keyplane_client.device import DeviceIdentity, FileKeyStore  # noqa: E402
from keyplane_client.jose import b64url_decode  # noqa: E402
from keyplane_client.state import LocalState, state_after_refresh  # noqa: E402
from keyplane_client.tokens import verify_license, verify_manifest  # noqa: E402
from keyplane_client.trust import Keyring, RootKeys  # noqa: E402

from tests.vectors.tokens import PRODUCT, TENANT, make_keys, thumbprint  # noqa: E402

COLD_RUNS = 15

COLD_START = """
import time
started = time.process_time()
import json, sys
from pathlib import Path
from keyplane_client.cache import Cache
from keyplane_client.decision import decide
from keyplane_client.device import DeviceIdentity, FileKeyStore
from keyplane_client.trust import RootKeys
state_dir = Path(sys.argv[1])
root_keys = RootKeys.from_jwks((state_dir / "root-keys.json").read_text())
identity = DeviceIdentity.load_or_create(FileKeyStore(state_dir / "device-key.pem"))
cache = Cache(state_dir, identity=identity, tenant=sys.argv[2], product=sys.argv[3])
state = cache.load_state()
keyring = cache.load_keyring(root_keys)
manifest = cache.load_manifest(keyring)
license = cache.load_license(keyring, device_id=state.device_id)
decision = decide(license, manifest, None, state, time.time())
assert decision.state == "valid", decision
print(json.dumps({"seconds": time.process_time() - started}))
"""


def interleaved_best(statements: dict, numbers: dict, rounds: int = 15) -> dict:
    """Best seconds per call of each statement over `rounds`, the usual timeit convention.

    The statements take turns within every round, so a burst of load from
    other processes slows all of them alike instead of skewing one ratio.
    """
    best = {name: float("inf") for name in statements}
    for _ in range(rounds):
        for name, statement in statements.items():
            timer = timeit.Timer(statement, timer=time.process_time)
            seconds = timer.timeit(number=numbers[name]) / numbers[name]
            best[name] = min(best[name], seconds)
    return best


FLOOR_START = """
import time
started = time.process_time()
import json, sys
from pathlib import Path
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(sys.argv[1]))
key.verify(bytes.fromhex(sys.argv[2]), Path(sys.argv[3]).read_bytes())
print(json.dumps({"seconds": time.process_time() - started}))
"""


def fresh_interpreter_seconds(script: str, *args: str) -> float:
    """Seconds that `script` reports for itself in a new interpreter (its own import and work)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "client")}
    result = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=True, env=env
    )
    return float(json.loads(result.stdout)["seconds"])


def main() -> None:
    keys = make_keys(now=int(time.time()))
    root_keys = RootKeys.from_jwks(keys.root_jwks)
    keyring = Keyring.from_certificates([keys.key_certificate()], root_keys, tenant=TENANT)
    token = keys.license()
    manifest = verify_manifest(keys.manifest(), keyring, product=PRODUCT)
    license = verify_license(token, keyring, product=PRODUCT)
    state = state_after_refresh(LocalState(), license=license, manifest=manifest, now=keys.now)
    now = time.time()

    header_b64, payload_b64, signature_b64 = token.split(".")
    signing_input = f"{header_b64}.{payload_b64}".encode()
    signature = b64url_decode(signature_b64)
    public_key = keys.tenant_key.public_key()

    best = interleaved_best(
        {
            "bare": lambda: public_key.verify(signature, signing_input),
            "full": lambda: decide(
                verify_license(token, keyring, product=PRODUCT), manifest, None, state, now
            ),
            "repeated": lambda: decide(license, manifest, None, state, now),
        },
        {"bare": 500, "full": 500, "repeated": 20_000},
    )
    bare, full, repeated = best["bare"], best["full"], best["repeated"]

    with tempfile.TemporaryDirectory() as directory:
        state_dir = Path(directory)
        (state_dir / "root-keys.json").write_text(json.dumps(keys.root_jwks))
        store = FileKeyStore(state_dir / "device-key.pem")
        store.save(keys.device)
        identity = DeviceIdentity.load_or_create(store)
        assert identity.thumbprint == thumbprint(keys.device)
        cache = Cache(state_dir, identity=identity, tenant=TENANT, product=PRODUCT)
        cache.save_keyring(keyring)
        cache.save_signed("manifest.jwt", manifest.compact)
        cache.save_signed("license.jwt", token)
        cache.save_state(state)
        (state_dir / "signing-input").write_bytes(signing_input)
        raw_public = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()

        # Alternate the two so that background load hits both alike.
        cold, floor = [], []
        for _ in range(COLD_RUNS):
            cold.append(fresh_interpreter_seconds(COLD_START, str(state_dir), TENANT, PRODUCT))
            floor.append(
                fresh_interpreter_seconds(
                    FLOOR_START, raw_public, signature.hex(), str(state_dir / "signing-input")
                )
            )

    results = {
        "load_average_1min": os.getloadavg()[0],
        "bare_ed25519_verify_us": bare * 1e6,
        "full_offline_check_us": full * 1e6,
        "full_over_bare_ratio": full / bare,
        "repeated_decision_us": repeated * 1e6,
        "repeated_over_bare_ratio": repeated / bare,
        "cold_start_ms_median": statistics.median(cold) * 1e3,
        "cold_floor_ms_median": statistics.median(floor) * 1e3,
        "cold_over_floor_ratio": statistics.median(cold) / statistics.median(floor),
    }
    for name, value in results.items():
        print(f"{name:36s} {value:10.2f}")


if __name__ == "__main__":
    main()
