"""Effective configurations of a set of layers, computed once per group combination.

Devices that share the same group layers share the same effective
configuration, so a `Resolver` merges and validates each distinct
combination once and every device of that combination reuses the result.
With one group per device, 10,000 devices in 50 groups cost 51 merges, not
10,000. The layer set is plain data, so the same code serves drafts,
releases, previews and the benchmark.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from overlays.merge import (
    DEFAULTS_LAYER,
    TENANT_LAYER,
    Layer,
    Resolution,
    group_layer_name,
    resolve,
)
from overlays.validation import OverlayValidator, TenantFacts, ValidationIssue, secrets_scan

Combination = tuple[int, ...]


@dataclass(frozen=True)
class GroupLayer:
    """A device group's patch and its place in the merge order."""

    group_id: int
    name: str
    position: int
    patch: Mapping[str, Any]


@dataclass(frozen=True)
class LayerSet:
    """Every layer of one product's overlay: what a release freezes."""

    product_code: str
    schema_version: int
    defaults: Mapping[str, Any]
    tenant: Mapping[str, Any]
    groups: tuple[GroupLayer, ...] = ()

    def content(self) -> dict[str, Any]:
        """Return the JSON document that a release stores and hashes."""
        ordered = sorted(self.groups, key=lambda g: (g.position, g.name))
        return {
            "product": self.product_code,
            "schema_version": self.schema_version,
            "defaults": dict(self.defaults),
            "tenant": dict(self.tenant),
            "groups": [
                {"id": g.group_id, "name": g.name, "position": g.position, "patch": dict(g.patch)}
                for g in ordered
            ],
        }

    @classmethod
    def from_content(cls, content: Mapping[str, Any]) -> "LayerSet":
        return cls(
            product_code=content["product"],
            schema_version=content["schema_version"],
            defaults=content["defaults"],
            tenant=content["tenant"],
            groups=tuple(
                GroupLayer(g["id"], g["name"], g["position"], g["patch"]) for g in content["groups"]
            ),
        )

    def layers(self) -> list[Layer]:
        """Return every layer with its provenance name, in merge order."""
        ordered = sorted(self.groups, key=lambda g: (g.position, g.name))
        return [
            Layer(DEFAULTS_LAYER, self.defaults),
            Layer(TENANT_LAYER, self.tenant),
            *(Layer(group_layer_name(g.name), g.patch) for g in ordered),
        ]


def combination_key(combination: Combination) -> str:
    return ",".join(str(group_id) for group_id in combination)


@dataclass
class Resolver:
    """Merges and validates a layer set, caching each distinct group combination."""

    layer_set: LayerSet
    _base: Resolution | None = None
    _by_group: dict[int, GroupLayer] = field(default_factory=dict)
    _resolved: dict[Combination, Resolution] = field(default_factory=dict)
    _issues: dict[Combination, list[ValidationIssue]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._by_group = {g.group_id: g for g in self.layer_set.groups}

    def combination_of(self, group_ids: Iterable[int | None]) -> Combination:
        """Return the combination of the layered groups among `group_ids`, in merge order."""
        layered = {g: self._by_group[g] for g in group_ids if g is not None and g in self._by_group}
        ordered = sorted(layered.values(), key=lambda g: (g.position, g.name))
        return tuple(g.group_id for g in ordered)

    def target_name(self, combination: Combination) -> str:
        if not combination:
            return TENANT_LAYER
        return "+".join(group_layer_name(self._by_group[g].name) for g in combination)

    def resolve(self, combination: Combination) -> Resolution:
        """Return the effective configuration of a combination (cached; do not mutate)."""
        cached = self._resolved.get(combination)
        if cached is not None:
            return cached
        if self._base is None:
            self._base = resolve(self.layer_set.layers()[:2])
        groups = [self._by_group[g] for g in combination]
        result = resolve(
            [Layer(group_layer_name(g.name), g.patch) for g in groups], base=self._base
        )
        self._resolved[combination] = result
        return result

    def validate(
        self, combination: Combination, validator: OverlayValidator, facts: TenantFacts
    ) -> list[ValidationIssue]:
        """Return the issues of a combination's effective configuration (cached)."""
        cached = self._issues.get(combination)
        if cached is None:
            cached = validator.validate(
                self.resolve(combination), facts=facts, target=self.target_name(combination)
            )
            self._issues[combination] = cached
        return cached

    def targets(self) -> list[Combination]:
        """Return every combination a device can have: no group, or one layered group.

        A device belongs to at most one device group, so these are all of them.
        """
        return [(), *((g.group_id,) for g in self.layer_set.groups)]

    def validate_all(
        self, validator: OverlayValidator, facts: TenantFacts
    ) -> list[ValidationIssue]:
        """Return the issues of every target plus plaintext secrets in every tenant layer."""
        issues: list[ValidationIssue] = []
        for layer in self.layer_set.layers()[1:]:
            issues.extend(secrets_scan(layer))
        seen: set[tuple[str, str | None, str, str]] = set()
        for combination in self.targets():
            for issue in self.validate(combination, validator, facts):
                # An issue of the tenant layer shows up in every target; report it once.
                identity = (issue.path, issue.layer, issue.rule, issue.message)
                if issue.layer in (DEFAULTS_LAYER, TENANT_LAYER) and identity in seen:
                    continue
                seen.add(identity)
                issues.append(issue)
        return issues
