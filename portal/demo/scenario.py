"""The `make demo` scenario: seed, start the processes, run the fleet through every change.

Steps, in order; each records a `StepResult`, and any failed step makes
the run fail:

1. Reset and seed the demo tenants (`demo_seed`).
2. Start gunicorn, a Celery worker and Celery beat.
3. Fleet cycle 1: every device activates; the grants hold fewer seats than
   devices want, so some are refused with `seat_limit_reached`.
4. Change things as the tenants' admins would. Revoke a device through the
   admin API with the demo token and publish an overlay release to a 10%
   ring. Raise and approve a seat increase and a renewal (the approver is
   never the requester).
5. Fleet cycle 2: the revoked device decides `revoked`, refused devices now
   activate, the renewed grant is `valid` again, about 10% of devices get
   the new overlay release.
6. Promote the rollout to every device; fleet cycle 3 shows all on it.
7. Run reconciliation and audit checkpoints through the Celery worker,
   count findings and verify each tenant's decision-log chain.
"""

import json
import logging
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections
from django.utils import timezone
from django_tenants.utils import schema_context

from portal.demo import data, integration
from portal.demo.fleet import DeviceResult, FleetGrant, Writer, results_as_json
from portal.demo.seed import SeededTenant, SeedResult, demo_seed, demo_tenants_reset
from portal.demo.state import Credentials, demo_file_path, private_json_write
from portal.tenants.models import Tenant

logger = logging.getLogger(__name__)

# Percentage of devices that a staged release reaches in its first ring.
RING_PERCENT = 10
# Tasks the demo sends to the worker after the fleet cycles, in each tenant:
# reconciliation of check-ins against the device catalog and a signed
# checkpoint of the decision log.
CELERY_TASKS = ("health.reconcile", "audit.checkpoint")
# Seats the approved seat increase adds to each tenant's over-subscribed grant.
SEAT_INCREASE = 20


@dataclass
class StepResult:
    name: str
    status: str  # "ok" or "failed"
    detail: str = ""


@dataclass
class TenantRun:
    """One tenant's part of the scenario: its seed, fleet results and checks."""

    seeded: SeededTenant
    cycles: list[dict[str, Any]] = field(default_factory=list)
    results: list[DeviceResult] = field(default_factory=list)
    findings: dict[str, int] = field(default_factory=dict)
    audit: str = ""
    audit_ok: bool = False
    revoked_device: str | None = None
    overlay_releases: dict[str, int] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return self.seeded.slug

    def fleet_grants(self) -> list[FleetGrant]:
        return [
            FleetGrant(
                license_key=grant["license_key"],
                product=grant["product"],
                label=grant["label"],
                weight=grant["fleet_weight"],
            )
            for grant in self.seeded.grants
        ]


@dataclass
class Scenario:
    """Runs the demo once and keeps what the summary and demo.json need."""

    port: int
    processes_per_tenant: int = 4
    out: Writer = field(default_factory=lambda: sys.stdout)
    state_root: Path = field(default_factory=lambda: Path(settings.STATE_DIR) / "fleet")
    log_dir: Path = field(default_factory=lambda: Path(settings.STATE_DIR) / "demo")
    steps: list[StepResult] = field(default_factory=list)
    tenants: list[TenantRun] = field(default_factory=list)
    seed: SeedResult | None = None
    base_url: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(step.status == "ok" for step in self.steps)

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def step(self, name: str, action: Callable[[], str]) -> bool:
        """Run one step and record it as ok or failed (with the error)."""
        self.say(f"- {name} ...")
        started = time.monotonic()
        try:
            detail = action()
            result = StepResult(name, "ok", detail)
        except Exception as error:
            logger.exception("demo.step_failed step=%s", name)
            result = StepResult(name, "failed", f"{type(error).__name__}: {error}")
        self.steps.append(result)
        elapsed = time.monotonic() - started
        label = "ok" if result.status == "ok" else "FAILED"
        self.say(f"  {label} ({elapsed:.1f} s){': ' + result.detail if result.detail else ''}")
        return result.status == "ok"

    # --- step 1: seed ---------------------------------------------------------

    def seed_tenants(self, *, reset: bool) -> str:
        credentials = Credentials()
        if reset:
            demo_tenants_reset(credentials=credentials)
            self._fleet_state_clear()
        self.seed = demo_seed(credentials=credentials)
        self.tenants = [TenantRun(seeded=seeded) for seeded in self.seed.tenants]
        grants = sum(len(run.seeded.grants) for run in self.tenants)
        return f"{len(self.tenants)} tenants, {grants} grants, operator {self.seed.operator}"

    def _fleet_state_clear(self) -> None:
        import shutil

        for spec in data.TENANTS:
            shutil.rmtree(self.state_root / spec["slug"], ignore_errors=True)

    # --- fleet cycles ---------------------------------------------------------

    def fleet_cycle(self, label: str) -> str:
        from portal.demo.management.commands.simulate_fleet import fleet_simulate

        lines = []
        for run in self.tenants:
            devices = sum(grant["fleet_weight"] for grant in run.seeded.grants)
            summary, results = fleet_simulate(
                server=self.base_url,
                tenant=run.slug,
                grants=run.fleet_grants(),
                devices=devices,
                processes=self.processes_per_tenant,
                state_root=self.state_root,
                progress=self.out,
            )
            summary["cycle"] = label
            run.cycles.append(summary)
            run.results = results
            # Every device's outcome, for finding out why a check failed.
            private_json_write(
                self.log_dir / f"fleet-{run.slug}-{len(run.cycles)}-{label}.json",
                {"summary": summary, "devices": results_as_json(results)},
            )
            timing = summary["device_ms"]
            lines.append(
                f"{run.slug}: {summary['devices']} devices in {summary['seconds']} s "
                f"(device cycle median {timing['median']} ms, {timing['median_vs_floor']}x "
                f"the {timing['floor_request']} ms floor), decisions {summary['decisions']}, "
                f"overlay releases {summary['overlay_releases']}"
            )
            if summary["errors"]:
                lines.append(f"{run.slug} errors: {summary['errors']}")
        return "; ".join(lines)

    def check_first_cycle(self) -> str:
        problems = []
        for run in self.tenants:
            summary = run.cycles[-1]
            refused = summary["activations"]["refused"]
            if summary["activations"]["granted"] == 0:
                problems.append(f"{run.slug}: no activation was granted")
            if not refused.get("seat_limit_reached"):
                problems.append(f"{run.slug}: no activation was refused for lack of seats")
            unexpected = {code: n for code, n in refused.items() if code != "seat_limit_reached"}
            if unexpected:
                problems.append(f"{run.slug}: unexpected refusals {unexpected}")
            if summary["errors"]:
                problems.append(f"{run.slug}: client errors {summary['errors']}")
        if "grace" not in self.tenants[0].cycles[-1]["decisions"]:
            problems.append(f"{self.tenants[0].slug}: no device decided grace for the lapsed grant")
        if problems:
            raise AssertionError("; ".join(problems))
        return ", ".join(
            f"{run.slug}: {run.cycles[-1]['activations']['granted']} granted, "
            f"{run.cycles[-1]['activations']['refused']} refused"
            for run in self.tenants
        )

    # --- step 4: admin changes ------------------------------------------------

    def _user(self, run: TenantRun, suffix: str) -> Any:
        return get_user_model().objects.get(username=f"{run.slug}-{suffix}")

    def revoke_device(self) -> str:
        """Revoke one activated device through the admin API with the tenant's API token."""
        run = self.tenants[0]
        victim = next(r for r in run.results if r.outcome == "granted" and r.device_id)
        request = urllib.request.Request(  # noqa: S310 - URL built from the demo's own base URL
            f"{self.base_url}/t/{run.slug}/api/v1/admin/devices/{victim.device_id}/revoke/",
            data=json.dumps({"reason": "demo: laptop reported stolen"}).encode(),
            headers={
                "Authorization": f"Bearer {run.seeded.api_token}",
                "Content-Type": "application/json",
            },
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - as above
            revocation = json.loads(response.read())
            status = response.status
        if status != 201:
            raise AssertionError(f"the admin API returned {status} for the revocation, not 201")
        run.revoked_device = victim.name
        return (
            f"{run.slug}: device {victim.device_id} ({victim.name}) revoked through the "
            f"admin API, revocation {revocation['id']}"
        )

    def publish_ring_release(self) -> str:
        from overlays.selectors import head_current
        from overlays.services import release_publish

        lines = []
        for run, spec in zip(self.tenants, data.TENANTS, strict=True):
            overlay = spec["overlay"]
            with schema_context(self._schema(run)):
                current = head_current(overlay["product"])
                published = release_publish(
                    product_code=overlay["product"],
                    base_release=current.number if current else None,
                    acting_user=self._user(run, "it"),
                    tenant_patch=overlay["next_tenant"],
                    steps=[{"percent": RING_PERCENT}, {"percent": 100}],
                    reason=f"demo: preview update channel, {RING_PERCENT}% ring first",
                )
            lines.append(f"{run.slug}: release {published.release.number} to {RING_PERCENT}%")
        return ", ".join(lines)

    def _approve(
        self, run: TenantRun, *, kind: str, grant_label: str, payload: dict[str, Any], reason: str
    ) -> str:
        from licensing.models import LicenseGrant

        grant_id = next(g["id"] for g in run.seeded.grants if g["label"] == grant_label)
        with schema_context(self._schema(run)):
            grant = LicenseGrant.objects.get(pk=grant_id)
            request = integration.change_request_raise(
                kind=kind,
                grant=grant,
                payload=payload,
                reason=reason,
                requester=self._user(run, "procurement"),
            )
            integration.change_request_approve(
                change_request=request,
                approver=self._user(run, "approver"),
                reason="demo: budget confirmed",
            )
            # The worker applies approved requests; wait for it, as a user would.
            state = integration.change_request_wait_applied(request)
            grant.refresh_from_db()
        if state != "applied":
            raise AssertionError(f"{run.slug}: {kind} request {request.pk} is {state}, not applied")
        return (
            f"{run.slug}: {kind} of grant {grant.pk} applied "
            f"(seats {grant.seat_count}, ends {grant.term_end:%Y-%m-%d})"
        )

    def seat_increase(self) -> str:
        lines = []
        for run in self.tenants:
            first = run.seeded.grants[0]
            lines.append(
                self._approve(
                    run,
                    kind="seat_increase",
                    grant_label=first["label"],
                    payload={"seat_count": first["seats"] + SEAT_INCREASE},
                    reason=f"demo: {SEAT_INCREASE} more engineers start next week",
                )
            )
        return "; ".join(lines)

    def renewal(self) -> str:
        run = self.tenants[0]
        lapsed = run.seeded.grants[1]
        return self._approve(
            run,
            kind="renewal",
            grant_label=lapsed["label"],
            payload={},
            reason="demo: renew the contractors' quarter",
        )

    def check_second_cycle(self) -> str:
        run = self.tenants[0]
        problems = []
        for tenant_run in self.tenants:
            summary = tenant_run.cycles[-1]
            if summary["activations"]["refused"]:
                problems.append(
                    f"{tenant_run.slug}: still refused after the seat increase: "
                    f"{summary['activations']['refused']}"
                )
        revoked = [r for r in run.results if r.name == run.revoked_device]
        if not revoked or revoked[0].decision_state != "revoked":
            state = revoked[0].decision_state if revoked else "missing"
            problems.append(f"{run.slug}: the revoked device decided {state}, not revoked")
        if run.cycles[-1]["decisions"].get("grace"):
            problems.append(f"{run.slug}: devices still in grace after the renewal")
        for tenant_run in self.tenants:
            if tenant_run.cycles[-1]["errors"]:
                problems.append(
                    f"{tenant_run.slug}: client errors {tenant_run.cycles[-1]['errors']}"
                )
        for tenant_run in self.tenants:
            releases = tenant_run.cycles[-1]["overlay_releases"]
            newest = max((int(k) for k in releases if k != "None"), default=0)
            on_newest = releases.get(str(newest), 0)
            licensed = sum(1 for r in tenant_run.results if r.overlay_release is not None)
            if licensed and not (0 < on_newest < licensed * 0.5):
                problems.append(
                    f"{tenant_run.slug}: {on_newest} of {licensed} devices on release {newest}; "
                    f"expected about {RING_PERCENT}%"
                )
        if problems:
            raise AssertionError("; ".join(problems))
        return "revocation, seat increase, renewal and the ring release reached the fleet"

    def promote(self) -> str:
        from overlays.services import rollout_promote

        lines = []
        for run, spec in zip(self.tenants, data.TENANTS, strict=True):
            with schema_context(self._schema(run)):
                rollout = rollout_promote(
                    product_code=spec["overlay"]["product"],
                    acting_user=self._user(run, "it"),
                    ignore_window=True,
                )
            lines.append(f"{run.slug}: release {rollout.release.number} at {rollout.status}")
        return ", ".join(lines)

    def check_third_cycle(self) -> str:
        problems = []
        for run in self.tenants:
            # A revoked device cannot fetch the new release and keeps its last one.
            present: dict[str, int] = {}
            for result in run.results:
                if result.decision_state in ("valid", "grace"):
                    key = str(result.overlay_release)
                    present[key] = present.get(key, 0) + 1
            if len(present) != 1 or "None" in present:
                problems.append(
                    f"{run.slug}: licensed devices on several releases after promotion: {present}"
                )
            if run.cycles[-1]["errors"]:
                problems.append(f"{run.slug}: client errors {run.cycles[-1]['errors']}")
            run.overlay_releases = present
        if problems:
            raise AssertionError("; ".join(problems))
        return ", ".join(
            f"{run.slug}: all on release {next(iter(run.overlay_releases))}" for run in self.tenants
        )

    # --- step 7: background work, findings, audit -------------------------------

    def celery_round(self) -> str:
        """Run each tenant's reconciliation and an audit checkpoint on the Celery worker."""
        from portal.celery import app

        lines = []
        for run in self.tenants:
            with schema_context(self._schema(run)):
                pending = {name: app.send_task(name) for name in CELERY_TASKS}
            for name, result in pending.items():
                value = result.get(timeout=120)
                lines.append(f"{run.slug}: {name} -> {value}")
        return "; ".join(lines)

    def findings_and_audit(self) -> str:
        problems = []
        for run in self.tenants:
            with schema_context(self._schema(run)):
                run.findings = integration.findings_by_severity()
                run.audit_ok, run.audit = integration.audit_chain_verify()
            if not run.audit_ok:
                problems.append(f"{run.slug}: audit chain {run.audit}")
        if problems:
            raise AssertionError("; ".join(problems))
        return ", ".join(
            f"{run.slug}: findings {run.findings}, audit {run.audit}" for run in self.tenants
        )

    # --- helpers ----------------------------------------------------------------

    def _schema(self, run: TenantRun) -> str:
        return Tenant.objects.get(slug=run.slug).schema_name

    def demo_document(self) -> dict[str, Any]:
        """Return the machine-readable description of the running demo (written to demo.json)."""
        credentials = Credentials()
        tenants = []
        for run in self.tenants:
            tenants.append(
                {
                    "slug": run.slug,
                    "name": run.seeded.name,
                    "admin_url": f"{self.base_url}/t/{run.slug}/admin/",
                    "api_base_url": f"{self.base_url}/t/{run.slug}/api/v1/",
                    "admin_username": run.seeded.admin_username,
                    "admin_password": credentials.password(run.seeded.admin_username),
                    "admin_api_token": run.seeded.api_token,
                    "users": [
                        {
                            "username": username,
                            "role": role,
                            "password": credentials.password(username),
                        }
                        for username, role in run.seeded.users.items()
                    ],
                    "grants": run.seeded.grants,
                }
            )
        return {
            "base_url": self.base_url,
            "root_keys_url": f"{self.base_url}/.well-known/keyplane/root-keys.json",
            "platform_admin_url": f"{self.base_url}/admin/",
            "operator": {
                "username": self.seed.operator if self.seed else "",
                "password": credentials.password(self.seed.operator) if self.seed else "",
            },
            "generated_at": timezone.now().isoformat(),
            "tenants": tenants,
        }

    def demo_file_write(self) -> Path:
        path = demo_file_path()
        private_json_write(path, self.demo_document())
        return path

    def refresh_grants(self) -> None:
        """Re-read seat counts and term ends after the approved changes."""
        from licensing.models import LicenseGrant

        for run in self.tenants:
            with schema_context(self._schema(run)):
                for grant in run.seeded.grants:
                    row = LicenseGrant.objects.get(pk=grant["id"])
                    grant["seats"] = row.seat_count
                    grant["term_end"] = row.term_end.isoformat()

    def close_connections(self) -> None:
        connections.close_all()


def format_summary(scenario: Scenario) -> str:
    """Render the end-of-run summary: fleet outcomes, findings, audit, then the steps."""
    lines = ["", "Summary", "======="]
    for run in scenario.tenants:
        first = run.cycles[0] if run.cycles else {}
        last = run.cycles[-1] if run.cycles else {}
        lines.append(f"{run.seeded.name} ({run.slug}):")
        if first:
            lines.append(
                f"  activations (first cycle): {first['activations']['granted']} granted, "
                f"refused {first['activations']['refused'] or 'none'}"
            )
        granted_later = sum(c["activations"]["granted"] for c in run.cycles[1:])
        if granted_later:
            lines.append(f"  activations after the seat increase: {granted_later} granted")
        if last:
            lines.append(f"  decisions (last cycle): {last['decisions']}")
            lines.append(f"  reasons (last cycle): {last['reasons']}")
            lines.append(f"  overlay releases on devices: {last['overlay_releases']}")
            lines.append(f"  check-ins: {last['checkins']}")
        lines.append(f"  findings by severity: {run.findings or 'none'}")
        lines.append(f"  audit chain: {run.audit or 'not verified'}")
    lines.append("")
    lines.append("Steps:")
    for step in scenario.steps:
        lines.append(
            f"  [{step.status}] {step.name}{': ' + step.detail if step.status != 'ok' else ''}"
        )
    return "\n".join(lines)


def format_access(document: dict[str, Any], demo_file: Path) -> str:
    lines = ["", "Open the demo", "============="]
    lines.append(
        f"Platform admin: {document['platform_admin_url']}  "
        f"user {document['operator']['username']} password {document['operator']['password']}"
    )
    for tenant in document["tenants"]:
        lines.append(
            f"{tenant['name']} admin: {tenant['admin_url']}  "
            f"user {tenant['admin_username']} password {tenant['admin_password']}"
        )
        roles = ", ".join(f"{user['username']} ({user['role']})" for user in tenant["users"][1:])
        lines.append(f"  other users (passwords in {demo_file}): {roles}")
    lines.append(f"Root key set: {document['root_keys_url']}")
    lines.append(f"Machine-readable details: {demo_file} (mode 0600)")
    return "\n".join(lines)
