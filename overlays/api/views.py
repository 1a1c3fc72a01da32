"""Overlay API views: HTTP in, calls into overlays.services and selectors, JSON out."""

from typing import Any, ClassVar

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from licensing.api.client_views import DPOP_HEADER, ERRORS, ClientAPIView, _etag_matches
from licensing.dpop import proof_verify
from licensing.exceptions import DeviceRevoked, DeviceUnknown
from licensing.models import Device, DeviceGroup
from licensing.ratelimit import rate_limit_hit
from licensing.selectors import device_active_seat
from overlays.api import serializers as s
from overlays.exceptions import NoOverlayRelease, ReleaseNotFound
from overlays.models import Release
from overlays.selectors import effective_for, layer_set_build, release_preview
from overlays.services import (
    overlay_draft_save,
    overlay_serve,
    release_publish,
    release_report_apply,
    release_rollback,
    rollout_promote,
)
from portal.access.authentication import BearerTokenAuthentication, HasScope
from portal.problems import NotFound


def _validated(serializer_class: Any, data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _groups(data: dict[str, Any]) -> list[dict[str, Any]] | None:
    groups = data.get("groups")
    return [dict(entry) for entry in groups] if groups is not None else None


# --- client API -----------------------------------------------------------------


def _device_for(request: Request, product_code: str) -> Device:
    proof = proof_verify(request)
    rate_limit_hit(scope="device", identity=proof.thumbprint)
    device = Device.objects.filter(thumbprint=proof.thumbprint).select_related("group").first()
    if device is None or device_active_seat(device, product_code) is None:
        raise DeviceUnknown(f"This device key has no active seat for {product_code!r}.")
    if device.status == Device.Status.REVOKED:
        raise DeviceRevoked("This device was revoked.")
    return device


class ClientOverlayView(ClientAPIView):
    @extend_schema(
        operation_id="client_overlay",
        summary="This device's signed overlay release",
        parameters=[
            OpenApiParameter("product", OpenApiTypes.STR, OpenApiParameter.QUERY, required=True),
            DPOP_HEADER,
        ],
        responses={
            200: s.OverlayResponseSerializer,
            304: OpenApiResponse(description="Not modified (If-None-Match)."),
            **ERRORS,
        },
        tags=["client"],
    )
    def get(self, request: Request) -> Response:
        data = _validated(
            s.OverlayQuerySerializer, {"product": request.query_params.get("product")}
        )
        product_code = data["product"]
        device = _device_for(request, product_code)
        variant = overlay_serve(device=device, product_code=product_code)
        if variant is None:
            raise NoOverlayRelease(
                f"No overlay release of {product_code!r} reaches this device yet."
            )
        etag = f'"{variant.release.number}-{variant.config_sha256[:32]}"'
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if _etag_matches(request.headers.get("If-None-Match", ""), etag):
            return Response(status=304, headers=headers)
        return Response(
            {"release": variant.release.number, "overlay": variant.jws}, headers=headers
        )


class ClientApplyReportView(ClientAPIView):
    @extend_schema(
        operation_id="client_overlay_apply",
        summary="Report the result of applying an overlay release",
        parameters=[DPOP_HEADER],
        request=s.ApplyReportSerializer,
        responses={202: None, **ERRORS},
        tags=["client"],
    )
    def post(self, request: Request) -> Response:
        data = _validated(s.ApplyReportSerializer, request.data)
        device = _device_for(request, data["product"])
        release_report_apply(
            device=device,
            product_code=data["product"],
            release_number=data["release"],
            ok=data["ok"],
            code=data["code"],
        )
        return Response(status=202)


# --- admin API ------------------------------------------------------------------


class OverlayPermission(BasePermission):
    """Reads need the user's `overlays.view_release`; writes need `overlays.add_release`.

    Checked on top of the token's scope, so a token never does more than its user may.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            return False
        read = request.method in ("GET", "HEAD")
        return bool(user.has_perm("overlays.view_release" if read else "overlays.add_release"))


class OverlayAdminView(APIView):
    authentication_classes: ClassVar = [BearerTokenAuthentication]  # type: ignore[misc]
    permission_classes: ClassVar = [HasScope, OverlayPermission]  # type: ignore[misc]
    required_scopes: ClassVar[dict[str, str]] = {
        "GET": "overlays:read",
        "PUT": "overlays:write",
        "POST": "overlays:write",
    }


class DraftView(OverlayAdminView):
    @extend_schema(
        operation_id="overlay_draft_read", tags=["overlays"], responses={200: s.DraftSerializer}
    )
    def get(self, request: Request, product: str) -> Response:
        layer_set = layer_set_build(product)
        content = layer_set.content()
        groups = [
            {"group": g["name"], "position": g["position"], "overlay": g["patch"]}
            for g in content["groups"]
        ]
        return Response({"tenant": content["tenant"], "groups": groups})

    @extend_schema(
        operation_id="overlay_draft_save",
        tags=["overlays"],
        request=s.DraftSerializer,
        responses={200: s.DraftSerializer, **ERRORS},
    )
    def put(self, request: Request, product: str) -> Response:
        data = _validated(s.DraftSerializer, request.data)
        overlay_draft_save(
            product_code=product,
            acting_user=request.user,
            tenant_patch=data.get("tenant"),
            group_entries=_groups(data),
        )
        return self.get(request, product)


class PreviewView(OverlayAdminView):
    @extend_schema(
        operation_id="overlay_preview",
        tags=["overlays"],
        request=s.DraftSerializer,
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def post(self, request: Request, product: str) -> Response:
        data = _validated(s.DraftSerializer, request.data)
        proposed = layer_set_build(
            product, tenant_patch=data.get("tenant"), group_entries=_groups(data)
        )
        return Response(release_preview(product, proposed))


class EffectiveView(OverlayAdminView):
    @extend_schema(
        operation_id="overlay_effective",
        tags=["overlays"],
        parameters=[
            OpenApiParameter("group", OpenApiTypes.STR, description="Device group name."),
            OpenApiParameter("device", OpenApiTypes.INT, description="Device id."),
            OpenApiParameter(
                "release", OpenApiTypes.INT, description="Release number; default: drafts."
            ),
        ],
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def get(self, request: Request, product: str) -> Response:
        group = None
        if request.query_params.get("device"):
            device = (
                Device.objects.filter(pk=request.query_params["device"])
                .select_related("group")
                .first()
            )
            if device is None:
                raise NotFound(f"No device has the id {request.query_params['device']!r}.")
            group = device.group
        elif request.query_params.get("group"):
            group = DeviceGroup.objects.filter(name=request.query_params["group"]).first()
            if group is None:
                raise NotFound(f"No device group is named {request.query_params['group']!r}.")
        release = None
        if request.query_params.get("release"):
            release = Release.objects.filter(
                product_code=product, number=request.query_params["release"]
            ).first()
            if release is None:
                raise ReleaseNotFound(
                    f"Product {product!r} has no release {request.query_params['release']}."
                )
        return Response(effective_for(product, group=group, release=release))


class ReleasesView(OverlayAdminView):
    @extend_schema(
        operation_id="overlay_releases",
        tags=["overlays"],
        responses={200: s.ReleaseSerializer(many=True)},
    )
    def get(self, request: Request, product: str) -> Response:
        releases = (
            Release.objects.filter(product_code=product)
            .select_related("base", "rollout")
            .order_by("-number")[:100]
        )
        return Response({"releases": s.ReleaseSerializer(releases, many=True).data})

    @extend_schema(
        operation_id="overlay_publish",
        tags=["overlays"],
        request=s.PublishSerializer,
        responses={200: s.ReleaseSerializer, 201: s.ReleaseSerializer, **ERRORS},
    )
    def post(self, request: Request, product: str) -> Response:
        data = _validated(s.PublishSerializer, request.data)
        steps = [dict(step) for step in data["steps"]] if data.get("steps") else None
        result = release_publish(
            product_code=product,
            base_release=data["base_release"],
            acting_user=request.user,
            tenant_patch=data.get("tenant"),
            group_entries=_groups(data),
            steps=steps,
            promote_every_minutes=data.get("promote_every_minutes"),
            reason=data["reason"],
        )
        return Response(
            s.ReleaseSerializer(result.release).data, status=201 if result.created else 200
        )


class RollbackView(OverlayAdminView):
    @extend_schema(
        operation_id="overlay_rollback",
        tags=["overlays"],
        request=s.RollbackSerializer,
        responses={201: s.ReleaseSerializer, **ERRORS},
    )
    def post(self, request: Request, product: str) -> Response:
        data = _validated(s.RollbackSerializer, request.data)
        release = release_rollback(
            product_code=product,
            to_number=data["to_release"],
            acting_user=request.user,
            reason=data["reason"],
        )
        return Response(s.ReleaseSerializer(release).data, status=201)


class PromoteView(OverlayAdminView):
    @extend_schema(
        operation_id="overlay_rollout_promote",
        tags=["overlays"],
        request=s.PromoteSerializer,
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def post(self, request: Request, product: str) -> Response:
        data = _validated(s.PromoteSerializer, request.data)
        rollout = rollout_promote(
            product_code=product, acting_user=request.user, ignore_window=data["ignore_window"]
        )
        return Response(
            {
                "release": rollout.release.number,
                "step_index": rollout.step_index,
                "status": rollout.status,
                "steps": rollout.steps,
            }
        )
