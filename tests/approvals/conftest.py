"""Approvals fixtures: personas (requester, approvers, superuser), grants and settings."""

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from portal.access.roles import APPROVER, PROCUREMENT_ADMIN
from tests.licensing.conftest import policy_make, product_ensure


def user_make(role: str | None = None, *, superuser: bool = False) -> Any:
    """Create an active user with an e-mail address, in the role group if one is named."""
    name = f"{(role or 'admin').split()[0].lower()}-{uuid.uuid4().hex[:8]}"
    user = get_user_model().objects.create_user(
        username=name,
        email=f"{name}@example.test",
        password="correct-horse-battery",
        is_staff=True,
        is_superuser=superuser,
    )
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def grant_ending(term_end: datetime, *, seats: int = 5, **policy_fields: Any) -> Any:
    """Create a grant of a fresh policy whose term ends at `term_end`."""
    from licensing.services import grant_create

    product_ensure()
    policy = policy_make(**policy_fields)
    grant, _ = grant_create(
        policy_id=policy.pk,
        seat_count=seats,
        acting_user=None,
        term_start=term_end - timedelta(days=policy.term_days),
        term_end=term_end,
    )
    return grant


def settings_set(**fields: Any) -> Any:
    from approvals.selectors import approval_settings

    row = approval_settings()
    for name, value in fields.items():
        setattr(row, name, value)
    row.save()
    return row


@pytest.fixture
def requester(in_alpha: Any) -> Any:
    return user_make(PROCUREMENT_ADMIN)


@pytest.fixture
def approver(in_alpha: Any) -> Any:
    return user_make(APPROVER)


@pytest.fixture
def second_approver(in_alpha: Any) -> Any:
    return user_make(APPROVER)


@pytest.fixture
def superuser(in_alpha: Any) -> Any:
    return user_make(superuser=True)


@pytest.fixture
def grant(in_alpha: Any) -> Any:
    """A grant of an annual policy whose term ends in 30 days."""
    return grant_ending(timezone.now() + timedelta(days=30))
