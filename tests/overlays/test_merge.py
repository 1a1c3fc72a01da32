from overlays.merge import Layer, diff, merge_plain, resolve


def test_resolve_null_removes_key():
    result = resolve(
        [
            Layer("defaults", {"proxy": {"host": "a", "port": 80}}),
            Layer("tenant", {"proxy": {"port": None}}),
        ]
    )

    assert result.config == {"proxy": {"host": "a"}}
    assert "/proxy/port" not in result.provenance
    assert result.removed["/proxy/port"] == "tenant"


def test_resolve_array_replaces_whole():
    result = resolve(
        [
            Layer("defaults", {"plugins": ["spell", "lint", "git"]}),
            Layer("group:eng", {"plugins": ["git"]}),
        ]
    )

    assert result.config == {"plugins": ["git"]}
    assert result.provenance == {"/plugins": "group:eng"}


def test_resolve_objects_merge_with_provenance_per_key():
    result = resolve(
        [
            Layer(
                "defaults", {"ui": {"theme": "light", "editor": {"font_size": 12, "wrap": True}}}
            ),
            Layer("tenant", {"ui": {"editor": {"font_size": 14}}}),
            Layer("group:eng", {"ui": {"theme": "dark"}}),
        ]
    )

    assert result.config == {"ui": {"theme": "dark", "editor": {"font_size": 14, "wrap": True}}}
    assert result.provenance == {
        "/ui/theme": "group:eng",
        "/ui/editor/font_size": "tenant",
        "/ui/editor/wrap": "defaults",
    }


def test_resolve_object_over_scalar_replaces_scalar():
    result = resolve(
        [
            Layer("defaults", {"proxy": "off"}),
            Layer("tenant", {"proxy": {"host": "h", "port": None}}),
        ]
    )

    assert result.config == {"proxy": {"host": "h"}}
    assert result.provenance == {"/proxy/host": "tenant"}


def test_resolve_readding_removed_key_clears_removal():
    result = resolve(
        [
            Layer("defaults", {"a": 1}),
            Layer("tenant", {"a": None}),
            Layer("group:x", {"a": 2}),
        ]
    )

    assert result.config == {"a": 2}
    assert result.removed == {}
    assert result.provenance == {"/a": "group:x"}


def test_resolve_leaves_inputs_unchanged():
    defaults = {"ui": {"tabs": ["a"]}}
    patch = {"ui": {"tabs": ["b"], "x": None}}

    base = resolve([Layer("defaults", defaults)])
    resolve([Layer("tenant", patch)], base=base)

    assert defaults == {"ui": {"tabs": ["a"]}}
    assert patch == {"ui": {"tabs": ["b"], "x": None}}
    assert base.config == {"ui": {"tabs": ["a"]}}


def test_resolve_pointer_escapes_slash_and_tilde():
    result = resolve([Layer("tenant", {"a/b": {"c~d": 1}})])

    assert result.provenance == {"/a~1b/c~0d": "tenant"}


def test_merge_plain_matches_rfc7396_examples():
    # The test cases of RFC 7396, appendix A.
    cases = [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ]
    for target, patch, expected in cases:
        assert merge_plain(target, patch) == expected, (target, patch)


def test_resolve_agrees_with_merge_plain():
    layers = [
        Layer("defaults", {"a": {"b": 1, "c": [1]}, "d": "x"}),
        Layer("tenant", {"a": {"c": None, "e": {"f": None, "g": 2}}, "d": {"h": 1}}),
    ]
    expected = merge_plain(merge_plain({}, layers[0].patch), layers[1].patch)

    assert resolve(layers).config == expected


def test_diff_lists_changes_key_by_key():
    changes = diff({"a": 1, "b": {"c": 2}, "d": [1]}, {"a": 1, "b": {"c": 3}, "e": True})

    assert changes == [
        {"path": "/b/c", "op": "replace", "before": 2, "after": 3},
        {"path": "/d", "op": "remove", "before": [1], "after": None},
        {"path": "/e", "op": "add", "before": None, "after": True},
    ]


def test_diff_treats_true_and_one_as_different():
    assert diff({"a": 1}, {"a": True}) == [
        {"path": "/a", "op": "replace", "before": 1, "after": True}
    ]
