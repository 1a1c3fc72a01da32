"""Client against a local protocol server: activation, refresh, cache, transport."""

import json
import os
import stat
import threading

import pytest
from keyplane_client.decision import DecisionState
from keyplane_client.errors import (
    PinMismatchError,
    RollbackError,
    ServerError,
    StoreError,
    TransportError,
)
from keyplane_client.transport import HttpTransport

from tests.client.conftest import new_client
from tests.client.vector_server import VectorServer
from tests.vectors.tokens import DAY


def test_activate_gives_valid_decision(activated):
    decision = activated.decision()
    assert decision.state == DecisionState.VALID
    assert decision.features == ("export", "render")


def test_activate_stores_private_files(activated):
    for name in ("device-key.pem", "license.jwt", "manifest.jwt", "state.json", "keys.json"):
        mode = stat.S_IMODE((activated.state_dir / name).stat().st_mode)
        assert mode == 0o600, name


def test_activate_fetches_overlay(activated):
    assert activated.overlay is not None
    assert activated.overlay.values == {"theme": "dark"}


def test_activate_rejected_key_caches_nothing(server, keys, clock, tmp_path):
    client = new_client(server, keys, clock, tmp_path / "state")
    with pytest.raises(ServerError) as caught:
        client.activate("KP-WRONG")
    assert caught.value.code == "license_invalid"
    assert not (tmp_path / "state" / "license.jwt").exists()


def test_refresh_failure_keeps_decision(activated, server):
    before = activated.decision()
    server.refresh_status = 503
    with pytest.raises(ServerError):
        activated.refresh()
    assert activated.decision().same_outcome(before)
    assert activated.state.refresh_failures == 1


def test_refresh_failure_backs_off(activated, server, clock):
    server.refresh_status = 503
    delays = []
    for _ in range(4):
        with pytest.raises(ServerError):
            activated.refresh()
        delays.append(activated.next_refresh_at - clock.now)
    assert delays[3] > delays[0]
    assert all(15 <= delay <= 3600 for delay in delays)


def test_refresh_network_down_keeps_decision(activated, server):
    before = activated.decision()
    server.stop()
    with pytest.raises(TransportError):
        activated.refresh()
    assert activated.decision().same_outcome(before)


def test_refresh_success_resets_failures(activated, server, clock):
    server.refresh_status = 503
    with pytest.raises(ServerError):
        activated.refresh()
    server.refresh_status = None
    clock.now += 3600
    activated.refresh()
    assert activated.state.refresh_failures == 0
    assert activated.license.issued_at == int(clock.now)


def test_cache_reload_offline(activated, server, keys, clock):
    server.stop()
    reloaded = new_client(server, keys, clock, activated.state_dir)
    assert reloaded.decision().state == DecisionState.VALID


def test_long_running_crosses_offline_window(activated, clock):
    changes = []
    changed = threading.Event()

    def record(decision, previous):
        changes.append(decision)
        changed.set()

    activated.decision()
    activated.on_decision_change(record)
    activated.manifest_poll_interval = 10 * DAY
    activated._next_refresh_at = None  # no server traffic from the refresher in this test
    activated.start(max_wait=0.02)
    try:
        clock.now = activated.license.offline_until + 1
        assert changed.wait(5)
    finally:
        activated.stop()
    assert changes[-1].state == DecisionState.EXPIRED
    assert changes[-1].reason == "offline_window_exceeded"


def test_run_once_waits_until_next_boundary(activated, clock):
    activated._next_refresh_at = None
    activated.manifest_poll_interval = 30 * DAY
    activated.checkin_interval = 30 * DAY
    wait = activated.run_once()
    assert wait == activated.license.offline_until - clock.now


def test_run_once_refreshes_when_due(activated, server, clock):
    old_token = activated.license.token_id
    clock.now = activated.next_refresh_at + 1
    activated.run_once()
    assert activated.license.token_id != old_token


def test_manifest_etag_not_modified(activated, server):
    server.manifest_version = 4
    assert activated.fetch_manifest().version == 4
    assert activated.fetch_manifest() is None
    assert server.not_modified == 1


def test_manifest_revocation_applies_offline(activated, server, keys, clock):
    server.revoked = {"grants": ["17"], "devices": [], "tokens": []}
    server.manifest_version = 4
    activated.fetch_manifest()
    server.stop()
    reloaded = new_client(server, keys, clock, activated.state_dir)
    assert reloaded.decision().state == DecisionState.REVOKED


def test_manifest_rollback_rejected(activated, server):
    server.manifest_version = 4
    activated.fetch_manifest()
    server.manifest_version = 2
    server.revoked = {"grants": ["x"], "devices": [], "tokens": []}  # a new ETag
    with pytest.raises(RollbackError):
        activated.fetch_manifest()
    assert activated.manifest.version == 4


def test_overlay_change_notifies(activated, server):
    seen = []
    activated.on_overlay_change(
        lambda overlay, previous: seen.append((overlay.release, previous.release))
    )
    server.overlay_release = 2
    server.overlay_config = {"theme": "light"}
    server.manifest_version = 4
    activated.fetch_manifest()
    activated.fetch_overlay()
    assert seen == [(2, 1)]


def test_checkin_missing_endpoint_tolerated(activated):
    assert activated.checkin() is False


def test_checkin_sends_health(activated, server):
    server.checkin_status = 202
    activated.record_overlay_result(1, ok=True)
    assert activated.checkin() is True
    body = server.checkins[0]
    assert body["decision"] == {"state": "valid", "reason": "ok"}
    assert body["manifest_version"] == 3
    assert body["overlay_apply"] == [{"release": 1, "ok": True, "error": None}]


def test_clock_rollback_persists_across_restart(activated, server, keys, clock):
    clock.now += 3 * DAY
    activated.decision()
    activated.stop()
    clock.now -= 2 * DAY
    reloaded = new_client(server, keys, clock, activated.state_dir)
    assert reloaded.decision().reason == "clock_rollback"


def test_state_tamper_detected(activated, server, keys, clock):
    path = activated.state_dir / "state.json"
    document = json.loads(path.read_text())
    document["state"]["max_manifest_version"] = 0
    path.write_text(json.dumps(document))
    reloaded = new_client(server, keys, clock, activated.state_dir)
    assert reloaded.state.max_manifest_version == 0
    assert reloaded.state.validated is False


def test_state_tamper_keeps_signed_time_floor(activated, server, keys, clock):
    (activated.state_dir / "state.json").write_text("{not json")
    clock.now -= DAY
    reloaded = new_client(server, keys, clock, activated.state_dir)
    assert reloaded.decision().reason == "clock_rollback"


def test_license_edit_treated_as_absent(activated, server, keys, clock):
    path = activated.state_dir / "license.jwt"
    token = path.read_text()
    header, payload, signature = token.split(".")
    path.write_text(f"{header}.{payload[:-2]}AA.{signature}")
    reloaded = new_client(server, keys, clock, activated.state_dir)
    decision = reloaded.decision()
    assert decision.reason == "not_activated"
    assert decision.features == ("view",)


def test_manifest_corruption_treated_as_absent(activated, server, keys, clock):
    (activated.state_dir / "manifest.jwt").write_bytes(b"\xff\x00garbage")
    reloaded = new_client(server, keys, clock, activated.state_dir)
    assert reloaded.decision().reason == "manifest_missing"


def test_license_from_other_device_rejected(activated, server, keys, clock, tmp_path):
    other = new_client(server, keys, clock, tmp_path / "other")
    (other.state_dir / "license.jwt").write_text((activated.state_dir / "license.jwt").read_text())
    reloaded = new_client(server, keys, clock, other.state_dir)
    assert reloaded.license is None


def test_device_key_exposed_rejected(activated, server, keys, clock):
    os.chmod(activated.state_dir / "device-key.pem", 0o644)
    with pytest.raises(StoreError) as caught:
        new_client(server, keys, clock, activated.state_dir)
    assert caught.value.reason == "device_key_exposed"


def test_deactivate_drops_token(activated):
    decision = activated.deactivate()
    assert decision.reason == "not_activated"
    assert not (activated.state_dir / "license.jwt").exists()


def test_transport_plain_http_remote_rejected():
    with pytest.raises(TransportError) as caught:
        HttpTransport("http://licensing.example")
    assert caught.value.reason == "server_url_invalid"


@pytest.fixture
def tls_server(keys, clock, tmp_path):
    server = VectorServer(keys, clock=clock, tls_dir=tmp_path).start()
    yield server
    server.stop()


def test_tls_pin_match_activates(tls_server, keys, clock, tmp_path):
    client = new_client(
        tls_server,
        keys,
        clock,
        tmp_path / "state",
        pins=("sha256/" + "A" * 43 + "=", tls_server.spki_pin),
        ca_file=tls_server.ca_file,
    )
    assert client.activate("KP-GOOD-KEY").state == DecisionState.VALID


def test_tls_pin_mismatch_rejected(tls_server, keys, clock, tmp_path):
    client = new_client(
        tls_server,
        keys,
        clock,
        tmp_path / "state",
        pins=("sha256/" + "A" * 43 + "=",),
        ca_file=tls_server.ca_file,
    )
    with pytest.raises(PinMismatchError):
        client.activate("KP-GOOD-KEY")
    assert tls_server.requests == []


def test_device_key_pem_is_standard_pkcs8(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from keyplane_client.device import FileKeyStore

    key = Ed25519PrivateKey.generate()
    store = FileKeyStore(tmp_path / "device-key.pem")
    store.save(key)
    loaded = serialization.load_pem_private_key(store.path.read_bytes(), password=None)
    assert loaded.private_bytes_raw() == key.private_bytes_raw()


def test_device_key_crlf_pem_loads(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from keyplane_client.device import FileKeyStore

    key = Ed25519PrivateKey.generate()
    path = tmp_path / "device-key.pem"
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(pem.replace(b"\n", b"\r\n"))
    path.chmod(0o600)
    assert FileKeyStore(path).load().private_bytes_raw() == key.private_bytes_raw()


def test_device_key_garbage_rejected(tmp_path):
    from keyplane_client.device import FileKeyStore

    path = tmp_path / "device-key.pem"
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    path.chmod(0o600)
    with pytest.raises(StoreError) as caught:
        FileKeyStore(path).load()
    assert caught.value.reason == "device_key_invalid"


def test_refresher_moves_to_grace_then_expired_on_time(server, keys, clock, tmp_path):
    start = int(clock.now)
    server.license_claims = {
        "exp": start + 1800,
        "term_end": start + 3600,
        "grace_until": start + 7200,
        "offline_until": start + 10 * DAY,
    }
    client = new_client(server, keys, clock, tmp_path / "state")
    client.activate("KP-GOOD-KEY")
    server.refresh_status = 503  # every refresh fails from now on
    changes = []
    client.on_decision_change(lambda decision, _: changes.append((clock.now, decision.state)))

    for _ in range(200):
        wait = client.run_once()
        if clock.now > start + 8000:
            break
        clock.now += wait

    assert [state for _, state in changes] == [DecisionState.GRACE, DecisionState.EXPIRED]
    assert changes[0][0] == start + 3600
    assert changes[1][0] == start + 7200
    assert client.state.refresh_failures > 0


def test_state_deeply_nested_treated_as_absent(activated, server, keys, clock):
    (activated.state_dir / "state.json").write_text("[" * 100_000 + "]" * 100_000)
    (activated.state_dir / "keys.json").write_text("[" * 100_000 + "]" * 100_000)
    reloaded = new_client(server, keys, clock, activated.state_dir)
    assert reloaded.state.validated is False
    assert reloaded.decision().state == DecisionState.VALID


def test_run_once_sends_checkin_when_due(activated, server, clock):
    server.checkin_status = 202
    activated._next_refresh_at = None
    activated.manifest_poll_interval = 30 * DAY
    activated._last_manifest_poll = clock.now
    activated.run_once()
    activated.run_once()
    assert len(server.checkins) == 1
    clock.now += activated.checkin_interval
    activated._last_manifest_poll = clock.now
    activated.run_once()
    assert len(server.checkins) == 2
