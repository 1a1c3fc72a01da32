"""keyplane_client: verify Keyplane licenses offline and decide what the user may do.

Start with `Client` for an application, or `decide()` with the `verify_*`
functions for full control. Nothing here imports Django or the server.
"""

__version__ = "0.1.0"

from keyplane_client.decision import Decision, DecisionRules, DecisionState, decide
from keyplane_client.errors import (
    KeyplaneClientError,
    ServerError,
    TransportError,
    VerificationError,
)
from keyplane_client.state import LocalState
from keyplane_client.tokens import (
    License,
    Manifest,
    Overlay,
    verify_license,
    verify_manifest,
    verify_overlay,
)
from keyplane_client.trust import Keyring, RootKeys

__all__ = [
    "Client",
    "Decision",
    "DecisionRules",
    "DecisionState",
    "KeyplaneClientError",
    "Keyring",
    "License",
    "LocalState",
    "Manifest",
    "Overlay",
    "RootKeys",
    "ServerError",
    "TransportError",
    "VerificationError",
    "__version__",
    "decide",
    "verify_license",
    "verify_manifest",
    "verify_overlay",
]


def __getattr__(name: str) -> object:
    # Client pulls in the transport (http.client, ssl); load it only when used
    # so that an offline check starts fast.
    if name == "Client":
        from keyplane_client.client import Client

        return Client
    raise AttributeError(f"module 'keyplane_client' has no attribute {name!r}")
