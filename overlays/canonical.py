"""Canonical JSON (RFC 8785, JCS) and the SHA-256 content address built on it.

Two documents that differ only in key order, whitespace or number spelling
(`1.0` and `1`) canonicalise to the same bytes, so they get the same address.
A release is identified by the address of its canonical content, which is
what makes publishing identical content a no-op.
"""

import hashlib
from typing import Any

import rfc8785


def canonical_json(document: Any) -> bytes:
    """Serialise `document` as RFC 8785 canonical JSON (UTF-8 bytes).

    Raises `rfc8785.CanonicalizationError` (a `ValueError`) for values JSON
    cannot carry exactly, such as NaN or integers beyond the IEEE 754 range.
    """
    return rfc8785.dumps(document)


def content_address(document: Any) -> str:
    """Return the lowercase hex SHA-256 of the canonical JSON of `document`."""
    return hashlib.sha256(canonical_json(document)).hexdigest()
