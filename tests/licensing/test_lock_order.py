"""A refresh never deadlocks with writers of the same grant or device.

A refresh inserts an issued-token row whose foreign key to the grant is
checked at COMMIT (Django's PostgreSQL foreign keys are deferred), which
takes key-share locks on the grant and the device after the refresh already
has the tenant's decision-log head. An activation or a revocation locks the
row and then appends to the decision log. If that lock conflicted with
key-share locks, each transaction would wait for the other. These tests keep
a refresh transaction open across the other write on two real connections.
"""

import threading
import time
from typing import Any

from django.db import close_old_connections, connection, transaction
from django_tenants.utils import schema_context

from licensing.jws import jwk_thumbprint
from licensing.models import Device
from licensing.seats import seat_activate, token_refresh
from licensing.services import device_revoke
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


def _run_during_open_refresh(refreshing: DeviceKey, write: Any) -> dict[str, Any]:
    """Run `write` while a refresh of `refreshing` is open; return both outcomes."""
    refresh_appended = threading.Event()
    outcomes: dict[str, Any] = {}

    def refresh() -> None:
        try:
            with schema_context("alpha"), transaction.atomic():
                token_refresh(thumbprint=jwk_thumbprint(refreshing.jwk), product_code="atlas")
                refresh_appended.set()
                # Keep the refresh open while the other write takes its locks.
                time.sleep(1.5)
            outcomes["refresh"] = "committed"
        except Exception as error:  # the outcome is what the test checks
            outcomes["refresh"] = repr(error)
        finally:
            refresh_appended.set()
            close_old_connections()
            connection.close()

    def other_write() -> None:
        refresh_appended.wait(timeout=30)
        try:
            with schema_context("alpha"):
                outcomes["write"] = write()
        except Exception as error:
            outcomes["write"] = repr(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=refresh), threading.Thread(target=other_write)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def _activated_device() -> tuple[str, DeviceKey]:
    with schema_context("alpha"):
        product_ensure()
        _, license_key = grant_make(seat_count=5)
        refreshing = DeviceKey()
        _activate(license_key, refreshing)
    return license_key, refreshing


def test_refresh_and_activation_on_same_grant_both_commit(committed_db: None) -> None:
    license_key, refreshing = _activated_device()

    outcomes = _run_during_open_refresh(
        refreshing, lambda: _activate(license_key, DeviceKey()).status
    )

    assert outcomes.get("refresh") == "committed"
    assert outcomes.get("write") == 201


def test_refresh_and_revocation_of_same_device_both_commit(committed_db: None) -> None:
    _, refreshing = _activated_device()
    with schema_context("alpha"):
        device_id = Device.objects.get(thumbprint=jwk_thumbprint(refreshing.jwk)).pk

    outcomes = _run_during_open_refresh(
        refreshing,
        lambda: device_revoke(device_id=device_id, reason="lost laptop", acting_user=None).kind,
    )

    assert outcomes.get("refresh") == "committed"
    assert outcomes.get("write") == "device"
