"""The client API against the real multi-process server (gunicorn, 4 workers).

Rows are committed (the server processes cannot see a test transaction),
so every test makes its own policy and grant and checks only those.
"""

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django_tenants.utils import schema_context

from tests.licensing.conftest import DeviceKey, grant_make, product_ensure

pytestmark = pytest.mark.live


def _call(
    base_url: str,
    endpoint: str,
    body: dict[str, Any] | None,
    key: DeviceKey | None,
    method: str = "POST",
) -> tuple[int, dict[str, Any], dict[str, str]]:
    url = f"{base_url}/t/alpha/api/v1/client/{endpoint}"
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["DPoP"] = key.proof(method, url)
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else {}, dict(response.headers)
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else {}, dict(error.headers)


@pytest.fixture
def live_grant(committed_db: None) -> Any:
    product_ensure()

    def make(seat_count: int) -> tuple[Any, str]:
        with schema_context("alpha"):
            return grant_make(seat_count=seat_count)

    return make


def test_concurrent_activations_respect_seat_limit(live_site: str, live_grant: Any) -> None:
    from licensing.models import Seat

    grant, license_key = live_grant(10)
    body = {"license_key": license_key, "product": "atlas", "device": {"name": "pc"}}
    keys = [DeviceKey() for _ in range(50)]
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lambda key: _call(live_site, "activate", body, key), keys))

    statuses = sorted(status for status, _, _ in results)
    assert statuses.count(201) == 10, statuses
    assert statuses.count(409) == 40, statuses
    refused = [payload for status, payload, _ in results if status == 409]
    assert {payload["code"] for payload in refused} == {"seat_limit_reached"}
    assert all(payload["remediation"] for payload in refused)
    with schema_context("alpha"):
        assert Seat.objects.filter(grant=grant, status="active").count() == 10


def test_concurrent_reactivation_takes_one_seat(live_site: str, live_grant: Any) -> None:
    from licensing.models import Seat

    grant, license_key = live_grant(5)
    body = {"license_key": license_key, "product": "atlas"}
    key = DeviceKey()
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda _: _call(live_site, "activate", body, key), range(10)))

    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200] * 9 + [201], statuses
    with schema_context("alpha"):
        assert Seat.objects.filter(grant=grant, status="active").count() == 1


def test_client_round_trip_verified_offline(live_site: str, live_grant: Any) -> None:
    """Activate, refresh, fetch the manifest and deactivate, verifying with two JOSE libraries."""
    import jwt
    from keyplane_client.tokens import verify_license, verify_manifest
    from keyplane_client.trust import Keyring, RootKeys

    from licensing.jws import jwk_thumbprint, public_key_from_jwk

    _, license_key = live_grant(2)
    key = DeviceKey()
    status, activated, _ = _call(
        live_site, "activate", {"license_key": license_key, "product": "atlas"}, key
    )
    assert status == 201, activated

    with urllib.request.urlopen(f"{live_site}/.well-known/keyplane/root-keys.json") as response:
        jwks = json.loads(response.read())
    _, keys_body, _ = _call(live_site, "keys", None, None, method="GET")

    # PyJWT, given only the published keys.
    roots = {item["kid"]: public_key_from_jwk(item) for item in jwks["keys"]}
    tenant_keys = {}
    for certificate in keys_body["keys"]:
        root_kid = jwt.get_unverified_header(certificate)["kid"]
        certified = jwt.decode(certificate, roots[root_kid], algorithms=["EdDSA"])
        tenant_keys[certified["jwk"]["kid"]] = public_key_from_jwk(certified["jwk"])
    token = activated["token"]
    claims = jwt.decode(
        token,
        tenant_keys[jwt.get_unverified_header(token)["kid"]],
        algorithms=["EdDSA"],
        audience="atlas",
    )
    assert claims["cnf"]["jkt"] == jwk_thumbprint(key.jwk)

    # The desktop library, given the same keys.
    keyring = Keyring.from_certificates(keys_body["keys"], RootKeys.from_jwks(jwks), tenant="alpha")
    license_ = verify_license(
        token, keyring, product="atlas", key_thumbprint=jwk_thumbprint(key.jwk)
    )
    assert license_.entitlements == frozenset({"export", "sync"})
    manifest = verify_manifest(activated["manifest"], keyring, product="atlas")
    assert manifest.version >= 1

    status, refreshed, _ = _call(live_site, "refresh", {"product": "atlas"}, key)
    assert status == 200, refreshed
    assert (
        verify_license(refreshed["token"], keyring, product="atlas").token_id != license_.token_id
    )

    url = f"{live_site}/t/alpha/api/v1/client/manifest?product=atlas"
    with urllib.request.urlopen(url) as response:
        etag = response.headers["ETag"]
    request = urllib.request.Request(url, headers={"If-None-Match": etag})
    with pytest.raises(urllib.error.HTTPError) as not_modified:
        urllib.request.urlopen(request)
    assert not_modified.value.code == 304

    status, _, _ = _call(live_site, "deactivate", {"product": "atlas"}, key)
    assert status == 204


def test_desktop_client_full_cycle(live_site: str, live_grant: Any, tmp_path: Any) -> None:
    """The desktop library activates, refreshes, fetches the manifest and deactivates."""
    from keyplane_client.client import Client
    from keyplane_client.decision import DecisionState
    from keyplane_client.trust import RootKeys

    from licensing.models import Seat

    grant, license_key = live_grant(1)
    with urllib.request.urlopen(f"{live_site}/.well-known/keyplane/root-keys.json") as response:
        root_keys = RootKeys.from_jwks(response.read())
    client = Client(
        server=live_site,
        tenant="alpha",
        product="atlas",
        state_dir=tmp_path,
        root_keys=root_keys,
    )

    activated = client.activate(license_key, device_name="e2e", platform="linux")
    assert activated.state == DecisionState.VALID, activated
    assert set(activated.features) >= {"export", "sync"}
    refreshed = client.refresh()
    assert refreshed.state == DecisionState.VALID, refreshed
    client.fetch_manifest()
    with schema_context("alpha"):
        assert Seat.objects.filter(grant=grant, status="active").count() == 1

    client.deactivate()
    with schema_context("alpha"):
        assert Seat.objects.filter(grant=grant, status="active").count() == 0
