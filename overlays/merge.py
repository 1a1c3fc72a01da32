"""JSON Merge Patch (RFC 7396) over an ordered list of layers, with provenance.

The effective configuration of a device is the global defaults of the
product, patched by the tenant overlay, then by each of the device's group
overlays in their stated order. Each patch follows RFC 7396: objects merge
key by key, arrays and scalars replace the earlier value whole, and `null`
removes the key.

Provenance maps the JSON Pointer (RFC 6901) of every leaf of the result to
the name of the layer that set it. A leaf is a scalar, an array or an empty
object, because an array is replaced whole and so has a single origin.
Removals are recorded too, so a validation error about a missing key can name
the layer whose `null` removed it.
"""

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

JSONValue = Any

DEFAULTS_LAYER = "defaults"
TENANT_LAYER = "tenant"
GROUP_LAYER_PREFIX = "group:"


def group_layer_name(group_slug: str) -> str:
    return f"{GROUP_LAYER_PREFIX}{group_slug}"


@dataclass(frozen=True)
class Layer:
    """One merge patch and the name that provenance reports for its values."""

    name: str
    patch: Mapping[str, JSONValue]


@dataclass
class Resolution:
    """An effective configuration and where each of its values came from."""

    config: dict[str, JSONValue]
    provenance: dict[str, str] = field(default_factory=dict)
    removed: dict[str, str] = field(default_factory=dict)

    def copy(self) -> "Resolution":
        return Resolution(
            config=copy.deepcopy(self.config),
            provenance=dict(self.provenance),
            removed=dict(self.removed),
        )

    def layer_of(self, pointer: str) -> str | None:
        """Return the layer that set `pointer`, its nearest set ancestor, or its remover."""
        probe = pointer
        while True:
            if probe in self.provenance:
                return self.provenance[probe]
            if probe in self.removed:
                return self.removed[probe]
            if not probe:
                return None
            probe = probe.rsplit("/", 1)[0]


def escape_token(token: str) -> str:
    """Escape one reference token of a JSON Pointer (RFC 6901, section 3)."""
    return token.replace("~", "~0").replace("/", "~1")


def pointer_join(pointer: str, token: str | int) -> str:
    return f"{pointer}/{escape_token(str(token))}"


def pointer_from_path(path: Iterable[str | int]) -> str:
    pointer = ""
    for token in path:
        pointer = pointer_join(pointer, token)
    return pointer


def _drop_subtree(index: dict[str, str], pointer: str) -> None:
    prefix = pointer + "/"
    for key in [key for key in index if key == pointer or key.startswith(prefix)]:
        del index[key]


def _apply(
    target: dict[str, JSONValue],
    patch: Mapping[str, JSONValue],
    pointer: str,
    layer: str,
    resolution: Resolution,
) -> None:
    for key, value in patch.items():
        child = pointer_join(pointer, key)
        if value is None:
            if key in target:
                del target[key]
                _drop_subtree(resolution.provenance, child)
                resolution.removed[child] = layer
            continue

        _drop_subtree(resolution.removed, child)
        if isinstance(value, dict):
            existing = target.get(key)
            if not isinstance(existing, dict):
                # A patch object over a scalar, an array or nothing starts from {}.
                _drop_subtree(resolution.provenance, child)
                target[key] = {}
            _apply(target[key], value, child, layer, resolution)
            if not target[key]:
                resolution.provenance[child] = layer
            else:
                resolution.provenance.pop(child, None)
        else:
            _drop_subtree(resolution.provenance, child)
            target[key] = copy.deepcopy(value)
            resolution.provenance[child] = layer


def merge_patch(base: Resolution, layer: Layer) -> Resolution:
    """Apply one layer to a copy of `base`; `base` is left unchanged."""
    if not isinstance(layer.patch, Mapping):
        raise TypeError(f"layer {layer.name!r} is not a JSON object")
    result = base.copy()
    _apply(result.config, layer.patch, "", layer.name, result)
    return result


def resolve(layers: Sequence[Layer], base: Resolution | None = None) -> Resolution:
    """Merge `layers` in order onto `base` (an empty configuration by default)."""
    result = base.copy() if base is not None else Resolution(config={})
    for layer in layers:
        if not isinstance(layer.patch, Mapping):
            raise TypeError(f"layer {layer.name!r} is not a JSON object")
        _apply(result.config, layer.patch, "", layer.name, result)
    return result


def merge_plain(target: JSONValue, patch: JSONValue) -> JSONValue:
    """RFC 7396 `MergePatch(Target, Patch)` without provenance, for any JSON values."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_plain(result.get(key), value)
    return result


def flatten(config: JSONValue, pointer: str = "") -> dict[str, JSONValue]:
    """Map the pointer of every leaf of `config` to its value (leaves as in provenance)."""
    if isinstance(config, dict) and (config or not pointer):
        leaves: dict[str, JSONValue] = {}
        for key, child in config.items():
            leaves.update(flatten(child, pointer_join(pointer, key)))
        return leaves
    return {pointer: config}


def diff(before: JSONValue, after: JSONValue) -> list[dict[str, JSONValue]]:
    """List the leaves that differ, key by key: `{"path", "op", "before", "after"}`."""
    old, new = flatten(before), flatten(after)
    changes: list[dict[str, JSONValue]] = []
    for pointer in sorted(old.keys() | new.keys()):
        if pointer in old and pointer not in new:
            changes.append({"path": pointer, "op": "remove", "before": old[pointer], "after": None})
        elif pointer not in old:
            changes.append({"path": pointer, "op": "add", "before": None, "after": new[pointer]})
        elif old[pointer] != new[pointer] or type(old[pointer]) is not type(new[pointer]):
            changes.append(
                {"path": pointer, "op": "replace", "before": old[pointer], "after": new[pointer]}
            )
    return changes
