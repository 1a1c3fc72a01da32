"""keyplane_client against the real site (gunicorn, PostgreSQL) in tenant alpha.

Rows are committed because the server processes cannot see a test
transaction, so each test makes its own policy and grant.
"""

import json
import subprocess
import sys
import urllib.request
from typing import Any

import pytest
from django_tenants.utils import schema_context
from keyplane_client.client import Client
from keyplane_client.decision import DecisionState
from keyplane_client.trust import RootKeys

from tests.licensing.conftest import grant_make, product_ensure

pytestmark = pytest.mark.live
PRODUCT = "atlas"


@pytest.fixture
def live_license(committed_db: None) -> tuple[Any, str]:
    product_ensure(PRODUCT)
    with schema_context("alpha"):
        return grant_make(seat_count=3)


@pytest.fixture
def root_keys_file(live_site: str, tmp_path) -> Any:
    # An application pins these at build time; the test fetches them once, as a build step would.
    with urllib.request.urlopen(
        f"{live_site}/.well-known/keyplane/root-keys.json", timeout=30
    ) as response:
        body = response.read()
    path = tmp_path / "root-keys.json"
    path.write_bytes(body)
    return path


def cli(server: str, state_dir, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keyplane_client", "--server", server, "--tenant", "alpha",
         "--product", PRODUCT, "--state-dir", str(state_dir), *command],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_interop_cli_activate_refresh_status_offline(
    live_site, live_license, root_keys_file, tmp_path
):
    _, license_key = live_license
    state_dir = tmp_path / "state"
    activate = cli(
        live_site,
        state_dir,
        "--root-keys",
        str(root_keys_file),
        "activate",
        "--license-key",
        license_key,
    )
    assert activate.returncode == 0, activate.stdout + activate.stderr
    refresh = cli(live_site, state_dir, "refresh")
    assert refresh.returncode == 0, refresh.stdout + refresh.stderr

    status = cli("http://127.0.0.1:9", state_dir, "status", "--json")
    assert status.returncode == 0, status.stderr
    decision = json.loads(status.stdout)
    assert decision["state"] == "valid"
    assert decision["features"] == ["export", "sync"]

    token = (state_dir / "license.jwt").read_text()
    verify = cli("http://127.0.0.1:9", state_dir, "verify", token)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.strip() == "valid: ok"
    tampered = cli("http://127.0.0.1:9", state_dir, "verify", token[:-4] + "AAAA")
    assert tampered.returncode == 1
    assert tampered.stdout.startswith("invalid: signature_invalid")


def test_interop_token_verified_by_independent_jose(
    live_site, live_license, root_keys_file, tmp_path
):
    import jwt
    from joserfc import jws
    from joserfc.jwk import OKPKey

    _, license_key = live_license
    client = Client(
        server=live_site, tenant="alpha", product=PRODUCT, state_dir=tmp_path / "state",
        root_keys=RootKeys.from_jwks(root_keys_file.read_text()),
    )  # fmt: skip
    assert client.activate(license_key).state == DecisionState.VALID
    token = client.license.compact
    kid = jwt.get_unverified_header(token)["kid"]
    certificate = next(c for c in client.keyring.certificates if c.kid == kid)

    claims = jwt.decode(
        token,
        certificate.public_key,
        algorithms=["EdDSA"],
        audience=PRODUCT,
        options={"require": ["exp", "jti"]},
    )
    assert claims["cnf"]["jkt"] == client.identity.thumbprint
    from keyplane_client.jose import public_jwk

    parsed = jws.deserialize_compact(
        token, OKPKey.import_key(public_jwk(certificate.public_key)), algorithms=["EdDSA"]
    )
    assert parsed.headers()["typ"] == "kp-license+jwt"


def test_interop_revocation_reaches_offline_client(
    live_site, live_license, root_keys_file, tmp_path
):
    from licensing.services import grant_revoke

    grant, license_key = live_license
    root_keys = RootKeys.from_jwks(root_keys_file.read_text())
    client = Client(
        server=live_site,
        tenant="alpha",
        product=PRODUCT,
        state_dir=tmp_path / "s",
        root_keys=root_keys,
    )
    client.activate(license_key)
    with schema_context("alpha"):
        grant_revoke(grant_id=grant.pk, reason="interop test", acting_user=None)
    assert client.fetch_manifest() is not None

    offline = Client(
        server="http://127.0.0.1:9",
        tenant="alpha",
        product=PRODUCT,
        state_dir=tmp_path / "s",
        root_keys=root_keys,
    )
    decision = offline.decision()
    assert decision.state == DecisionState.REVOKED
    assert decision.reason == "license_revoked"


@pytest.fixture
def live_overlay_license(committed_db: None) -> tuple[str, str]:
    """A product with an overlay schema, a grant for it in alpha and a published overlay release."""
    import uuid

    from overlays.catalog.models import GlobalDefaults, OverlaySchema
    from overlays.services import release_publish
    from portal.catalog.models import Product
    from tests.overlays.conftest import grant_entitlements
    from tests.overlays.schemas import desktop_defaults, desktop_schema

    code = f"desk-{uuid.uuid4().hex[:8]}"
    with schema_context("public"):
        product = Product.objects.create(code=code, name="Desk", unlicensed_features=["basic"])
        OverlaySchema.objects.create(product=product, version=1, schema=desktop_schema())
        GlobalDefaults.objects.create(product=product, values=desktop_defaults())
    with schema_context("alpha"):
        _, license_key = grant_entitlements(code, ["export"])
        release_publish(
            product_code=code,
            base_release=None,
            acting_user=None,
            tenant_patch={"ui": {"theme": "dark"}},
        )
    return code, license_key


def test_interop_overlay_checkin_and_apply_report(
    live_site, live_overlay_license, root_keys_file, tmp_path
):
    product, license_key = live_overlay_license
    client = Client(
        server=live_site, tenant="alpha", product=product, state_dir=tmp_path / "state",
        root_keys=RootKeys.from_jwks(root_keys_file.read_text()),
    )  # fmt: skip
    client.activate(license_key)

    assert client.overlay is not None
    assert client.overlay.values["ui"]["theme"] == "dark"
    assert client.overlay.release == client.manifest.overlay.release
    assert client.fetch_overlay() is None  # unchanged: the server returned 304 for the stored ETag
    assert client.report_overlay_result(client.overlay.release, ok=True) is True
    assert client.checkin() is True
