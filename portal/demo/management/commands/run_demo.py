"""`manage.py run_demo`: the `make demo` orchestrator (see portal/demo/scenario.py)."""

import os
import signal
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.demo.processes import DemoProcesses, ProcessFailed
from portal.demo.scenario import Scenario, format_access, format_summary
from portal.demo.state import demo_file_path

# All simulated clients share one loopback address and a few license keys, so
# the per-address and per-license limits of a production site would throttle
# the fleet itself; the demo's site gets limits sized for a whole fleet.
DEMO_RATE_LIMITS = {
    "KEYPLANE_RATE_PER_ADDRESS": "100000",
    "KEYPLANE_RATE_PER_LICENSE": "10000",
}


class Command(BaseCommand):
    help = (
        "Run the demo: seed two tenants, start gunicorn, a Celery worker and beat, drive a "
        "fleet of simulated clients through revocation, a staged overlay release, a seat "
        "increase and a renewal, print a summary, write .keyplane/demo.json and serve until "
        "Ctrl-C. With KEYPLANE_DEMO_EXIT=1 it exits after verifying the scenario."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--port",
            type=int,
            default=int(os.environ.get("PORT", "8000")),
            help="Port on 127.0.0.1.",
        )
        parser.add_argument(
            "--processes",
            type=int,
            default=4,
            help="Fleet worker processes per tenant (default 4).",
        )
        parser.add_argument(
            "--exit",
            action="store_true",
            default=os.environ.get("KEYPLANE_DEMO_EXIT") == "1",
            help="Exit after the scenario instead of serving (also KEYPLANE_DEMO_EXIT=1).",
        )
        parser.add_argument(
            "--keep",
            action="store_true",
            help=(
                "Keep the existing demo tenants and device states instead of resetting them. "
                "The scenario's checks expect fresh tenants, so a kept run usually fails them."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        base_url = f"http://127.0.0.1:{options['port']}"
        if base_url != settings.KEYPLANE_BASE_URL:
            raise CommandError(
                f"KEYPLANE_BASE_URL is {settings.KEYPLANE_BASE_URL!r} but the demo serves "
                f"{base_url}; set KEYPLANE_BASE_URL={base_url} (make demo does) so that "
                "tokens name this site."
            )
        environment = dict(os.environ, **DEMO_RATE_LIMITS, KEYPLANE_BASE_URL=base_url)
        processes = DemoProcesses(
            port=options["port"],
            log_dir=settings.STATE_DIR / "demo",
            environment=environment,
        )
        scenario = Scenario(
            port=options["port"], processes_per_tenant=options["processes"], out=self.stdout
        )
        scenario.base_url = base_url
        started = time.monotonic()
        try:
            self._run(scenario, processes, reset=not options["keep"])
            self.stdout.write(format_summary(scenario))
            self.stdout.write(f"\nScenario took {time.monotonic() - started:.0f} s.")
            if not scenario.ok:
                failed = [step.name for step in scenario.steps if step.status != "ok"]
                raise CommandError(f"The demo scenario did not pass: {', '.join(failed)}.")
            path = scenario.demo_file_write()
            self.stdout.write(format_access(scenario.demo_document(), path))
            self.stdout.write(self.style.SUCCESS("Demo scenario passed."))
            if options["exit"]:
                return
            self._serve(processes, base_url)
        finally:
            processes.stop()
            # The file describes a running demo; once the processes stop it would mislead.
            demo_file_path().unlink(missing_ok=True)

    def _run(self, scenario: Scenario, processes: DemoProcesses, *, reset: bool) -> None:
        if not scenario.step(
            "Seed the platform and two tenants", lambda: scenario.seed_tenants(reset=reset)
        ):
            return

        def start() -> str:
            scenario.close_connections()
            processes.start()
            return (
                f"site {processes.base_url}, worker and beat running (logs in {processes.log_dir})"
            )

        if not scenario.step("Start gunicorn, Celery worker and beat", start):
            return
        if not scenario.step(
            "Fleet cycle 1: activate every device", lambda: scenario.fleet_cycle("activate")
        ):
            return
        scenario.step("Check activations and refusals", scenario.check_first_cycle)
        scenario.step("Revoke a device through the admin API", scenario.revoke_device)
        scenario.step("Publish an overlay release to a 10% ring", scenario.publish_ring_release)
        scenario.step("Raise and approve a seat increase", scenario.seat_increase)
        scenario.step("Raise and approve a renewal", scenario.renewal)
        if scenario.step(
            "Fleet cycle 2: refresh and pick up the changes",
            lambda: scenario.fleet_cycle("changes"),
        ):
            scenario.step("Check the fleet picked up every change", scenario.check_second_cycle)
        scenario.step("Promote the overlay release to every device", scenario.promote)
        if scenario.step(
            "Fleet cycle 3: refresh after the promotion", lambda: scenario.fleet_cycle("promoted")
        ):
            scenario.step(
                "Check every device runs the promoted release", scenario.check_third_cycle
            )
        scenario.step(
            "Run reconciliation and audit checkpoints on the worker", scenario.celery_round
        )
        scenario.step("Count findings and verify the audit chains", scenario.findings_and_audit)
        scenario.refresh_grants()
        processes.check()

    def _serve(self, processes: DemoProcesses, base_url: str) -> None:
        self.stdout.write(f"\nServing on {base_url}; press Ctrl-C to stop.")
        stopping = False

        def request_stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        while not stopping:
            try:
                processes.check()
            except ProcessFailed as error:
                raise CommandError(str(error)) from error
            time.sleep(1)
        self.stdout.write("Stopping the demo processes ...")
