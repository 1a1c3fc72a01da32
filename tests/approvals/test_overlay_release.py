"""Overlay releases as a gated change: applied through the overlays publish service."""

from typing import Any

import pytest

from approvals import services
from approvals.exceptions import BaseChanged
from approvals.models import ChangeRequest
from overlays.models import ReleaseHead
from overlays.services import release_publish
from tests.approvals.conftest import settings_set
from tests.overlays.conftest import product  # noqa: F401  # the overlay product fixture


def _release_request(product_code: str, requester: Any) -> ChangeRequest:
    settings_set(gated_kinds=["overlay_release"])
    return services.changerequest_create(
        kind=ChangeRequest.Kind.OVERLAY_RELEASE,
        payload={"product_code": product_code, "tenant_patch": {"ui": {"theme": "dark"}}},
        reason="Dark theme for the night shift",
        acting_user=requester,
    )


def test_overlay_release_applies(product: Any, requester: Any, approver: Any) -> None:  # noqa: F811
    request = _release_request(product.code, requester)
    services.changerequest_approve(request_id=request.pk, acting_user=approver)

    applied = services.changerequest_apply(request_id=request.pk, acting_user=approver)

    head = ReleaseHead.objects.select_related("current").get(product_code=product.code)
    assert applied.result == {"release": 1, "created": True}
    assert head.current is not None
    assert head.current.number == 1


def test_overlay_release_stale_head_refused(
    product: Any,  # noqa: F811
    requester: Any,
    approver: Any,
) -> None:
    request = _release_request(product.code, requester)
    services.changerequest_approve(request_id=request.pk, acting_user=approver)
    release_publish(product_code=product.code, base_release=None, acting_user=None, tenant_patch={})

    with pytest.raises(BaseChanged):
        services.changerequest_apply(request_id=request.pk, acting_user=approver)

    request.refresh_from_db()
    assert request.state == ChangeRequest.State.FAILED
