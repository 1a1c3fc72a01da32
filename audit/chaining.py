"""The background chainer: one thread per process that chains pending decisions after commit.

`decision_record` stores a pending entry and, once the caller's transaction
commits, requests that this process's chainer chain the tenant's log. The chainer
waits KEYPLANE_AUDIT_CHAIN_DELAY_MS for more commits, then runs
`decision_log_chain` once per tenant that asked. Under load one attempt
covers many commits, which keeps the per-decision cost close to a plain
insert; an idle process chains within the delay.

A tenant stays queued while another connection holds its chaining lock and
entries are pending, so the thread keeps at it until the tenant has nothing
pending. After an error it retries with a growing pause, up to
MAX_FAILED_ATTEMPTS times. The thread starts
on the first request in each process (a forked worker gets its own) and
uses its own database connection, which it closes after IDLE_CLOSE_SECONDS
without work. At interpreter exit it chains what is left. Entries of a
process that dies first stay pending until another process chains that
tenant or the periodic `audit.chain` task runs.
"""

import atexit
import logging
import os
import threading
import time

from django.conf import settings
from django.db import close_old_connections, connection
from django_tenants.utils import schema_context

logger = logging.getLogger(__name__)

IDLE_CLOSE_SECONDS = 2.0
# Pause before retrying a tenant whose lock was busy, and the base of the
# growing pause after errors.
RETRY_PAUSE_SECONDS = 0.02
MAX_BACKOFF_SECONDS = 5.0
# Failed attempts in a row after which a tenant is left to the periodic task.
MAX_FAILED_ATTEMPTS = 10


class Chainer:
    """Collects the schemas whose logs have pending entries and chains them in a thread."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._condition = threading.Condition()
        self._schemas: set[str] = set()
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        # Failed attempts and the next attempt time per schema; only the thread uses them.
        self._failures: dict[str, int] = {}
        self._retry_at: dict[str, float] = {}

    def request(self, schema: str) -> None:
        """Request chaining of the schema's log; only in-memory state changes here."""
        if self._pid != os.getpid():
            # A forked child inherits the parent's state but not its thread.
            self._reset()
        with self._condition:
            self._schemas.add(schema)
            if self._thread is None or not self._thread.is_alive():
                self._start()
            self._condition.notify()

    def flush(self, timeout: float) -> bool:
        """Wait until no requested schema has pending entries left; return False on timeout.

        A schema leaves the queue when a pass found nothing pending after it
        released the lock, whichever process chained the entries.
        """
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._schemas or self._busy:
                if self._thread is None or not self._thread.is_alive():
                    return not self._schemas
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.notify()
                self._condition.wait(remaining)
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Chain what is pending, stop the thread and close its connection."""
        with self._condition:
            thread = self._thread
            self._stopping = True
            self._condition.notify_all()
        if thread is not None and thread.ident != threading.get_ident():
            thread.join(timeout)
        with self._condition:
            self._thread = None
            self._stopping = False

    def _start(self) -> None:
        thread = threading.Thread(target=self._run, name="keyplane-audit-chainer", daemon=True)
        self._thread = thread
        thread.start()
        atexit.register(self.stop)
        logger.info("audit.chainer_started pid=%d", self._pid)

    def _run(self) -> None:
        delay = settings.KEYPLANE_AUDIT_CHAIN_DELAY_MS / 1000
        retrying = False
        try:
            while self._wait_for_work():
                if self._stopping and retrying:
                    # Exiting: leave what still waits to the periodic task.
                    break
                pause = max(delay, RETRY_PAUSE_SECONDS) if retrying else delay
                # Let more commits arrive, so that one attempt covers them.
                if pause and not self._stopping:
                    time.sleep(pause)
                with self._condition:
                    schemas, self._schemas = self._schemas, set()
                    self._busy = True
                retry: set[str] = set()
                try:
                    retry = self._chain(schemas)
                except Exception:
                    logger.exception("audit.chainer_failed pid=%d", self._pid)
                    _close_connection()
                    retry = schemas
                finally:
                    retrying = bool(retry)
                    with self._condition:
                        # Retried on the next round, after the pause.
                        self._schemas |= retry
                        self._busy = False
                        self._condition.notify_all()
        finally:
            _close_connection()
            logger.info("audit.chainer_stopped pid=%d", self._pid)

    def _wait_for_work(self) -> bool:
        """Block until there is work; close the idle connection meanwhile. False means stop."""
        with self._condition:
            while not self._schemas:
                if self._stopping:
                    return False
                if not self._condition.wait(IDLE_CLOSE_SECONDS):
                    _close_connection()
            return True

    def _chain(self, schemas: set[str]) -> set[str]:
        """Make one pass per schema that is due; return the schemas to keep queued.

        A schema stays queued while another connection holds its chaining
        lock and entries are pending, so no committed entry depends on
        another process to be chained. After an error it is retried with a
        growing pause, and dropped after MAX_FAILED_ATTEMPTS (for example a
        tenant that was offboarded meanwhile).
        """
        from audit.services import decision_log_chain_pass

        close_old_connections()
        now = time.monotonic()
        retry: set[str] = set()
        for schema in sorted(schemas):
            if self._retry_at.get(schema, 0.0) > now:
                retry.add(schema)
                continue
            try:
                with schema_context(schema):
                    result = decision_log_chain_pass()
            except Exception:
                _close_connection()
                failures = self._failures.get(schema, 0) + 1
                if failures >= MAX_FAILED_ATTEMPTS:
                    logger.exception(
                        "audit.chain_gave_up schema=%s attempts=%d; the audit.chain task "
                        "chains its pending entries once the cause is fixed",
                        schema,
                        failures,
                    )
                    self._forget(schema)
                    continue
                logger.exception("audit.chain_failed schema=%s attempt=%d", schema, failures)
                self._failures[schema] = failures
                backoff = RETRY_PAUSE_SECONDS * 2**failures
                self._retry_at[schema] = now + min(backoff, MAX_BACKOFF_SECONDS)
                retry.add(schema)
                continue
            self._forget(schema)
            if not result.done:
                retry.add(schema)
        return retry

    def _forget(self, schema: str) -> None:
        self._failures.pop(schema, None)
        self._retry_at.pop(schema, None)


def _close_connection() -> None:
    """Close this thread's database connection; a broken one may fail to close."""
    try:
        connection.close()
    except Exception:
        logger.warning("audit.chainer_close_failed pid=%d", os.getpid(), exc_info=True)


chainer = Chainer()
# A fork can happen while another thread holds the chainer's condition lock;
# the child starts from a fresh state instead of that copy.
os.register_at_fork(after_in_child=chainer._reset)
