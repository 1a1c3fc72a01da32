"""`manage.py simulate_fleet --tenant SLUG --devices N`: one cycle of a simulated client fleet."""

import json
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.demo.fleet import (
    DeviceResult,
    FleetGrant,
    Writer,
    fleet_plan,
    fleet_run,
    fleet_summary,
    floor_measure,
    results_as_json,
    root_keys_fetch,
)
from portal.demo.state import demo_file_path, demo_file_read


class Progress:
    """A progress reporter that prints a line at most once a second and after the last device."""

    def __init__(self, *, tenant: str, total: int, stream: Writer, enabled: bool = True) -> None:
        self.tenant = tenant
        self.total = total
        self.stream = stream
        self.enabled = enabled
        self.done = 0
        self.licensed = 0
        self.refused = 0
        self.failed = 0
        self._printed_at = 0.0

    def __call__(self, result: DeviceResult) -> None:
        self.done += 1
        self.licensed += result.decision_state in ("valid", "grace")
        self.refused += result.outcome == "refused"
        self.failed += result.outcome == "failed" or bool(result.errors)
        now = time.monotonic()
        if self.enabled and (now - self._printed_at >= 1.0 or self.done == self.total):
            self._printed_at = now
            self.stream.write(
                f"  fleet {self.tenant}: {self.done}/{self.total} devices, "
                f"{self.licensed} licensed, {self.refused} refused, {self.failed} with errors\n"
            )
            self.stream.flush()


def grants_from_demo_file(path: Path, tenant: str) -> tuple[str | None, list[FleetGrant]]:
    """Read the base URL and the tenant's demo grants from the demo file."""
    data = demo_file_read(path)
    tenants = {entry["slug"]: entry for entry in data.get("tenants", [])}
    if tenant not in tenants:
        raise CommandError(
            f"{path} has no tenant {tenant!r} (it has {sorted(tenants)}); run demo_seed first "
            "or pass --license-key and --product."
        )
    grants = [
        FleetGrant(
            license_key=grant["license_key"],
            product=grant["product"],
            label=grant.get("label", ""),
            weight=int(grant.get("fleet_weight", 1)),
        )
        for grant in tenants[tenant].get("grants", [])
        if grant.get("fleet_weight", 1) > 0
    ]
    return data.get("base_url"), grants


def fleet_simulate(
    *,
    server: str,
    tenant: str,
    grants: list[FleetGrant],
    devices: int,
    processes: int,
    state_root: Path,
    progress: Writer | None = sys.stderr,
    seed: int = 7,
) -> tuple[dict[str, Any], list[DeviceResult]]:
    """Plan and run one fleet cycle; return the summary and the per-device results."""
    specs = fleet_plan(
        tenant=tenant, grants=grants, devices=devices, state_root=state_root, seed=seed
    )
    root_jwks = root_keys_fetch(server)
    floor_ms = floor_measure(server)
    reporter = Progress(
        tenant=tenant, total=len(specs), stream=progress or sys.stderr, enabled=progress is not None
    )
    started = time.monotonic()
    results = fleet_run(
        server=server,
        tenant=tenant,
        specs=specs,
        processes=processes,
        root_jwks=root_jwks,
        on_result=reporter,
    )
    summary = fleet_summary(
        results,
        tenant=tenant,
        grants=grants,
        seconds=time.monotonic() - started,
        floor_ms=floor_ms,
    )
    return summary, results


class Command(BaseCommand):
    help = (
        "Run one cycle of N simulated desktop clients (keyplane_client over real HTTP) in P "
        "processes: each activates or refreshes, fetches the manifest and overlay, decides "
        "offline and checks in. Prints progress to stderr and the JSON summary to stdout."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="Tenant slug.")
        parser.add_argument("--devices", type=int, required=True, help="Number of devices.")
        parser.add_argument(
            "--processes", type=int, default=4, help="Worker processes (default 4)."
        )
        parser.add_argument(
            "--server", help="Base URL of the site (default: base_url of the demo file)."
        )
        parser.add_argument(
            "--license-key",
            action="append",
            default=[],
            help="License key to activate with; repeat for several grants. "
            "Without it the tenant's grants are read from the demo file.",
        )
        parser.add_argument("--product", help="Product code of every --license-key.")
        parser.add_argument(
            "--demo-file",
            type=Path,
            default=None,
            help="Demo file with the grants and base URL (default .keyplane/demo.json).",
        )
        parser.add_argument(
            "--state-root",
            type=Path,
            default=settings.STATE_DIR / "fleet",
            help="Folder of the devices' state directories (default .keyplane/fleet).",
        )
        parser.add_argument(
            "--results", type=Path, help="Also write every device's result to this JSON file."
        )
        parser.add_argument("--seed", type=int, default=7, help="Seed of the device-to-grant plan.")
        parser.add_argument("--quiet", action="store_true", help="Print no progress lines.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["devices"] < 1:
            raise CommandError(f"--devices must be at least 1, not {options['devices']}.")
        if options["processes"] < 1:
            raise CommandError(f"--processes must be at least 1, not {options['processes']}.")

        server = options["server"]
        if options["license_key"]:
            if not options["product"]:
                raise CommandError("--license-key needs --product to name the licensed product.")
            grants = [
                FleetGrant(license_key=key, product=options["product"], label=f"key {number}")
                for number, key in enumerate(options["license_key"])
            ]
        else:
            demo_file = options["demo_file"] or demo_file_path()
            if not demo_file.exists():
                raise CommandError(
                    f"No demo file at {demo_file}; run demo_seed first or pass --license-key."
                )
            base_url, grants = grants_from_demo_file(demo_file, options["tenant"])
            server = server or base_url
        if not server:
            raise CommandError("No server URL; pass --server http://127.0.0.1:PORT.")
        if not grants:
            raise CommandError(f"Tenant {options['tenant']!r} has no grant for the fleet.")

        summary, results = fleet_simulate(
            server=server,
            tenant=options["tenant"],
            grants=grants,
            devices=options["devices"],
            processes=options["processes"],
            state_root=options["state_root"],
            progress=None if options["quiet"] else sys.stderr,
            seed=options["seed"],
        )
        if options["results"]:
            options["results"].write_text(
                json.dumps({"summary": summary, "devices": results_as_json(results)}, indent=2),
                encoding="utf-8",
            )
        self.stdout.write(json.dumps(summary, indent=2))
