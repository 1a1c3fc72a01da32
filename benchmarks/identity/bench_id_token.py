"""ID token validation cost against the RSA signature check it cannot avoid.

    .venv/bin/python benchmarks/identity/bench_id_token.py [--tokens 2000] [--rounds 7]

Both variants check the same RS256 ID tokens (2048-bit key, claims shaped
like those of django-oauth-toolkit's provider). The floor verifies only the
RSA signature with `cryptography`, the least work any validator must do.
The measured path is `identity.oidc.id_token_validate` with the key set in
hand (as after the first sign-in, when it comes from the cache): it imports
the JWKS, verifies the JWS with joserfc, and checks `iss`, `aud`, `azp`,
`exp`, `iat`, `nonce` and `at_hash` with Authlib. The variants alternate
for `--rounds` rounds; the medians and bests are compared. No database or
network access: the configuration is an unsaved model instance.
"""

import argparse
import base64
import hashlib
import os
import statistics
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ISSUER = "https://idp.bench.example/o"
CLIENT_ID = "keyplane-bench"


def _setup_django() -> None:
    sys.path.insert(0, str(PROJECT_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("KEYPLANE_LOG_LEVEL", "WARNING")
    import django

    django.setup()


def _at_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2000, help="Tokens checked per round.")
    parser.add_argument("--rounds", type=int, default=7, help="Rounds per variant.")
    args = parser.parse_args()

    _setup_django()
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from joserfc import jwt
    from joserfc.jwk import KeySet, RSAKey

    from identity.oidc import id_token_validate
    from identity.platform.models import TenantOidcConfig

    key = RSAKey.generate_key(2048, parameters={"kid": "bench-key"})
    jwks = KeySet([key]).as_dict(private=False)
    public_key = key.public_key
    now = int(time.time())
    tokens = []
    for index in range(args.tokens):
        access_token = f"access-{index}"
        claims = {
            "iss": ISSUER,
            "sub": str(index),
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 3600,
            "auth_time": now,
            "nonce": f"nonce-{index}",
            "at_hash": _at_hash(access_token),
            "email": f"user{index}@bench.example",
            "groups": ["kp-it-admins", "everyone"],
            "jti": f"jti-{index}",
        }
        tokens.append((jwt.encode({"alg": "RS256", "kid": "bench-key"}, claims, key), access_token))

    config = TenantOidcConfig(issuer=ISSUER, client_id=CLIENT_ID, allowed_email_domains=["x.y"])
    metadata = {"issuer": ISSUER, "id_token_signing_alg_values_supported": ["RS256"]}

    def floor() -> None:
        for token, _ in tokens:
            header, payload, signature = token.split(".")
            public_key.verify(
                _b64decode(signature),
                f"{header}.{payload}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )

    def measured() -> None:
        for index, (token, access_token) in enumerate(tokens):
            id_token_validate(
                config=config,
                metadata=metadata,
                id_token=token,
                nonce=f"nonce-{index}",
                access_token=access_token,
                jwks=jwks,
            )

    timings: dict[str, list[float]] = {"floor": [], "validate": []}
    for _ in range(args.rounds):
        for name, variant in (("floor", floor), ("validate", measured)):
            start = time.perf_counter()
            variant()
            timings[name].append(time.perf_counter() - start)

    for name, values in timings.items():
        per_token = statistics.median(values) / args.tokens * 1e6
        print(
            f"{name:9s} best {min(values) * 1000:8.1f} ms  median "
            f"{statistics.median(values) * 1000:8.1f} ms  ({per_token:.0f} us per token)"
        )
    print(
        f"ratio of bests {min(timings['validate']) / min(timings['floor']):.2f}x, "
        f"ratio of medians "
        f"{statistics.median(timings['validate']) / statistics.median(timings['floor']):.2f}x"
    )


if __name__ == "__main__":
    main()
