"""Shared fixtures: two tenants, personas, and real server processes.

Every test runs against the real PostgreSQL and Redis named by DATABASE_URL
and REDIS_URL (the Makefile brings them up). Tenants `alpha` and `beta` are
onboarded once per session and committed, because schema creation runs all
tenant migrations. Ordinary tests use pytest-django's `db` fixture, which
wraps each test in a transaction that is rolled back. Tests marked `live`
start gunicorn or Celery worker processes, which cannot see uncommitted
rows, so they use `committed_db` and create rows with unique names instead.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django_tenants.utils import schema_context

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TENANT_SLUGS = ("alpha", "beta")


def _test_database_url() -> str:
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


def chained_decisions():  # type: ignore[no-untyped-def]
    """Chain the current tenant's pending decisions and return its decision log.

    Decisions reach the log after their transaction commits, and a test's
    transaction never commits, so a test that reads the log chains first.
    Outside a transaction this waits for any other chainer, so every
    decision committed before the call is in the log.
    """
    from audit.models import DecisionLogEntry
    from audit.services import decision_log_chain

    decision_log_chain(wait=True)
    return DecisionLogEntry.objects.all()


def server_environment(**extra: str) -> dict[str, str]:
    """Environment for a server process that must use this run's test database."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=_test_database_url(),
        DJANGO_SETTINGS_MODULE="portal.settings.test",
        KEYPLANE_TEST_RUN_ID=settings.TEST_RUN_ID,
        PYTHONPATH=str(PROJECT_ROOT),
    )
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def django_db_setup(  # type: ignore[no-untyped-def]
    django_test_environment: None,
    django_db_blocker,
    django_db_keepdb: bool,
    django_db_createdb: bool,
    django_db_modify_db_settings: None,
) -> Iterator[None]:
    """Create the test database, then onboard the two session tenants.

    Replaces pytest-django's fixture, which creates the database only when
    some collected test requests `db`; the live tests use committed rows
    instead and must get a database too.
    """
    from django.test.utils import setup_databases, teardown_databases

    from portal.tenants.models import Tenant
    from portal.tenants.services import tenant_onboard

    with django_db_blocker.unblock():
        config = setup_databases(
            verbosity=0,
            interactive=False,
            keepdb=django_db_keepdb and not django_db_createdb,
            aliases={"default"},
            serialized_aliases=set(),
        )
        for slug in TENANT_SLUGS:
            if not Tenant.objects.filter(slug=slug).exists():
                tenant_onboard(
                    slug=slug,
                    display_name=f"{slug.title()} Corp",
                    admin_username=f"{slug}-admin",
                    admin_email=f"admin@{slug}.example",
                    admin_password="correct-horse-battery",
                )
    yield
    from audit.chaining import chainer

    with django_db_blocker.unblock():
        # The chainer thread's connection would keep the database from being dropped.
        chainer.stop()
        teardown_databases(config, verbosity=0)


@pytest.fixture
def tenant_alpha(db: None):  # type: ignore[no-untyped-def]
    from portal.tenants.models import Tenant

    return Tenant.objects.get(slug="alpha")


@pytest.fixture
def tenant_beta(db: None):  # type: ignore[no-untyped-def]
    from portal.tenants.models import Tenant

    return Tenant.objects.get(slug="beta")


@pytest.fixture
def in_alpha(tenant_alpha):  # type: ignore[no-untyped-def]
    """Run the test body in tenant alpha's schema."""
    with schema_context(tenant_alpha.schema_name):
        yield tenant_alpha
    connection.set_schema_to_public()


@pytest.fixture
def in_beta(tenant_beta):  # type: ignore[no-untyped-def]
    with schema_context(tenant_beta.schema_name):
        yield tenant_beta
    connection.set_schema_to_public()


@pytest.fixture
def committed_db(django_db_setup: None, django_db_blocker):  # type: ignore[no-untyped-def]
    """Database access without a wrapping transaction: rows are really committed."""
    with django_db_blocker.unblock():
        yield
        connection.set_schema_to_public()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout} s")


@pytest.fixture(scope="session")
def celery_worker(django_db_setup: None, django_db_blocker) -> Iterator[subprocess.Popen[bytes]]:  # type: ignore[no-untyped-def]
    """A real Celery worker process consuming this run's queue on the real Redis broker."""
    from portal.celery import app

    celery_bin = shutil.which("celery", path=str(Path(sys.executable).parent))
    assert celery_bin, "celery executable not found next to the test interpreter"
    log_path = PROJECT_ROOT / ".keyplane" / f"test-worker-{settings.TEST_RUN_ID}.log"
    log_path.parent.mkdir(exist_ok=True)
    worker_name = f"test-{settings.TEST_RUN_ID}-{uuid.uuid4().hex[:6]}@127.0.0.1"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                celery_bin,
                "-A",
                "portal",
                "worker",
                "--queues",
                settings.CELERY_TASK_DEFAULT_QUEUE,
                "--include",
                "tests.celery_tasks",
                "--hostname",
                worker_name,
                "--concurrency",
                "2",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=PROJECT_ROOT,
            env=server_environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"Celery worker exited early; see {log_path}")
            if app.control.ping(destination=[worker_name], timeout=0.5):
                break
        else:
            raise TimeoutError(f"Celery worker did not answer within 60 s; see {log_path}")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def live_site(django_db_setup: None) -> Iterator[str]:
    """The site under gunicorn (4 worker processes) on a free loopback port; yields its base URL."""
    gunicorn_bin = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    assert gunicorn_bin, "gunicorn executable not found next to the test interpreter"
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = PROJECT_ROOT / ".keyplane" / f"test-gunicorn-{settings.TEST_RUN_ID}.log"
    log_path.parent.mkdir(exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                gunicorn_bin,
                "portal.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "4",
                "--timeout",
                "60",
            ],
            cwd=PROJECT_ROOT,
            env=server_environment(KEYPLANE_BASE_URL=base_url),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
