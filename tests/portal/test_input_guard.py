"""NUL characters are rejected before they reach PostgreSQL."""

import io

import pytest
from django.test import Client
from rest_framework.exceptions import ParseError

from portal.input_guard import StrictJSONParser


def test_nul_in_query_string_is_request_invalid(db: None) -> None:
    response = Client().get("/t/alpha/api/v1/client/manifest", {"product": "ab\x00c"})
    assert response.status_code == 400
    assert response.json()["code"] == "request_invalid"
    assert "'product'" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [b'{"name": "a\\u0000b"}', b'{"a\\u0000": 1}', b'{"list": [["x\\u0000"]]}'],
)
def test_strict_json_parser_rejects_nul(body: bytes) -> None:
    with pytest.raises(ParseError, match="NUL character"):
        StrictJSONParser().parse(io.BytesIO(body), "application/json", {})


def test_strict_json_parser_accepts_plain_document() -> None:
    parsed = StrictJSONParser().parse(io.BytesIO(b'{"a": ["b", 1]}'), "application/json", {})
    assert parsed == {"a": ["b", 1]}
