"""The OpenFeature provider: licensed features as flags, overlay values by path."""

import threading
import uuid

import pytest

pytest.importorskip("openfeature")

from keyplane_client.openfeature_provider import KeyplaneProvider
from openfeature import api
from openfeature.event import ProviderEvent
from openfeature.exception import ErrorCode

from tests.client.conftest import new_client

OVERLAY = {"ui": {"theme": "dark", "font_size": 12, "scale": 1.5}, "beta": True}


@pytest.fixture
def flags(server, keys, clock, tmp_path):
    server.overlay_config = OVERLAY
    client = new_client(server, keys, clock, tmp_path / "state")
    client.activate("KP-GOOD-KEY")
    domain = f"test-{uuid.uuid4().hex}"
    provider = KeyplaneProvider(client)
    api.set_provider(provider, domain=domain)
    yield api.get_client(domain=domain), client
    api.clear_providers()


def test_provider_entitled_feature_true(flags):
    assert flags[0].get_boolean_value("export", False) is True


def test_provider_unentitled_feature_false(flags):
    assert flags[0].get_boolean_value("view", True) is False


def test_provider_overlay_string(flags):
    assert flags[0].get_string_value("ui.theme", "light") == "dark"


def test_provider_overlay_integer(flags):
    assert flags[0].get_integer_value("ui.font_size", 10) == 12


def test_provider_overlay_float_from_integer(flags):
    assert flags[0].get_float_value("ui.font_size", 1.0) == 12.0


def test_provider_overlay_boolean(flags):
    assert flags[0].get_boolean_value("beta", False) is True


def test_provider_overlay_object(flags):
    assert flags[0].get_object_value("ui", {})["scale"] == 1.5


def test_provider_unknown_flag_default(flags):
    details = flags[0].get_string_details("ui.missing", "fallback")
    assert details.value == "fallback"
    assert details.error_code == ErrorCode.FLAG_NOT_FOUND


def test_provider_type_mismatch_default(flags):
    details = flags[0].get_integer_details("ui.theme", 7)
    assert details.value == 7
    assert details.error_code == ErrorCode.TYPE_MISMATCH


def test_provider_expired_license_turns_feature_off(flags, clock):
    client = flags[1]
    clock.now = client.license.offline_until + 1
    assert flags[0].get_boolean_value("export", True) is False
    assert flags[0].get_boolean_value("view", False) is True


def test_provider_emits_configuration_changed(flags, clock):
    client = flags[1]
    seen = []
    done = threading.Event()

    def handler(details):
        seen.append(details)
        done.set()

    api.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, handler)
    try:
        clock.now = client.license.offline_until + 1
        client.decision()
        assert done.wait(5)
    finally:
        api.remove_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, handler)
    assert "export" in seen[0].flags_changed
