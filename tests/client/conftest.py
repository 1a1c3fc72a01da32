"""Client test fixtures: a fake clock, vector keys, a protocol server, an activated client."""

import time

import pytest
from keyplane_client.client import Client
from keyplane_client.trust import RootKeys

from tests.client.vector_server import VectorServer
from tests.vectors.tokens import PRODUCT, TENANT, make_keys


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return FakeClock(float(int(time.time())))


@pytest.fixture
def keys(clock):
    return make_keys(now=int(clock.now))


@pytest.fixture
def server(keys, clock):
    server = VectorServer(keys, clock=clock).start()
    yield server
    server.stop()


def new_client(server, keys, clock, state_dir, **options):
    return Client(
        server=options.pop("url", server.url),
        tenant=TENANT,
        product=PRODUCT,
        state_dir=state_dir,
        root_keys=RootKeys.from_jwks(keys.root_jwks),
        clock=clock,
        **options,
    )


@pytest.fixture
def activated(server, keys, clock, tmp_path):
    client = new_client(server, keys, clock, tmp_path / "state")
    client.activate("KP-GOOD-KEY")
    return client
