"""The OpenAPI schema: valid, and a fuzzer finds no server error on the licensing API."""

import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context
from drf_spectacular.validation import validate_schema

from portal.access.services import api_token_issue
from tests.licensing.conftest import grant_make, product_ensure

LICENSING_PATHS = (
    r"^/api/v1/(client/(keys|activate|refresh|deactivate|manifest)"
    r"|admin/(policies|grants|devices|seats|tokens|revocations|manifests)/)"
)


def test_openapi_schema_validates(in_alpha: Any) -> None:
    response = Client().get("/t/alpha/api/schema/", {"format": "json"})
    connection.set_tenant(in_alpha)
    assert response.status_code == 200
    schema = json.loads(response.content)
    validate_schema(schema)
    assert "/api/v1/client/activate" in schema["paths"]
    assert "/api/v1/admin/grants/" in schema["paths"]


@pytest.mark.live
def test_fuzzer_finds_no_server_error(live_site: str, committed_db: None) -> None:
    product_ensure()
    with schema_context("alpha"):
        grant_make(seat_count=5)
        user = get_user_model().objects.get(username="alpha-admin")
        scopes = [
            "policies:read",
            "policies:write",
            "grants:read",
            "grants:write",
            "devices:read",
            "devices:write",
            "revocations:write",
            "manifests:read",
        ]
        _, secret = api_token_issue(name="fuzzer", user=user, scopes=scopes)

    schema_path = Path(f"/tmp/keyplane-schema-{live_site.rsplit(':', 1)[1]}.json")
    with urllib.request.urlopen(f"{live_site}/t/alpha/api/schema/?format=json") as response:
        schema_path.write_bytes(response.read())
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st, "schemathesis (st) not found next to the test interpreter"
    result = subprocess.run(
        [
            st,
            "run",
            str(schema_path),
            "--url",
            f"{live_site}/t/alpha",
            "--header",
            f"Authorization: Bearer {secret}",
            "--checks",
            "not_a_server_error",
            "--include-path-regex",
            LICENSING_PATHS,
            "--max-examples",
            "30",
            "--phases",
            "examples,fuzzing",
            "--max-time",
            "240",
            "--workers",
            "4",
            "--seed",
            "7",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
