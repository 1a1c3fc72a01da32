"""Effective-configuration resolution and validation for a fleet, against its floor.

Run: .venv/bin/python benchmarks/overlays/bench_resolution.py [--devices 10000] [--groups 50]

Measured path: for every device, find its group combination, then resolve
and validate its effective configuration through `overlays.resolution.Resolver`,
as publishing and serving do. Floor: the same merge and validation done
once per distinct combination, with no per-device loop. The
ratio shows that the work is done per combination, not per device. For
contrast, the naive path merges and validates again for every device.
"""

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.test")

import django

django.setup()

from overlays.merge import Layer, resolve  # noqa: E402
from overlays.resolution import GroupLayer, LayerSet, Resolver  # noqa: E402
from overlays.validation import OverlayValidator, TenantFacts  # noqa: E402

SECTIONS = 20
KEYS_PER_SECTION = 10


def build_schema() -> dict[str, Any]:
    sections = {}
    for s in range(SECTIONS):
        keys: dict[str, Any] = {}
        for k in range(KEYS_PER_SECTION):
            if k % 3 == 0:
                keys[f"k{k}"] = {"type": "integer", "minimum": 0, "maximum": 10_000}
            elif k % 3 == 1:
                keys[f"k{k}"] = {"enum": ["a", "b", "c", "d"]}
            else:
                keys[f"k{k}"] = {"type": "array", "items": {"type": "string", "maxLength": 40}}
        sections[f"s{s}"] = {"type": "object", "additionalProperties": False, "properties": keys}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "properties": sections,
    }


def default_value(k: int) -> Any:
    """Return a valid default for setting `k`, matching the kinds in `build_schema`."""
    if k % 3 == 0:
        return k
    if k % 3 == 1:
        return "a"
    return ["x", "y"]


def build_layers(groups: int, rng: random.Random) -> LayerSet:
    defaults = {
        f"s{s}": {f"k{k}": default_value(k) for k in range(KEYS_PER_SECTION)}
        for s in range(SECTIONS)
    }
    tenant = {f"s{s}": {"k0": 7, "k1": "b"} for s in range(0, SECTIONS, 2)}
    group_layers = tuple(
        GroupLayer(
            group_id=g + 1,
            name=f"group-{g}",
            position=g,
            patch={f"s{rng.randrange(SECTIONS)}": {"k3": rng.randrange(100), "k2": [f"g{g}"]}},
        )
        for g in range(groups)
    )
    return LayerSet("bench", 1, defaults, tenant, group_layers)


def measured(
    layer_set: LayerSet,
    device_groups: list[int | None],
    validator: OverlayValidator,
    facts: TenantFacts,
) -> int:
    resolver = Resolver(layer_set)
    issues = 0
    for group_id in device_groups:
        combination = resolver.combination_of([group_id])
        resolver.resolve(combination)
        issues += len(resolver.validate(combination, validator, facts))
    return issues


def floor(layer_set: LayerSet, validator: OverlayValidator, facts: TenantFacts) -> int:
    base = resolve(layer_set.layers()[:2])
    issues = len(validator.validate(base, facts=facts))
    for group in layer_set.groups:
        result = resolve([Layer(f"group:{group.name}", group.patch)], base=base)
        issues += len(validator.validate(result, facts=facts))
    return issues


def naive(
    layer_set: LayerSet,
    device_groups: list[int | None],
    validator: OverlayValidator,
    facts: TenantFacts,
) -> int:
    by_id = {g.group_id: g for g in layer_set.groups}
    issues = 0
    for group_id in device_groups:
        layers = layer_set.layers()[:2]
        if group_id is not None:
            group = by_id[group_id]
            layers.append(Layer(f"group:{group.name}", group.patch))
        issues += len(validator.validate(resolve(layers), facts=facts))
    return issues


def timed(run: Any) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000, help="number of devices")
    parser.add_argument("--groups", type=int, default=50, help="number of device groups")
    parser.add_argument("--repeats", type=int, default=15, help="runs per variant")
    parser.add_argument("--naive", action="store_true", help="also time per-device merging")
    args = parser.parse_args()

    rng = random.Random(20261204)
    layer_set = build_layers(args.groups, rng)
    validator = OverlayValidator(build_schema())
    facts = TenantFacts(entitlements=frozenset())
    # One device in ten is in no group; the rest spread over the groups.
    device_groups = [
        None if rng.random() < 0.1 else rng.randint(1, args.groups) for _ in range(args.devices)
    ]

    assert measured(layer_set, device_groups, validator, facts) == 0
    # Alternate the two variants so that load from other processes hits both alike.
    floor_times, path_times = [], []
    for _ in range(args.repeats):
        floor_times.append(timed(lambda: floor(layer_set, validator, facts)))
        path_times.append(timed(lambda: measured(layer_set, device_groups, validator, facts)))
    floor_best, floor_median = min(floor_times), statistics.median(floor_times)
    path_best, path_median = min(path_times), statistics.median(path_times)
    print(f"devices={args.devices} groups={args.groups} combinations={args.groups + 1}")
    for label, best, median in (
        ("floor (once per combination)", floor_best, floor_median),
        ("resolver over every device", path_best, path_median),
    ):
        print(f"{label:30} best {best * 1000:.1f} ms, median {median * 1000:.1f} ms")
    print(f"ratio of bests: {path_best / floor_best:.2f}x (target: at most 2x)")
    print(f"ratio of medians: {path_median / floor_median:.2f}x")
    if args.naive:
        naive_best = timed(lambda: naive(layer_set, device_groups, validator, facts))
        factor = naive_best / floor_best
        naive_ms = naive_best * 1000
        print(f"naive per-device merge+validate: {naive_ms:.0f} ms ({factor:.0f}x the floor)")


if __name__ == "__main__":
    main()
