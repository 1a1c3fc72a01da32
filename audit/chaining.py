"""The background chainer: one thread per process that chains pending decisions after commit.

`decision_record` stores a pending entry and, once the caller's transaction
commits, requests that this process's chainer chain the tenant's log. The chainer
waits KEYPLANE_AUDIT_CHAIN_DELAY_MS for more commits, then runs
`decision_log_chain` once per tenant that asked. Under load one attempt
covers many commits, which keeps the per-decision cost close to a plain
insert; an idle process chains within the delay.

A tenant stays queued while another connection holds its chaining lock and
entries are pending, so the thread keeps at it until the tenant has nothing
pending. The pause between those attempts doubles up to a quarter of a
second, and a new commit restarts it at the normal pace. After an error it retries with a
growing pause, up to MAX_FAILED_ATTEMPTS times. The thread
starts on the first request in each process (a forked worker gets its own)
and uses its own database connection, which it closes after
IDLE_CLOSE_SECONDS without work. At interpreter exit it chains what is
left, waiting a few seconds for a busy lock. Entries of a process that dies
first stay pending until another process chains that tenant or the
periodic `audit.chain` task runs.
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
# Failed attempts in a row after which a tenant is set aside for
# SET_ASIDE_SECONDS and left to the periodic task.
MAX_FAILED_ATTEMPTS = 10
SET_ASIDE_SECONDS = 60.0
# Maximum pause between attempts while another connection holds a lock, and
# the attempt at which that is logged as a warning (about 15 s in).
MAX_BUSY_PAUSE_SECONDS = 0.25
BUSY_WARNING_ROUNDS = 60
# How long the exit pass waits for a busy tenant's lock.
EXIT_LOCK_TIMEOUT_SECONDS = 5.0


class Chainer:
    """Collects the schemas whose logs have pending entries and chains them in a thread."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._condition = threading.Condition()
        self._schemas: set[str] = set()
        # Schemas with a new commit since the thread last took its work.
        self._fresh: set[str] = set()
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        # Per schema: failed attempts, busy-lock attempts, the next attempt
        # time, and whether it was set aside after errors. Only the thread
        # uses them.
        self._failures: dict[str, int] = {}
        self._busy_rounds: dict[str, int] = {}
        self._retry_at: dict[str, float] = {}
        self._set_aside: set[str] = set()

    def request(self, schema: str) -> None:
        """Request chaining of the schema's log; only in-memory state changes here."""
        if self._pid != os.getpid():
            # A forked child inherits the parent's state but not its thread.
            self._reset()
        with self._condition:
            self._schemas.add(schema)
            self._fresh.add(schema)
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
                    self._chain_before_exit()
                    break
                pause = max(delay, RETRY_PAUSE_SECONDS) if retrying else delay
                # Let more commits arrive, so that one attempt covers them.
                if pause and not self._stopping:
                    time.sleep(pause)
                with self._condition:
                    schemas, self._schemas = self._schemas, set()
                    fresh, self._fresh = self._fresh, set()
                    self._busy = True
                self._restart_busy_pause(fresh)
                retry: set[str] = set()
                try:
                    retry = self._chain(schemas)
                except Exception:
                    # _chain handles database errors itself; this is a bug.
                    logger.exception("audit.chainer_failed pid=%d", self._pid)
                    retry = schemas
                finally:
                    retrying = bool(retry)
                    with self._condition:
                        # Retried on a later round, when due.
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
        another process to be chained. The pause between those attempts
        doubles up to MAX_BUSY_PAUSE_SECONDS. After an error it is retried
        with a growing pause and set aside after MAX_FAILED_ATTEMPTS (for
        example a tenant that was offboarded, or a row that cannot be
        hashed) for SET_ASIDE_SECONDS, so errors do not flood the log.
        """
        from audit.services import decision_log_chain_pass

        now = time.monotonic()
        try:
            close_old_connections()
        except Exception as error:
            _close_connection()
            return {schema for schema in schemas if self._failed(schema, now, error)}

        retry: set[str] = set()
        for schema in sorted(schemas):
            if self._retry_at.get(schema, 0.0) > now:
                if schema not in self._set_aside:
                    retry.add(schema)
                continue
            self._set_aside.discard(schema)
            with schema_context(schema):
                try:
                    result = decision_log_chain_pass()
                except Exception as error:
                    _close_connection()
                    if self._failed(schema, now, error):
                        retry.add(schema)
                    continue
                if result.done:
                    self._forget(schema)
                    continue
                self._busy_for(schema, now)
                retry.add(schema)
        return retry

    def _failed(self, schema: str, now: float, error: Exception) -> bool:
        """Log a failed attempt and schedule the next; return whether to keep the schema queued."""
        failures = self._failures.get(schema, 0) + 1
        if failures >= MAX_FAILED_ATTEMPTS:
            logger.error(
                "audit.chain_set_aside schema=%s attempts=%d seconds=%d; requests for it are "
                "ignored meanwhile, and the audit.chain task keeps trying",
                schema,
                failures,
                SET_ASIDE_SECONDS,
                exc_info=error,
            )
            self._forget(schema)
            self._set_aside.add(schema)
            self._retry_at[schema] = now + SET_ASIDE_SECONDS
            return False
        logger.error("audit.chain_failed schema=%s attempt=%d", schema, failures, exc_info=error)
        self._failures[schema] = failures
        pause = RETRY_PAUSE_SECONDS * 2**failures
        self._retry_at[schema] = now + min(pause, MAX_BACKOFF_SECONDS)
        return True

    def _busy_for(self, schema: str, now: float) -> None:
        """Schedule the next attempt for a schema whose lock another connection holds."""
        busy = self._busy_rounds.get(schema, 0) + 1
        self._busy_rounds[schema] = busy
        self._retry_at[schema] = now + min(RETRY_PAUSE_SECONDS * 2**busy, MAX_BUSY_PAUSE_SECONDS)
        if busy == BUSY_WARNING_ROUNDS:
            logger.warning(
                "audit.chain_lock_busy schema=%s rounds=%d; another connection has held the "
                "chaining lock for a while (a long purge or backlog, or a stuck session)",
                schema,
                busy,
            )

    def _restart_busy_pause(self, schemas: set[str]) -> None:
        """Try schemas with new commits at the normal pace again, unless errors set them back.

        The growing pause is for waiting on a lock with nothing new to chain.
        """
        for schema in schemas:
            if not self._failures.get(schema) and schema not in self._set_aside:
                self._busy_rounds.pop(schema, None)
                self._retry_at.pop(schema, None)

    def _forget(self, schema: str) -> None:
        self._failures.pop(schema, None)
        self._busy_rounds.pop(schema, None)
        self._retry_at.pop(schema, None)

    def _chain_before_exit(self) -> None:
        """At exit, wait a bounded time for each busy tenant's lock and chain what is left."""
        from audit.services import decision_log_chain_pass

        with self._condition:
            schemas, self._schemas = self._schemas - self._set_aside, set()
        for schema in sorted(schemas):
            try:
                with schema_context(schema):
                    decision_log_chain_pass(wait=True, lock_timeout=EXIT_LOCK_TIMEOUT_SECONDS)
            except Exception:
                logger.exception("audit.chain_failed schema=%s at exit", schema)
                _close_connection()


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
