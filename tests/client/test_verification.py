"""Verification of license tokens, manifests, overlays and key certificates."""

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from keyplane_client.errors import VerificationError
from keyplane_client.tokens import verify_license, verify_manifest, verify_overlay
from keyplane_client.trust import Keyring, RootKeys, verify_key_certificate

from tests.vectors.tokens import (
    OTHER_TENANT,
    PRODUCT,
    TENANT,
    b64url,
    hostile_licenses,
    jwk_of,
    load_corpus,
    make_keys,
)

KEYS = make_keys()
CORPUS = load_corpus()
HOSTILE = hostile_licenses(KEYS)


def keyring_for(keys=KEYS):
    root_keys = RootKeys.from_jwks(keys.root_jwks)
    return Keyring.from_certificates([keys.key_certificate()], root_keys, tenant=TENANT)


def verify(token, keys=KEYS):
    return verify_license(
        token,
        keyring_for(keys),
        product=PRODUCT,
        device_id="42",
        key_thumbprint=keys.device_thumbprint,
    )


def test_corpus_matches_builders():
    assert sorted(CORPUS) == sorted(HOSTILE)


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_hostile_license_rejected(case):
    with pytest.raises(VerificationError) as caught:
        verify(HOSTILE[case])
    assert caught.value.reason == CORPUS[case]["reason"]


def test_valid_license_verifies():
    license = verify(KEYS.license())
    assert license.entitlements == frozenset({"export", "render"})
    assert license.tenant == TENANT
    assert license.device_id == "42"
    assert license.term_end == KEYS.now + 30 * 24 * 3600


def test_license_without_term_end_uses_exp():
    license = verify(KEYS.license(term_end=None))
    assert license.term_end == license.expires_at


def test_license_audience_list_accepted():
    license = verify(KEYS.license(aud=[PRODUCT, "other"]))
    assert license.product == PRODUCT


def test_license_bytes_input_accepted():
    assert verify(KEYS.license().encode()).device_id == "42"


def test_license_signed_outside_key_window_rejected():
    keys = make_keys()
    root_keys = RootKeys.from_jwks(keys.root_jwks)
    certificate = keys.key_certificate(nbf=keys.now + 10, iat=keys.now + 10)
    keyring = Keyring.from_certificates([certificate], root_keys, tenant=TENANT)
    with pytest.raises(VerificationError) as caught:
        verify_license(keys.license(), keyring, product=PRODUCT)
    assert caught.value.reason == "key_expired"


def test_key_certificate_from_unpinned_root_rejected():
    certificate = KEYS.key_certificate(signer=KEYS.attacker)
    with pytest.raises(VerificationError) as caught:
        verify_key_certificate(certificate, RootKeys.from_jwks(KEYS.root_jwks), tenant=TENANT)
    assert caught.value.reason == "signature_invalid"


def test_key_certificate_for_other_tenant_rejected():
    with pytest.raises(VerificationError) as caught:
        verify_key_certificate(
            KEYS.other_tenant_certificate(), RootKeys.from_jwks(KEYS.root_jwks), tenant=TENANT
        )
    assert caught.value.reason == "tenant_mismatch"


def test_key_certificate_retired_status_rejected():
    certificate = KEYS.key_certificate(status="compromised")
    with pytest.raises(VerificationError) as caught:
        verify_key_certificate(certificate, RootKeys.from_jwks(KEYS.root_jwks), tenant=TENANT)
    assert caught.value.reason == "key_cert_invalid"


def test_key_certificate_with_private_key_rejected():
    jwk = {**jwk_of(KEYS.tenant_key, "k"), "d": "B" * 43}
    certificate = KEYS.key_certificate(jwk=jwk)
    with pytest.raises(VerificationError) as caught:
        verify_key_certificate(certificate, RootKeys.from_jwks(KEYS.root_jwks), tenant=TENANT)
    assert caught.value.reason == "key_cert_invalid"


def test_root_keys_empty_rejected():
    with pytest.raises(VerificationError) as caught:
        RootKeys.from_jwks({"keys": []})
    assert caught.value.reason == "root_keys_missing"


def test_manifest_verifies():
    manifest = verify_manifest(KEYS.manifest(), keyring_for(), product=PRODUCT)
    assert manifest.version == 3
    assert manifest.fallback_features == frozenset({"view"})
    assert len(manifest.key_certificates) == 1


def test_manifest_revocations_read():
    token = KEYS.manifest(revoked={"grants": ["17"], "devices": ["abc"], "tokens": ["t1"]})
    revocations = verify_manifest(token, keyring_for(), product=PRODUCT).revocations
    assert revocations.grants == frozenset({"17"})
    assert revocations.devices == frozenset({"abc"})
    assert revocations.token_ids == frozenset({"t1"})


def test_manifest_as_license_rejected():
    with pytest.raises(VerificationError) as caught:
        verify(KEYS.manifest())
    assert caught.value.reason == "token_typ_mismatch"


def test_license_as_manifest_rejected():
    with pytest.raises(VerificationError) as caught:
        verify_manifest(KEYS.license(), keyring_for(), product=PRODUCT)
    assert caught.value.reason == "token_typ_mismatch"


def test_manifest_other_tenant_rejected():
    with pytest.raises(VerificationError) as caught:
        verify_manifest(KEYS.manifest(tid=OTHER_TENANT), keyring_for(), product=PRODUCT)
    assert caught.value.reason == "tenant_mismatch"


def test_manifest_without_version_rejected():
    with pytest.raises(VerificationError) as caught:
        verify_manifest(KEYS.manifest(mver=None), keyring_for(), product=PRODUCT)
    assert caught.value.reason == "claim_missing"


def test_overlay_matches_pointer():
    import hashlib

    from keyplane_client.tokens import OverlayPointer, canonical_json

    config = {"theme": "dark", "limits": {"b": 1, "a": 2.0}}
    digest = hashlib.sha256(canonical_json(config)).hexdigest()
    overlay = verify_overlay(
        KEYS.overlay(release=4, config=config),
        keyring_for(),
        product=PRODUCT,
        pointer=OverlayPointer(release=4, sha256=digest),
    )
    assert overlay.values["theme"] == "dark"


def test_overlay_other_release_rejected():
    from keyplane_client.tokens import OverlayPointer

    with pytest.raises(VerificationError) as caught:
        verify_overlay(
            KEYS.overlay(release=3),
            keyring_for(),
            product=PRODUCT,
            pointer=OverlayPointer(release=4, sha256="00"),
        )
    assert caught.value.reason == "overlay_mismatch"


def test_overlay_base_release_accepted_during_rollout():
    from keyplane_client.tokens import OverlayPointer

    base = OverlayPointer(release=3, sha256="ab" * 32)
    overlay = verify_overlay(
        KEYS.overlay(release=3, sha256="ab" * 32),
        keyring_for(),
        product=PRODUCT,
        pointer=OverlayPointer(release=4, sha256="cd" * 32, base=base),
    )
    assert overlay.release == 3


def test_overlay_outside_current_and_base_rejected():
    from keyplane_client.tokens import OverlayPointer

    base = OverlayPointer(release=3, sha256="ab" * 32)
    with pytest.raises(VerificationError) as caught:
        verify_overlay(
            KEYS.overlay(release=2, sha256="ef" * 32),
            keyring_for(),
            product=PRODUCT,
            pointer=OverlayPointer(release=4, sha256="cd" * 32, base=base),
        )
    assert caught.value.reason == "overlay_mismatch"


def test_manifest_overlay_base_parsed():
    from keyplane_client.tokens import verify_manifest

    manifest = verify_manifest(
        KEYS.manifest(
            overlay={
                "release": 4,
                "sha256": "CD" * 32,
                "base": {"release": 3, "sha256": "ab" * 32},
            }
        ),
        keyring_for(),
        product=PRODUCT,
    )
    assert manifest.overlay is not None
    assert manifest.overlay.base is not None
    assert manifest.overlay.base.release == 3


def test_canonical_json_matches_rfc8785():
    rfc8785 = pytest.importorskip("rfc8785")
    from keyplane_client.tokens import canonical_json

    document = {"z": [1, 2.5, "é", None, True], "a": {"€": 1.0, "b": -0.5}, "\u00e9": "x"}
    assert canonical_json(document) == rfc8785.dumps(document)


def test_pyjwt_verifies_valid_license():
    jwt = pytest.importorskip("jwt")
    token = KEYS.license()
    claims = jwt.decode(
        token,
        KEYS.tenant_key.public_key(),
        algorithms=["EdDSA"],
        audience=PRODUCT,
        options={
            "require": ["exp", "iat", "nbf"],
            "verify_exp": False,
            "verify_nbf": False,
            "verify_iat": False,
        },
    )
    assert claims["did"] == "42"


def test_joserfc_verifies_valid_license():
    pytest.importorskip("joserfc")
    from joserfc import jws
    from joserfc.jwk import OKPKey

    key = OKPKey.import_key(jwk_of(KEYS.tenant_key))
    result = jws.deserialize_compact(KEYS.license(), key, algorithms=["EdDSA"])
    assert result.headers()["typ"] == "kp-license+jwt"


BASE64URL_CHARACTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
VALID_TOKEN = KEYS.license()


@settings(max_examples=500, deadline=None)
@given(
    position=st.integers(min_value=0, max_value=len(VALID_TOKEN) - 1),
    replacement=st.sampled_from(BASE64URL_CHARACTERS),
)
def test_license_any_character_change_rejected(position, replacement):
    assume(VALID_TOKEN[position] != replacement)
    mutated = VALID_TOKEN[:position] + replacement + VALID_TOKEN[position + 1 :]
    with pytest.raises(VerificationError):
        verify(mutated)


@settings(max_examples=500, deadline=None)
@given(text=st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_license_arbitrary_input_raises_only_verification_error(text):
    with pytest.raises(VerificationError):
        verify(text)


def test_license_deeply_nested_json_rejected():
    nested = b64url(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(VerificationError) as caught:
        verify(f"{nested}.{nested}.AA")
    assert caught.value.reason == "token_malformed"
