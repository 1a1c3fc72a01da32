import pytest

from licensing.jws import jws_verify
from licensing.models import DeviceGroup
from licensing.signing import tenant_public_keys
from overlays.canonical import content_address
from overlays.exceptions import (
    OverlayGroupUnknown,
    OverlayInvalid,
    ReleaseConflict,
    ReleaseNotFound,
    RolloutInvalid,
)
from overlays.models import GroupOverlay, OverlayFinding, OverlaySettings, Release, TenantOverlay
from overlays.selectors import effective_for, head_current, release_for_device
from overlays.services import (
    OVERLAY_TYP,
    overlay_draft_save,
    overlay_pointer,
    overlay_serve,
    release_publish,
    release_report_apply,
    release_rollback,
    rollout_promote,
)
from tests.overlays.conftest import grant_entitlements, make_device
from tests.overlays.test_validation import PRIVATE_KEY


def _publish(product, base, tenant=None, groups=None, **kwargs):
    return release_publish(
        product_code=product.code,
        base_release=base,
        acting_user=None,
        tenant_patch=tenant,
        group_entries=groups,
        **kwargs,
    )


def test_publish_first_release_numbered_one(in_alpha, product):
    result = _publish(product, None, {"ui": {"theme": "dark"}})

    assert result.created
    assert result.release.number == 1
    assert head_current(product.code) == result.release
    assert TenantOverlay.objects.get(product_code=product.code).patch == {"ui": {"theme": "dark"}}


def test_publish_identical_content_is_noop(in_alpha, product):
    first = _publish(product, None, {"ui": {"theme": "dark"}}).release

    again = _publish(product, None, {"ui": {"theme": "dark"}})

    assert not again.created
    assert again.release.pk == first.pk
    assert Release.objects.filter(product_code=product.code).count() == 1


def test_publish_sha256_is_content_address(in_alpha, product):
    release = _publish(product, None, {"ui": {"theme": "dark"}}).release

    assert release.sha256 == content_address(release.content)


def test_publish_stale_base_conflicts(in_alpha, product):
    _publish(product, None, {"ui": {"theme": "dark"}})

    with pytest.raises(ReleaseConflict) as caught:
        _publish(product, None, {"ui": {"theme": "light"}})

    assert caught.value.code == "release_conflict"
    assert head_current(product.code).number == 1


def test_publish_misspelled_key_rejected_current_untouched(in_alpha, product):
    _publish(product, None, {"ui": {"theme": "dark"}})

    with pytest.raises(OverlayInvalid) as caught:
        _publish(product, 1, {"ui": {"editor": {"font_sise": 3}}})

    assert caught.value.code == "overlay_invalid"
    assert caught.value.issues[0]["path"] == "/ui/editor/font_sise"
    assert caught.value.issues[0]["layer"] == "tenant"
    assert head_current(product.code).number == 1
    assert TenantOverlay.objects.get(product_code=product.code).patch == {"ui": {"theme": "dark"}}


def test_publish_sso_flag_without_entitlement_rejected(in_alpha, product):
    with pytest.raises(OverlayInvalid) as caught:
        _publish(product, None, {"auth": {"sso_enabled": True}})

    assert [(i["path"], i["rule"]) for i in caught.value.issues] == [
        ("/auth/sso_enabled", "x-requires-entitlement")
    ]
    assert head_current(product.code) is None


def test_publish_sso_flag_with_entitlement_accepted(in_alpha, product):
    grant_entitlements(product.code, ["sso"])

    assert _publish(product, None, {"auth": {"sso_enabled": True}}).created


def test_publish_group_error_names_group_layer(in_alpha, product):
    group = DeviceGroup.objects.create(name="kiosk")

    with pytest.raises(OverlayInvalid) as caught:
        _publish(product, None, {}, [{"group": group.name, "overlay": {"ui": {"theme": None}}}])

    issue = caught.value.issues[0]
    assert (issue["path"], issue["layer"], issue["rule"]) == (
        "/ui/theme",
        "group:kiosk",
        "required",
    )
    assert issue["target"] == "group:kiosk"


def test_publish_unknown_group_rejected(in_alpha, product):
    with pytest.raises(OverlayGroupUnknown) as caught:
        _publish(product, None, {}, [{"group": "nobody", "overlay": {}}])

    assert caught.value.code == "overlay_group_unknown"
    assert head_current(product.code) is None


def test_draft_save_rejects_private_key(in_alpha, product):
    with pytest.raises(OverlayInvalid) as caught:
        overlay_draft_save(
            product_code=product.code, acting_user=None, tenant_patch={"support_url": PRIVATE_KEY}
        )

    assert caught.value.issues[0]["rule"] == "plaintext-secret"
    assert not TenantOverlay.objects.filter(product_code=product.code).exists()


def test_publish_rejects_non_object_overlay(in_alpha, product):
    with pytest.raises(OverlayInvalid):
        _publish(product, None, ["not", "an", "object"])


def test_rollback_publishes_new_number_with_old_content(in_alpha, product):
    first = _publish(product, None, {"ui": {"theme": "dark"}}).release
    _publish(product, 1, {"ui": {"theme": "light", "locale": "de"}})

    rolled = release_rollback(product_code=product.code, to_number=1, acting_user=None)

    assert rolled.number == 3
    assert rolled.sha256 == first.sha256
    assert rolled.restores_number == 1
    assert head_current(product.code) == rolled
    assert TenantOverlay.objects.get(product_code=product.code).patch == {"ui": {"theme": "dark"}}


def test_rollback_accepted_by_client_that_saw_higher_release(in_alpha, product):
    # The client applied release 2, so it rejects any number up to 2.
    _publish(product, None, {"ui": {"theme": "dark"}})
    seen = _publish(product, 1, {"ui": {"theme": "light"}}).release.number
    device = make_device()

    rolled = release_rollback(product_code=product.code, to_number=1, acting_user=None)
    variant = overlay_serve(device=device, product_code=product.code)
    header, claims = jws_verify(variant.jws, typ=OVERLAY_TYP, public_key=_key_of(variant.jws))

    assert claims["rel"] > seen
    assert claims["rel"] == rolled.number
    assert claims["cfg"]["ui"]["theme"] == "dark"
    assert header["typ"] == OVERLAY_TYP


def test_rollback_unknown_release_not_found(in_alpha, product):
    with pytest.raises(ReleaseNotFound):
        release_rollback(product_code=product.code, to_number=9, acting_user=None)


def _key_of(token):
    from licensing.jws import jws_parse_header

    return tenant_public_keys()[jws_parse_header(token)["kid"]]


def test_serve_signs_effective_config_of_device_group(in_alpha, product):
    group = DeviceGroup.objects.create(name="eng")
    _publish(
        product,
        None,
        {"ui": {"theme": "dark"}},
        [{"group": "eng", "overlay": {"ui": {"locale": "de"}}}],
    )
    device = make_device(group)

    variant = overlay_serve(device=device, product_code=product.code)
    _, claims = jws_verify(variant.jws, typ=OVERLAY_TYP, public_key=_key_of(variant.jws))

    assert claims["cfg"]["ui"] == {
        "theme": "dark",
        "locale": "de",
        "editor": {"font_size": 12, "plugins": ["spell", "git"]},
    }
    assert claims["tid"] == "alpha"
    assert claims["aud"] == product.code
    assert variant.provenance["/ui/locale"] == "group:eng"


def test_serve_reuses_variant_per_combination(in_alpha, product):
    group = DeviceGroup.objects.create(name="eng")
    _publish(product, None, {}, [{"group": "eng", "overlay": {"ui": {"locale": "de"}}}])

    first = overlay_serve(device=make_device(group), product_code=product.code)
    second = overlay_serve(device=make_device(group), product_code=product.code)

    assert first.pk == second.pk


def test_rollout_serves_base_outside_percentage(in_alpha, product):
    _publish(product, None, {"ui": {"theme": "dark"}})
    devices = [make_device(name=f"pc{n}") for n in range(60)]
    _publish(product, 1, {"ui": {"theme": "light"}}, steps=[{"percent": 10}, {"percent": 100}])

    numbers = [release_for_device(d, product.code).number for d in devices]

    assert set(numbers) == {1, 2}
    assert 0 < numbers.count(2) < 20


def test_rollout_promote_reaches_everyone(in_alpha, product):
    _publish(product, None, {"ui": {"theme": "dark"}})
    devices = [make_device(name=f"pc{n}") for n in range(30)]
    _publish(product, 1, {"ui": {"theme": "light"}}, steps=[{"percent": 10}, {"percent": 100}])

    rollout = rollout_promote(product_code=product.code, acting_user=None)

    assert rollout.status == "complete"
    assert {release_for_device(d, product.code).number for d in devices} == {2}


def test_rollout_promote_outside_window_rejected(in_alpha, product):
    from datetime import UTC, datetime, time

    from overlays.models import MaintenanceWindow

    MaintenanceWindow.objects.create(weekdays=[5], start_time=time(2), end_time=time(4))
    _publish(product, None, {"ui": {"theme": "dark"}})
    _publish(product, 1, {"ui": {"theme": "light"}}, steps=[{"percent": 10}, {"percent": 100}])
    friday_noon = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)

    with pytest.raises(RolloutInvalid):
        rollout_promote(product_code=product.code, acting_user=None, now=friday_noon)
    forced = rollout_promote(
        product_code=product.code, acting_user=None, now=friday_noon, ignore_window=True
    )

    assert forced.status == "complete"


def test_rollout_device_never_goes_back_a_number(in_alpha, product):
    _publish(product, None, {"ui": {"theme": "dark"}})
    devices = [make_device(name=f"pc{n}") for n in range(40)]
    _publish(product, 1, {"ui": {"theme": "light"}}, steps=[{"percent": 50}, {"percent": 100}])
    served = {
        d.pk: overlay_serve(device=d, product_code=product.code).release.number for d in devices
    }
    # Superseding the half-done rollout of 2 gives release 3 the base 1.
    _publish(
        product,
        2,
        {"ui": {"theme": "light", "locale": "fr"}},
        steps=[{"percent": 1}, {"percent": 100}],
    )

    for device in devices:
        now_served = overlay_serve(device=device, product_code=product.code).release.number
        assert now_served >= served[device.pk]


def test_apply_report_twice_changes_nothing(in_alpha, product):
    _publish(product, None, {"ui": {"theme": "dark"}})
    device = make_device()

    first = release_report_apply(
        device=device, product_code=product.code, release_number=1, ok=True
    )
    second = release_report_apply(
        device=device, product_code=product.code, release_number=1, ok=False
    )

    assert first.created
    assert not second.created
    assert second.report.ok


def test_apply_failures_over_threshold_roll_back(in_alpha, product):
    OverlaySettings.objects.create(failure_threshold_percent=50, failure_min_reports=4)
    _publish(product, None, {"ui": {"theme": "dark"}})
    _publish(product, 1, {"ui": {"theme": "light"}})
    outcomes = [True, False, False, False]

    results = [
        release_report_apply(
            device=make_device(name=f"pc{n}"),
            product_code=product.code,
            release_number=2,
            ok=ok,
            code="" if ok else "write_failed",
        )
        for n, ok in enumerate(outcomes)
    ]

    assert [r.rolled_back_to for r in results[:3]] == [None, None, None]
    assert results[3].rolled_back_to.number == 3
    assert results[3].rolled_back_to.kind == "auto_rollback"
    assert (
        head_current(product.code).sha256
        == Release.objects.get(product_code=product.code, number=1).sha256
    )
    finding = OverlayFinding.objects.get(product_code=product.code)
    assert finding.kind == "auto_rollback"
    assert "3 of 4" in finding.summary


def test_apply_failures_below_min_reports_keep_release(in_alpha, product):
    OverlaySettings.objects.create(failure_threshold_percent=10, failure_min_reports=5)
    _publish(product, None, {"ui": {"theme": "dark"}})
    _publish(product, 1, {"ui": {"theme": "light"}})

    for n in range(4):
        release_report_apply(
            device=make_device(name=f"pc{n}"), product_code=product.code, release_number=2, ok=False
        )

    assert head_current(product.code).number == 2
    assert not OverlayFinding.objects.exists()


def test_effective_for_group_shows_provenance(in_alpha, product):
    group = DeviceGroup.objects.create(name="eng")
    overlay_draft_save(
        product_code=product.code,
        acting_user=None,
        tenant_patch={"ui": {"theme": "dark"}},
        group_entries=[{"group": "eng", "overlay": {"ui": {"editor": {"plugins": ["vim"]}}}}],
    )

    view = effective_for(product.code, group=group)

    assert view["provenance"] == {
        "/auth/sso_enabled": "defaults",
        "/telemetry": "defaults",
        "/ui/editor/font_size": "defaults",
        "/ui/editor/plugins": "group:eng",
        "/ui/theme": "tenant",
    }
    assert GroupOverlay.objects.get(group=group).patch == {"ui": {"editor": {"plugins": ["vim"]}}}


def test_overlay_pointer_names_current_release(in_alpha, product):
    assert overlay_pointer(product.code) == {}

    release = _publish(product, None, {"ui": {"theme": "dark"}}).release

    assert overlay_pointer(product.code) == {"overlay": {"release": 1, "sha256": release.sha256}}


def test_region_constraint_from_policy(in_alpha, product):
    from licensing.services import policy_create

    policy_create(
        acting_user=None, name="eu only", product_code=product.code, allowed_regions=["eu"]
    )

    with pytest.raises(OverlayInvalid) as caught:
        _publish(product, None, {"telemetry": "full"})

    assert caught.value.issues[0]["rule"] == "x-region-values"


def test_rollouts_advance_promotes_due_rollout(in_alpha, product):
    from datetime import timedelta

    from overlays.models import Rollout
    from overlays.services import rollouts_advance

    _publish(product, None, {"ui": {"theme": "dark"}})
    release = _publish(
        product,
        1,
        {"ui": {"theme": "light"}},
        steps=[{"percent": 10}, {"percent": 50}, {"percent": 100}],
        promote_every_minutes=30,
    ).release
    started = Rollout.objects.get(release=release).step_started_at

    early = rollouts_advance(now=started + timedelta(minutes=10))
    due = rollouts_advance(now=started + timedelta(minutes=31))
    again = rollouts_advance(now=started + timedelta(minutes=32))

    assert (early, due, again) == (0, 1, 0)
    assert Rollout.objects.get(release=release).step_index == 1


def test_manifest_carries_overlay_pointer(in_alpha, product):
    from licensing.manifests import manifest_publish

    release = _publish(product, None, {"ui": {"theme": "dark"}}).release

    manifest = manifest_publish(product_code=product.code, reason="test")

    assert manifest.content["overlay"] == {"release": release.number, "sha256": release.sha256}


def test_overlay_pointer_names_base_during_rollout(in_alpha, product):
    first = _publish(product, None, {"ui": {"theme": "dark"}}).release
    second = _publish(
        product, 1, {"ui": {"theme": "light"}}, steps=[{"percent": 10}, {"percent": 100}]
    ).release

    during = overlay_pointer(product.code)
    rollout_promote(product_code=product.code, acting_user=None, ignore_window=True)
    after = overlay_pointer(product.code)

    assert during["overlay"]["release"] == second.number
    assert during["overlay"]["base"] == {"release": first.number, "sha256": first.sha256}
    assert "base" not in after["overlay"]


def test_publish_rollout_ring_unknown_group_rejected(in_alpha, product):
    with pytest.raises(OverlayGroupUnknown) as caught:
        _publish(product, None, {}, steps=[{"percent": 0, "groups": ["canary"]}, {"percent": 100}])

    assert caught.value.extra["groups"] == ["canary"]
    assert head_current(product.code) is None
