"""Transport helpers: TLS pin parsing and problem-detail errors."""

import base64
import hashlib

import pytest
from keyplane_client.errors import ServerError, TransportError
from keyplane_client.transport import HttpTransport, parse_pin

DIGEST = hashlib.sha256(b"spki").digest()


@pytest.mark.parametrize(
    "pin",
    [
        "sha256/" + base64.b64encode(DIGEST).decode(),
        base64.b64encode(DIGEST).decode(),
        DIGEST.hex(),
        DIGEST.hex().upper(),
    ],
)
def test_parse_pin_accepted_forms(pin):
    assert parse_pin(pin) == DIGEST


@pytest.mark.parametrize("pin", ["sha256/short", "zz" * 32, base64.b64encode(b"x" * 20).decode()])
def test_parse_pin_invalid_rejected(pin):
    with pytest.raises(TransportError) as caught:
        parse_pin(pin)
    assert caught.value.reason == "tls_pin_invalid"


def test_transport_problem_becomes_server_error(server):
    transport = HttpTransport(server.url)
    with pytest.raises(ServerError) as caught:
        transport.request("POST", "/t/alpha/api/v1/client/activate", json_body={})
    assert caught.value.status == 401
    assert caught.value.code == "proof_missing"
    assert caught.value.remediation == "fix it"


def test_transport_closed_port_is_transport_error():
    with pytest.raises(TransportError) as caught:
        HttpTransport("http://127.0.0.1:9", timeout=2).request("GET", "/health/")
    assert caught.value.reason == "network_unavailable"
