"""decide(): states, boundaries, rollback and freeze, revocations, properties."""

from hypothesis import given, settings
from hypothesis import strategies as st
from keyplane_client.decision import DEFAULT_RULES, DecisionState, decide
from keyplane_client.state import (
    LocalState,
    state_after_check,
    state_after_failure,
    state_after_refresh,
)

from tests.client.helpers import license_for, manifest_for
from tests.vectors.tokens import DAY, make_keys

KEYS = make_keys()
NOW = KEYS.now
LICENSE = license_for(KEYS)
MANIFEST = manifest_for(KEYS)
STATE = state_after_refresh(LocalState(), license=LICENSE, manifest=MANIFEST, now=NOW)
ORDER = {DecisionState.VALID: 0, DecisionState.GRACE: 1, DecisionState.EXPIRED: 2}


def test_decide_valid_within_term():
    decision = decide(LICENSE, MANIFEST, None, STATE, NOW + 3600)
    assert decision.state == DecisionState.VALID
    assert decision.reason == "ok"
    assert decision.features == ("export", "render")


def test_decide_valid_after_exp_inside_offline_window():
    decision = decide(LICENSE, MANIFEST, None, STATE, NOW + 2 * DAY)
    assert decision.state == DecisionState.VALID


def test_decide_next_boundary_is_offline_window_end():
    decision = decide(LICENSE, MANIFEST, None, STATE, NOW + 3600)
    assert decision.next_boundary == LICENSE.offline_until


def test_decide_offline_window_exceeded_gives_fallback():
    decision = decide(LICENSE, MANIFEST, None, STATE, LICENSE.offline_until)
    assert decision.state == DecisionState.EXPIRED
    assert decision.reason == "offline_window_exceeded"
    assert decision.features == ("view",)


def test_decide_grace_after_term_end():
    license = license_for(KEYS, term_end=NOW + 3600, offline_until=NOW + 10 * DAY)
    decision = decide(license, MANIFEST, None, STATE, NOW + 7200)
    assert decision.state == DecisionState.GRACE
    assert decision.reason == "in_grace"
    assert decision.features == ("export", "render")


def test_decide_expired_after_grace():
    license = license_for(KEYS, term_end=NOW + 3600, grace_until=NOW + 7200, exp=NOW + 3600)
    decision = decide(license, MANIFEST, None, STATE, NOW + 7200)
    assert decision.state == DecisionState.EXPIRED
    assert decision.reason == "license_expired"
    assert decision.features == ("view",)


def test_decide_clock_rollback_invalid():
    state = state_after_check(STATE, now=NOW + 5 * DAY)
    decision = decide(LICENSE, MANIFEST, None, state, NOW + 1 * DAY)
    assert decision.state == DecisionState.INVALID
    assert decision.reason == "clock_rollback"
    assert decision.features == ()


def test_decide_clock_rollback_within_leeway_tolerated():
    state = state_after_check(STATE, now=NOW + DAY)
    decision = decide(LICENSE, MANIFEST, None, state, NOW + DAY - DEFAULT_RULES.clock_leeway + 1)
    assert decision.state == DecisionState.VALID


def test_decide_clock_before_signed_iat_without_state():
    decision = decide(LICENSE, MANIFEST, None, LocalState(), NOW - DAY)
    assert decision.reason == "clock_rollback"


def test_decide_clock_rollback_never_revives_expired_license():
    late = LICENSE.offline_until + DAY
    state = state_after_check(STATE, now=late)
    decision = decide(LICENSE, MANIFEST, None, state, NOW + 3600)
    assert decision.state == DecisionState.INVALID


def test_decide_never_validated_gets_nothing():
    decision = decide(None, MANIFEST, None, LocalState(), NOW)
    assert decision.reason == "not_activated"
    assert decision.features == ()


def test_decide_validated_before_without_token_gets_fallback():
    decision = decide(None, MANIFEST, None, STATE, NOW)
    assert decision.state == DecisionState.INVALID
    assert decision.features == ("view",)


def test_decide_manifest_missing_invalid():
    decision = decide(LICENSE, None, None, STATE, NOW)
    assert decision.reason == "manifest_missing"


def test_decide_manifest_rollback_invalid():
    older = manifest_for(KEYS, mver=2)
    decision = decide(LICENSE, older, None, STATE._replace(max_manifest_version=3), NOW)
    assert decision.reason == "manifest_rollback"
    assert decision.features == ()


def test_decide_manifest_older_than_token_invalid():
    older = manifest_for(KEYS, mver=2)
    decision = decide(LICENSE, older, None, LocalState(), NOW)
    assert decision.reason == "manifest_rollback"


def test_decide_manifest_freeze_expires():
    stale_at = MANIFEST.expires_at + DEFAULT_RULES.manifest_tolerance
    license = license_for(KEYS, offline_until=stale_at + DAY)
    before = decide(license, MANIFEST, None, STATE, stale_at - 1)
    after = decide(license, MANIFEST, None, STATE, stale_at)
    assert before.state == DecisionState.VALID
    assert after.state == DecisionState.EXPIRED
    assert after.reason == "manifest_expired"


def test_decide_revoked_grant_offline():
    manifest = manifest_for(
        KEYS, revoked={"grants": [LICENSE.grant_id], "devices": [], "tokens": []}
    )
    decision = decide(LICENSE, manifest, None, STATE, NOW)
    assert decision.state == DecisionState.REVOKED
    assert decision.reason == "license_revoked"
    assert decision.features == ("view",)


def test_decide_revoked_device_by_thumbprint():
    manifest = manifest_for(
        KEYS, revoked={"grants": [], "devices": [KEYS.device_thumbprint], "tokens": []}
    )
    assert decide(LICENSE, manifest, None, STATE, NOW).reason == "device_revoked"


def test_decide_revoked_token_id():
    manifest = manifest_for(
        KEYS, revoked={"grants": [], "devices": [], "tokens": [LICENSE.token_id]}
    )
    assert decide(LICENSE, manifest, None, STATE, NOW).reason == "token_revoked"


def test_decide_not_yet_valid():
    license = license_for(KEYS, nbf=NOW + DAY, iat=NOW)
    decision = decide(license, MANIFEST, None, STATE, NOW + 10)
    assert decision.reason == "not_yet_valid"
    assert decision.next_boundary == NOW + DAY - DEFAULT_RULES.not_before_leeway


def test_decide_every_reason_has_remediation():
    decision = decide(LICENSE, MANIFEST, None, STATE, NOW)
    assert decision.remediation


def test_decide_next_boundary_changes_decision():
    license = license_for(KEYS, term_end=NOW + 3600, offline_until=NOW + 10 * DAY)
    now = NOW
    seen = []
    for _ in range(5):
        decision = decide(license, MANIFEST, None, STATE, now)
        seen.append(decision.state)
        if decision.next_boundary is None:
            break
        assert (
            decide(license, MANIFEST, None, STATE, decision.next_boundary - 1).state
            == decision.state
        )
        now = decision.next_boundary
    assert seen == [DecisionState.VALID, DecisionState.GRACE, DecisionState.EXPIRED]


offsets = st.integers(min_value=-2 * DAY, max_value=60 * DAY)


@settings(max_examples=300, deadline=None)
@given(offset=offsets, checked=st.integers(min_value=0, max_value=60 * DAY))
def test_decide_deterministic(offset, checked):
    state = state_after_check(STATE, now=NOW + checked)
    first = decide(LICENSE, MANIFEST, None, state, NOW + offset)
    second = decide(LICENSE, MANIFEST, None, state, NOW + offset)
    assert first == second


events = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.integers(min_value=0, max_value=3 * DAY)),
        st.tuples(st.just("refresh_failed"), st.just(0)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(events=events)
def test_decide_refresh_failures_never_flip_flop(events):
    license = license_for(
        KEYS, term_end=NOW + 5 * DAY, grace_until=NOW + 9 * DAY, offline_until=NOW + 12 * DAY
    )
    state = STATE
    now = NOW
    previous = decide(license, MANIFEST, None, state, now)
    for kind, amount in events:
        if kind == "advance":
            now += amount
        else:
            state = state_after_failure(state, now=now)
        state = state_after_check(state, now=now)
        decision = decide(license, MANIFEST, None, state, now)
        assert ORDER[decision.state] >= ORDER[previous.state]
        without_failures = state._replace(refresh_failures=0, last_refresh_attempt_at=None)
        assert decision == decide(license, MANIFEST, None, without_failures, now)
        previous = decision
