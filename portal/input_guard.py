"""Rejection of input that PostgreSQL text columns cannot store.

PostgreSQL text values cannot contain the NUL character (U+0000). Without
these guards a NUL in a query parameter or a JSON string reaches the
database and fails there as a 500. The middleware checks query strings for
every request; `StrictJSONParser` checks every key and string of a JSON body.
"""

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(key) or _contains_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_contains_nul(item) for item in value)
    return False


class NulCharacterMiddleware:
    """Return 400 `request_invalid` for a query string that contains a NUL character."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Imported here because DRF imports this module while loading its
        # settings, before portal.problems (which imports DRF) can finish.
        from portal.problems import RequestInvalid, problem_response

        for name, values in request.GET.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                return problem_response(
                    RequestInvalid(
                        f"Query parameter {name!r} contains a NUL character (%00), "
                        "which no field accepts; remove it."
                    ),
                    request,
                )
        return self.get_response(request)


class StrictJSONParser(JSONParser):
    """JSON parser that rejects NUL characters anywhere in the document."""

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        if _contains_nul(data):
            raise ParseError("A JSON string or key contains a NUL character (\\u0000); remove it.")
        return data
