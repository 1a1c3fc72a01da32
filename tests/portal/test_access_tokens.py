"""Scoped API tokens: issue command, hashing, admin creation, scope checks."""

import io
import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from portal.access.models import ApiToken, api_token_hash


def test_issue_api_token_command_prints_token_once(tenant_alpha: Any) -> None:
    out = io.StringIO()
    call_command(
        "issue_api_token",
        "--tenant",
        "alpha",
        "--user",
        "alpha-admin",
        "--scopes",
        "policies:read,grants:write",
        stdout=out,
    )
    secret = out.getvalue().strip()
    assert secret.startswith("kpt_")
    with schema_context("alpha"):
        token = ApiToken.objects.get(token_hash=api_token_hash(secret))
        assert token.scopes == ["grants:write", "policies:read"]
        assert secret not in str(ApiToken.objects.filter(pk=token.pk).values().get())


def test_issue_api_token_unknown_scope(tenant_alpha: Any) -> None:
    with pytest.raises(CommandError, match="Unknown scopes"):
        call_command(
            "issue_api_token", "--tenant", "alpha", "--user", "alpha-admin", "--scopes", "root:all"
        )


def test_issue_api_token_unknown_user(tenant_alpha: Any) -> None:
    with pytest.raises(CommandError, match="no user"):
        call_command(
            "issue_api_token", "--tenant", "alpha", "--user", "nobody", "--scopes", "grants:read"
        )


def test_admin_creates_token_and_shows_it_once(tenant_alpha: Any) -> None:
    client = Client()
    client.post(
        "/t/alpha/admin/login/",
        {"username": "alpha-admin", "password": "correct-horse-battery"},
    )
    with schema_context("alpha"):
        user_id = get_user_model().objects.get(username="alpha-admin").pk
    response = client.post(
        "/t/alpha/admin/access/apitoken/add/",
        {"name": "sync", "user": user_id, "scopes": ["grants:read"]},
        follow=True,
    )
    connection.set_schema_to_public()
    assert response.status_code == 200
    match = re.search(r"kpt_[A-Za-z0-9_-]{43}", response.content.decode())
    assert match is not None
    with schema_context("alpha"):
        assert ApiToken.objects.filter(token_hash=api_token_hash(match.group(0))).exists()
