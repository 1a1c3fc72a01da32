"""Registry of claims that other apps add to every new manifest.

A contributor is `contributor(product_code) -> dict`; its result is merged
into the manifest claims when a version is published. The overlays app, for
example, registers one that returns `{"overlay": {"release": N, "sha256": ...}}`.
Licensing never imports the contributing apps, so they register from their
own `AppConfig.ready()`.
"""

from collections.abc import Callable
from typing import Any

Contributor = Callable[[str], dict[str, Any]]

_contributors: list[Contributor] = []


def register(contributor: Contributor) -> Contributor:
    """Add `contributor` once; return it, so this also works as a decorator."""
    if contributor not in _contributors:
        _contributors.append(contributor)
    return contributor


def unregister(contributor: Contributor) -> None:
    if contributor in _contributors:
        _contributors.remove(contributor)


def contributions_for(product_code: str) -> dict[str, Any]:
    """Return the merged claims of every contributor, in registration order."""
    merged: dict[str, Any] = {}
    for contributor in _contributors:
        merged.update(contributor(product_code) or {})
    return merged
