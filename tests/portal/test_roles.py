"""Role groups grant what each tenant role needs, and the auditor only reads."""

import pytest
from django.contrib.auth.models import Group
from django_tenants.utils import schema_context

from portal.access.roles import APPROVER, AUDITOR, IT_ADMIN, PROCUREMENT_ADMIN


def _codenames(role: str) -> set[str]:
    with schema_context("alpha"):
        group = Group.objects.get(name=role)
        return set(group.permissions.values_list("codename", flat=True))


@pytest.mark.parametrize(
    ("role", "codename"),
    [
        (PROCUREMENT_ADMIN, "add_licensegrant"),
        (IT_ADMIN, "change_device"),
        (IT_ADMIN, "add_enrollmenttoken"),
        (APPROVER, "approve_changerequest"),
        (AUDITOR, "view_decisionlogentry"),
    ],
)
def test_role_grants_permission(db: None, role: str, codename: str) -> None:
    assert codename in _codenames(role)


def test_auditor_role_only_views(db: None) -> None:
    writes = {name for name in _codenames(AUDITOR) if not name.startswith("view_")}
    assert writes <= {"verify_decisionlog", "export_decisionlog"}


def test_approver_cannot_edit_grants(db: None) -> None:
    assert "change_licensegrant" not in _codenames(APPROVER)
