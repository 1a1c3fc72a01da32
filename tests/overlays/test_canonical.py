import hashlib

import pytest

from overlays.canonical import canonical_json, content_address


def test_canonical_json_sorts_keys_and_normalises_numbers():
    assert canonical_json({"b": 1.0, "a": [1e2, "é"]}) == '{"a":[100,"é"],"b":1}'.encode()


def test_content_address_ignores_key_order():
    assert content_address({"a": 1, "b": {"c": 2, "d": 3}}) == content_address(
        {"b": {"d": 3, "c": 2}, "a": 1}
    )


def test_content_address_is_sha256_of_canonical_bytes():
    assert content_address({"a": 1}) == hashlib.sha256(b'{"a":1}').hexdigest()


def test_content_address_differs_for_different_content():
    assert content_address({"a": 1}) != content_address({"a": 2})


def test_canonical_json_rejects_nan():
    with pytest.raises(ValueError):  # noqa: PT011  # rfc8785 raises a ValueError subclass
        canonical_json({"a": float("nan")})
