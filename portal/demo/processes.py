"""The demo's server processes: gunicorn, a Celery worker and Celery beat.

Each runs as its own process in its own session, so the Ctrl-C that stops
`make demo` reaches only the orchestrator, which then stops the children in
order (SIGTERM, then SIGKILL after a timeout). Output goes to
`.keyplane/demo/<name>.log`.
"""

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

STOP_TIMEOUT_SECONDS = 20.0


class ProcessFailed(Exception):
    """Raised when a demo process exits early or does not become ready in time."""


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _executable(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        raise ProcessFailed(f"{name} is not installed next to {sys.executable}; run make install.")
    return found


@dataclass
class DemoProcesses:
    """Start, check and stop the site, the worker and beat for one demo run."""

    port: int
    log_dir: Path
    environment: dict[str, str]
    web_workers: int = 4
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(  # noqa: S603 - fixed commands built in this module
                command,
                env=self.environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.children[name] = process
        logger.info("demo.process_started name=%s pid=%s log=%s", name, process.pid, log_path)
        return process

    def start(self) -> None:
        """Start gunicorn, the worker and beat; return once the site and the worker respond."""
        if port_in_use(self.port):
            raise ProcessFailed(
                f"Port {self.port} on 127.0.0.1 is in use; run with PORT=<free port> make demo."
            )
        celery = _executable("celery")
        self._spawn(
            "gunicorn",
            [
                _executable("gunicorn"),
                "portal.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.web_workers),
                "--timeout",
                "60",
                "--access-logfile",
                "-",
            ],
        )
        self._spawn(
            "worker",
            [celery, "-A", "portal", "worker", "--loglevel", "INFO", "--concurrency", "2"],
        )
        self._spawn(
            "beat",
            [
                celery,
                "-A",
                "portal",
                "beat",
                "--loglevel",
                "INFO",
                "--scheduler",
                "django_celery_beat.schedulers:DatabaseScheduler",
            ],
        )
        self._wait_for_site()
        self._wait_for_worker()
        self.check()

    def _wait_for_site(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            try:
                # /health/ waits up to a few seconds for Celery workers to reply to a ping.
                with urllib.request.urlopen(f"{self.base_url}/health/", timeout=15):  # noqa: S310 - loopback URL built here
                    return
            except urllib.error.HTTPError:
                return  # the site responds, and /health/ reports a degraded part as 503
            except OSError:
                time.sleep(0.2)
        raise ProcessFailed(
            f"The site did not respond on {self.base_url} within {timeout:.0f} s; "
            f"see {self.log_dir / 'gunicorn.log'}."
        )

    def _wait_for_worker(self, timeout: float = 60.0) -> None:
        from portal.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            if app.control.ping(timeout=1.0):
                return
        raise ProcessFailed(
            f"The Celery worker did not reply to a ping within {timeout:.0f} s; "
            f"see {self.log_dir / 'worker.log'}."
        )

    def check(self) -> None:
        """Raise ProcessFailed if any child has exited."""
        for name, process in self.children.items():
            code = process.poll()
            if code is not None:
                raise ProcessFailed(
                    f"The {name} process exited with status {code}; "
                    f"see {self.log_dir / f'{name}.log'}."
                )

    def stop(self) -> None:
        """Stop every child: SIGTERM first, SIGKILL after the timeout."""
        for name, process in reversed(list(self.children.items())):
            if process.poll() is not None:
                continue
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                logger.warning("demo.process_killed name=%s pid=%s", name, process.pid)
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            logger.info("demo.process_stopped name=%s", name)
        self.children.clear()
