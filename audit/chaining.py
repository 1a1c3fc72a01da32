"""The background chainer: one thread per process that chains pending decisions after commit.

`decision_record` stores a pending entry and, once the caller's transaction
commits, requests that this process's chainer chain the tenant's log. The chainer
waits KEYPLANE_AUDIT_CHAIN_DELAY_MS for more commits, then runs
`decision_log_chain` once per tenant that asked. Under load one attempt
covers many commits, which keeps the per-decision cost close to a plain
insert; an idle process chains within the delay.

The thread starts on the first request in each process (so a forked worker
gets its own) and uses its own database connection, which it closes after
IDLE_CLOSE_SECONDS without work. At interpreter exit it chains what is left.
Entries of a process that dies first stay pending until the next chaining
of that tenant or the periodic `audit.chain` task.
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
        """Wait until every requested schema was chained; return False on timeout."""
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
        try:
            while self._wait_for_work():
                # Let more commits arrive, so that one attempt covers them.
                if delay and not self._stopping:
                    time.sleep(delay)
                with self._condition:
                    schemas, self._schemas = self._schemas, set()
                    self._busy = True
                try:
                    self._chain(schemas)
                except Exception:
                    # For example the database is unreachable. The entries
                    # stay pending for the next request or the periodic task.
                    logger.exception("audit.chainer_failed pid=%d", self._pid)
                    _close_connection()
                finally:
                    with self._condition:
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

    def _chain(self, schemas: set[str]) -> None:
        from audit.services import decision_log_chain

        close_old_connections()
        for schema in sorted(schemas):
            try:
                with schema_context(schema):
                    decision_log_chain()
            except Exception:
                # The entries stay pending; the next request or the periodic
                # `audit.chain` task chains them.
                logger.exception("audit.chain_failed schema=%s", schema)
                _close_connection()


def _close_connection() -> None:
    """Close this thread's database connection; a broken one may fail to close."""
    try:
        connection.close()
    except Exception:
        logger.warning("audit.chainer_close_failed pid=%d", os.getpid(), exc_info=True)


chainer = Chainer()
