"""The approvals management commands, run in-process against tenant alpha."""

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from approvals.models import ChangeRequest
from tests.approvals.conftest import grant_ending


def test_renewals_scan_command_raises_request(in_alpha: Any) -> None:
    grant = grant_ending(timezone.now() + timedelta(days=15))
    out = StringIO()

    call_command("renewals_scan", "--tenant", "alpha", stdout=out)

    assert ChangeRequest.objects.filter(grant=grant).count() == 1
    assert out.getvalue().startswith("alpha: ")


def test_renewals_scan_command_unknown_tenant(in_alpha: Any) -> None:
    with pytest.raises(CommandError):
        call_command("renewals_scan", "--tenant", "no-such-tenant")


def test_approvals_sweep_command_reports_counts(in_alpha: Any) -> None:
    grant_ending(timezone.now() - timedelta(days=2), grace_days=14)
    out = StringIO()

    call_command("approvals_sweep", "--tenant", "alpha", stdout=out)

    assert ", 1 grants into grace, 0 grants expired," in out.getvalue()
