"""Verified objects built from the shared vectors, for decision and client tests."""

from keyplane_client.tokens import License, Manifest, verify_license, verify_manifest
from keyplane_client.trust import Keyring, RootKeys

from tests.vectors.tokens import PRODUCT, TENANT, VectorKeys


def keyring_for(keys: VectorKeys) -> Keyring:
    return Keyring.from_certificates(
        [keys.key_certificate()], RootKeys.from_jwks(keys.root_jwks), tenant=TENANT
    )


def license_for(keys: VectorKeys, **overrides) -> License:
    return verify_license(keys.license(**overrides), keyring_for(keys), product=PRODUCT)


def manifest_for(keys: VectorKeys, **overrides) -> Manifest:
    return verify_manifest(keys.manifest(**overrides), keyring_for(keys), product=PRODUCT)
