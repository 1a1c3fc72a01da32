"""A refresh and an activation on the same grant never deadlock.

A refresh inserts an issued-token row whose foreign key to the grant is
checked at COMMIT (Django's PostgreSQL foreign keys are deferred), which
takes a key-share lock on the grant after the refresh already holds the
tenant's decision-log head. An activation locks the grant and then appends to
the decision log. If the activation's grant lock conflicted with key-share
locks, each would wait for the other. This test holds a refresh transaction
open across an activation on two real connections.
"""

import threading
import time
from typing import Any

from django.db import close_old_connections, connection, transaction
from django_tenants.utils import schema_context

from licensing.jws import jwk_thumbprint
from licensing.seats import seat_activate, token_refresh
from tests.licensing.conftest import DeviceKey, grant_make, product_ensure


def _activate(license_key: str, key: DeviceKey) -> Any:
    return seat_activate(
        license_key=license_key,
        product_code="atlas",
        public_jwk=key.jwk,
        thumbprint=jwk_thumbprint(key.jwk),
        device_name="laptop",
        platform="linux",
        idempotency_key=None,
    )


def test_refresh_and_activation_on_same_grant_both_commit(committed_db: None) -> None:
    with schema_context("alpha"):
        product_ensure()
        _, license_key = grant_make(seat_count=5)
        refreshing = DeviceKey()
        _activate(license_key, refreshing)

    refresh_appended = threading.Event()
    outcomes: dict[str, Any] = {}

    def refresh() -> None:
        try:
            with schema_context("alpha"), transaction.atomic():
                token_refresh(thumbprint=jwk_thumbprint(refreshing.jwk), product_code="atlas")
                refresh_appended.set()
                # Keep the refresh open while the activation takes its locks.
                time.sleep(1.5)
            outcomes["refresh"] = "committed"
        except Exception as error:  # the outcome is what the test checks
            outcomes["refresh"] = repr(error)
        finally:
            refresh_appended.set()
            close_old_connections()
            connection.close()

    def activate() -> None:
        refresh_appended.wait(timeout=30)
        try:
            with schema_context("alpha"):
                answer = _activate(license_key, DeviceKey())
            outcomes["activate"] = answer.status
        except Exception as error:
            outcomes["activate"] = repr(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=refresh), threading.Thread(target=activate)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert outcomes.get("refresh") == "committed"
    assert outcomes.get("activate") == 201
