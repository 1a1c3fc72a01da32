import subprocess
import sys
import uuid

import pytest
from django_tenants.utils import schema_context

from audit.selectors import chain_verify
from tests.conftest import PROJECT_ROOT, chained_decisions, server_environment

WRITERS = 6
PER_WRITER = 40


@pytest.mark.live
def test_decision_record_concurrent_processes_keep_chain(committed_db, registered_signer):
    from portal.tenants.models import Tenant

    schema = Tenant.objects.get(slug="alpha").schema_name
    run_ids = [uuid.uuid4().hex[:12] for _ in range(WRITERS)]

    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.audit.append_worker", schema, run_id, str(PER_WRITER)],
            cwd=PROJECT_ROOT,
            env=server_environment(),
            stderr=subprocess.PIPE,
        )
        for run_id in run_ids
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr.decode()

    with schema_context(schema):
        report = chain_verify()
        stored = chained_decisions().filter(actor__in=[f"device:{r}" for r in run_ids])
        seqs = list(stored.values_list("seq", flat=True))

    assert report.ok, report.findings
    assert len(seqs) == WRITERS * PER_WRITER
    assert len(set(seqs)) == len(seqs)
