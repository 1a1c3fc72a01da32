"""The demo seed and the fleet simulator against a live site and a Celery worker.

The seed runs once for the module with committed rows (the live site cannot
see uncommitted ones) and the demo tenants are dropped again afterwards, so
the rest of the suite finds only the session tenants.
"""

import io
import json
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from django_tenants.utils import schema_context

from portal.demo import data
from portal.demo.fleet import FleetGrant
from portal.demo.management.commands.simulate_fleet import fleet_simulate
from portal.demo.seed import SeedResult, demo_seed, demo_tenants_reset
from portal.demo.state import Credentials, private_json_write

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def seeded(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SeedResult, Credentials]]:
    folder = tmp_path_factory.mktemp("demo")
    credentials = Credentials(folder / "credentials.json")
    with django_db_blocker.unblock(), override_settings(KEYPLANE_DATA_DIR=folder / "data"):
        result = demo_seed(credentials=credentials)
        yield result, credentials
        connection.set_schema_to_public()
        demo_tenants_reset(credentials=credentials)
        connection.set_schema_to_public()


def _tenant(result: SeedResult, slug: str) -> Any:
    return next(tenant for tenant in result.tenants if tenant.slug == slug)


def _grant(result: SeedResult, slug: str, label: str) -> dict[str, Any]:
    return next(grant for grant in _tenant(result, slug).grants if grant["label"] == label)


def test_seed_creates_both_tenants(seeded: tuple[SeedResult, Credentials]) -> None:
    result, _ = seeded
    assert [tenant.slug for tenant in result.tenants] == [spec["slug"] for spec in data.TENANTS]


def test_seed_creates_user_in_every_role(seeded: tuple[SeedResult, Credentials]) -> None:
    _, credentials = seeded
    with schema_context("acme"):
        users = get_user_model().objects
        for suffix, role, _ in data.ROLE_USERS:
            user = users.get(username=f"acme-{suffix}")
            assert user.groups.filter(name=role).exists(), f"acme-{suffix} lacks {role}"
            assert user.check_password(credentials.password(f"acme-{suffix}"))
            assert user.is_staff


def test_seed_grant_close_to_renewal(seeded: tuple[SeedResult, Credentials]) -> None:
    from licensing.models import LicenseGrant

    result, _ = seeded
    with schema_context("acme"):
        grant = LicenseGrant.objects.get(pk=_grant(result, "acme", "enterprise")["id"])
    remaining = grant.term_end - timezone.now()
    assert timedelta(days=1) < remaining < timedelta(days=30)


def test_seed_grant_in_grace(seeded: tuple[SeedResult, Credentials]) -> None:
    from licensing.models import LicenseGrant

    result, _ = seeded
    now = timezone.now()
    with schema_context("acme"):
        grant = LicenseGrant.objects.select_related("policy").get(
            pk=_grant(result, "acme", "contractors")["id"]
        )
    assert grant.term_end < now
    assert grant.term_end + timedelta(days=grant.policy.grace_days) > now


def test_seed_publishes_overlay_release(seeded: tuple[SeedResult, Credentials]) -> None:
    from overlays.selectors import head_current

    with schema_context("acme"):
        release = head_current("vectra-cad")
    assert release is not None
    assert [group["name"] for group in release.content["groups"]] == [
        "design-studio",
        "field-service",
    ]


def test_seed_second_run_keeps_grants(seeded: tuple[SeedResult, Credentials]) -> None:
    from licensing.models import LicenseGrant, Policy

    result, credentials = seeded
    with schema_context("acme"):
        policies_before = Policy.objects.count()
        grants_before = LicenseGrant.objects.count()
    again = demo_seed(credentials=credentials)
    connection.set_schema_to_public()
    with schema_context("acme"):
        assert Policy.objects.count() == policies_before
        assert LicenseGrant.objects.count() == grants_before
    assert _tenant(again, "acme").grants == _tenant(result, "acme").grants


def test_private_json_write_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "demo.json"
    private_json_write(path, {"secret": "x"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"secret": "x"}


@pytest.fixture(scope="module")
def small_grant(seeded: tuple[SeedResult, Credentials]) -> tuple[int, str]:
    """A 4-seat grant of acme's enterprise policy, so that a few devices run out of seats."""
    from licensing.models import Policy
    from licensing.services import grant_create

    with schema_context("acme"):
        policy = Policy.objects.get(name=data.TENANTS[0]["policies"][0]["name"])
        procurement = get_user_model().objects.get(username="acme-procurement")
        grant, license_key = grant_create(
            policy_id=policy.pk, seat_count=4, acting_user=procurement
        )
    connection.set_schema_to_public()
    return grant.pk, license_key


@pytest.fixture(scope="module")
def fleet_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fleet")


def _run(
    live_site: str, license_key: str, fleet_root: Path, devices: int
) -> tuple[dict[str, Any], list[Any]]:
    return fleet_simulate(
        server=live_site,
        tenant="acme",
        grants=[FleetGrant(license_key=license_key, product="vectra-cad", label="small")],
        devices=devices,
        processes=2,
        state_root=fleet_root,
        progress=None,
    )


def test_fleet_refuses_devices_beyond_seats(
    live_site: str, celery_worker: object, small_grant: tuple[int, str], fleet_root: Path
) -> None:
    summary, results = _run(live_site, small_grant[1], fleet_root, devices=7)
    assert summary["activations"]["granted"] == 4
    assert summary["activations"]["refused"] == {"seat_limit_reached": 3}
    assert summary["decisions"].get("valid") == 4
    assert summary["errors"] == {}
    assert all(
        result.checkin in ("accepted", "unavailable") for result in results if result.device_id
    )


def test_fleet_second_cycle_refreshes(
    live_site: str, small_grant: tuple[int, str], fleet_root: Path
) -> None:
    summary, _ = _run(live_site, small_grant[1], fleet_root, devices=7)
    assert summary["refreshes"]["ok"] == 4
    assert summary["activations"]["refused"] == {"seat_limit_reached": 3}
    assert summary["decisions"].get("valid") == 4


def test_fleet_sees_device_revocation(
    live_site: str, small_grant: tuple[int, str], fleet_root: Path
) -> None:
    from licensing.services import device_revoke

    _, before = _run(live_site, small_grant[1], fleet_root, devices=7)
    victim = next(result for result in before if result.device_id)
    with schema_context("acme"):
        it_admin = get_user_model().objects.get(username="acme-it")
        device_revoke(device_id=int(victim.device_id), reason="test: stolen", acting_user=it_admin)
    connection.set_schema_to_public()

    summary, after = _run(live_site, small_grant[1], fleet_root, devices=7)
    revoked = next(result for result in after if result.index == victim.index)
    assert revoked.decision_state == "revoked"
    assert revoked.code == "device_revoked"
    # The released seat goes to one of the devices that were refused before.
    assert summary["activations"]["granted"] == 1


def test_simulate_fleet_command_prints_summary(
    live_site: str, seeded: tuple[SeedResult, Credentials], tmp_path: Path
) -> None:
    result, _ = seeded
    key = _grant(result, "globex", "standard")["license_key"]
    out = io.StringIO()
    call_command(
        "simulate_fleet",
        "--tenant",
        "globex",
        "--devices",
        "3",
        "--processes",
        "2",
        "--server",
        live_site,
        "--license-key",
        key,
        "--product",
        "ledgerly",
        "--state-root",
        str(tmp_path),
        "--quiet",
        stdout=out,
    )
    summary = json.loads(out.getvalue())
    assert summary["devices"] == 3
    assert summary["activations"]["granted"] == 3


def test_processes_start_rejects_busy_port(tmp_path: Path) -> None:
    import socket

    from portal.demo.processes import DemoProcesses, ProcessFailed

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        processes = DemoProcesses(port=port, log_dir=tmp_path, environment={})
        with pytest.raises(ProcessFailed, match=f"Port {port} on 127.0.0.1 is in use"):
            processes.start()
    assert processes.children == {}


def test_grants_from_demo_file_unknown_tenant(tmp_path: Path) -> None:
    from django.core.management.base import CommandError

    from portal.demo.management.commands.simulate_fleet import grants_from_demo_file

    path = tmp_path / "demo.json"
    private_json_write(path, {"base_url": "http://127.0.0.1:1", "tenants": [{"slug": "acme"}]})
    with pytest.raises(CommandError, match="has no tenant 'globex'"):
        grants_from_demo_file(path, "globex")


def test_grants_from_demo_file_reads_weights(tmp_path: Path) -> None:
    from portal.demo.management.commands.simulate_fleet import grants_from_demo_file

    path = tmp_path / "demo.json"
    grant = {"license_key": "KEY-1", "product": "ledgerly", "label": "std", "fleet_weight": 3}
    private_json_write(
        path, {"base_url": "http://127.0.0.1:1", "tenants": [{"slug": "g", "grants": [grant]}]}
    )
    base_url, grants = grants_from_demo_file(path, "g")
    assert base_url == "http://127.0.0.1:1"
    assert grants == [FleetGrant(license_key="KEY-1", product="ledgerly", label="std", weight=3)]


def test_fleet_plan_stable_and_weighted(tmp_path: Path) -> None:
    from portal.demo.fleet import fleet_plan

    grants = [
        FleetGrant(license_key="A", product="p", weight=3),
        FleetGrant(license_key="B", product="p", weight=1),
    ]
    first = fleet_plan(tenant="t", grants=grants, devices=8, state_root=tmp_path)
    second = fleet_plan(tenant="t", grants=grants, devices=8, state_root=tmp_path)
    assert first == second
    assert [spec.license_key for spec in first].count("A") == 6
    assert len({spec.state_dir for spec in first}) == 8


def test_processes_start_serve_and_stop(django_db_setup: None, tmp_path: Path) -> None:
    import urllib.request
    import uuid

    from portal.demo.processes import DemoProcesses
    from tests.conftest import free_port, server_environment

    # A run id of its own gives the worker and beat a queue that no other test uses.
    environment = server_environment(KEYPLANE_TEST_RUN_ID=f"demo-{uuid.uuid4().hex[:8]}")
    processes = DemoProcesses(
        port=free_port(), log_dir=tmp_path, environment=environment, web_workers=1
    )
    try:
        processes.start()
        assert sorted(processes.children) == ["beat", "gunicorn", "worker"]
        url = f"{processes.base_url}/.well-known/keyplane/root-keys.json"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
        started = list(processes.children.values())
    finally:
        processes.stop()
    assert processes.children == {}
    assert all(process.poll() is not None for process in started)
