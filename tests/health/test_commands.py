"""`manage.py reconcile`."""

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from health.models import Finding
from tests.health.conftest import Fleet, settings_set


def test_reconcile_command_one_tenant(fleet: Fleet) -> None:
    settings_set(minimum_client_version="3.0.0")
    fleet.checkin(fleet.device(), client_version="2.0.0")
    out = StringIO()

    call_command("reconcile", "--tenant", "alpha", stdout=out)

    assert out.getvalue().startswith("alpha: 1 devices, 1 findings opened")
    assert Finding.objects.filter(code="client_version_below_minimum").count() == 1


def test_reconcile_command_unknown_tenant(in_alpha: Any) -> None:
    with pytest.raises(CommandError, match="No tenant has the slug 'nope'"):
        call_command("reconcile", "--tenant", "nope")
