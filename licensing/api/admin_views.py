"""Admin API views: scoped bearer tokens in, calls into licensing.services, JSON out.

Lists use cursor pagination ordered by id, so pages stay stable while rows
are added. Each view names the scope it needs per HTTP method.
"""

from typing import Any, ClassVar

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from licensing.api.serializers import (
    DeviceSerializer,
    GrantCreatedSerializer,
    GrantCreateSerializer,
    GrantSerializer,
    ManifestSerializer,
    PolicyCreateSerializer,
    PolicySerializer,
    ProblemSerializer,
    ReasonSerializer,
    RevocationSerializer,
    SeatSerializer,
    TokenRevokeSerializer,
)
from licensing.api.serializers import (
    ProductRequestSerializer as ProductFilterSerializer,
)
from licensing.models import Device, LicenseGrant, Manifest, Policy, Revocation, Seat
from licensing.services import (
    device_revoke,
    grant_create,
    grant_revoke,
    policy_create,
    seat_force_release,
    token_revoke,
)
from portal.access.authentication import BearerTokenAuthentication, HasScope

PROBLEM = OpenApiResponse(ProblemSerializer, description="Problem details (RFC 9457).")
ERRORS = {status: PROBLEM for status in (400, 401, 403, 404, 409)}


class IdCursorPagination(CursorPagination):
    ordering = "id"
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"


class AdminAPIMixin:
    authentication_classes: ClassVar = [BearerTokenAuthentication]
    permission_classes: ClassVar = [HasScope]
    pagination_class = IdCursorPagination
    required_scopes: ClassVar[dict[str, str]] = {}


def _validated(serializer_class: Any, data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class PolicyListView(AdminAPIMixin, generics.ListAPIView):
    required_scopes: ClassVar = {"GET": "policies:read", "POST": "policies:write"}
    serializer_class = PolicySerializer
    queryset = Policy.objects.all()

    @extend_schema(
        operation_id="admin_policies_list",
        tags=["admin"],
        responses={200: PolicySerializer(many=True), **ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="admin_policies_create",
        tags=["admin"],
        request=PolicyCreateSerializer,
        responses={201: PolicySerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = _validated(PolicyCreateSerializer, request.data)
        policy = policy_create(acting_user=request.user, **data)
        return Response(PolicySerializer(policy).data, status=201)


class PolicyDetailView(AdminAPIMixin, generics.RetrieveAPIView):
    required_scopes: ClassVar = {"GET": "policies:read"}
    serializer_class = PolicySerializer
    queryset = Policy.objects.all()

    @extend_schema(
        operation_id="admin_policies_retrieve",
        tags=["admin"],
        responses={200: PolicySerializer, **ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class GrantListView(AdminAPIMixin, generics.ListAPIView):
    required_scopes: ClassVar = {"GET": "grants:read", "POST": "grants:write"}
    serializer_class = GrantSerializer
    queryset = LicenseGrant.objects.select_related("policy")

    @extend_schema(
        operation_id="admin_grants_list",
        tags=["admin"],
        responses={200: GrantSerializer(many=True), **ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="admin_grants_create",
        tags=["admin"],
        request=GrantCreateSerializer,
        responses={201: GrantCreatedSerializer, **ERRORS},
        description=(
            "Create a grant; the response carries the license key, which is never shown again."
        ),
    )
    def post(self, request: Request) -> Response:
        data = _validated(GrantCreateSerializer, request.data)
        grant, license_key = grant_create(
            policy_id=data["policy"],
            seat_count=data["seat_count"],
            term_start=data.get("term_start"),
            term_end=data.get("term_end"),
            acting_user=request.user,
        )
        body = dict(GrantSerializer(grant).data)
        body["license_key"] = license_key
        return Response(body, status=201)


class GrantDetailView(AdminAPIMixin, generics.RetrieveAPIView):
    required_scopes: ClassVar = {"GET": "grants:read"}
    serializer_class = GrantSerializer
    queryset = LicenseGrant.objects.select_related("policy")

    @extend_schema(
        operation_id="admin_grants_retrieve",
        tags=["admin"],
        responses={200: GrantSerializer, **ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class GrantRevokeView(AdminAPIMixin, APIView):
    required_scopes: ClassVar = {"POST": "revocations:write"}

    @extend_schema(
        operation_id="admin_grants_revoke",
        tags=["admin"],
        request=ReasonSerializer,
        responses={201: RevocationSerializer, **ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        data = _validated(ReasonSerializer, request.data)
        revocation = grant_revoke(grant_id=pk, reason=data["reason"], acting_user=request.user)
        return Response(RevocationSerializer(revocation).data, status=201)


class DeviceListView(AdminAPIMixin, generics.ListAPIView):
    required_scopes: ClassVar = {"GET": "devices:read"}
    serializer_class = DeviceSerializer
    queryset = Device.objects.all()

    @extend_schema(
        operation_id="admin_devices_list",
        tags=["admin"],
        responses={200: DeviceSerializer(many=True), **ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class DeviceRevokeView(AdminAPIMixin, APIView):
    required_scopes: ClassVar = {"POST": "revocations:write"}

    @extend_schema(
        operation_id="admin_devices_revoke",
        tags=["admin"],
        request=ReasonSerializer,
        responses={201: RevocationSerializer, **ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        data = _validated(ReasonSerializer, request.data)
        revocation = device_revoke(device_id=pk, reason=data["reason"], acting_user=request.user)
        return Response(RevocationSerializer(revocation).data, status=201)


class SeatListView(AdminAPIMixin, generics.ListAPIView):
    required_scopes: ClassVar = {"GET": "devices:read"}
    serializer_class = SeatSerializer
    queryset = Seat.objects.all()

    @extend_schema(
        operation_id="admin_seats_list",
        tags=["admin"],
        responses={200: SeatSerializer(many=True), **ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class SeatReleaseView(AdminAPIMixin, APIView):
    required_scopes: ClassVar = {"POST": "devices:write"}

    @extend_schema(
        operation_id="admin_seats_release",
        tags=["admin"],
        request=ReasonSerializer,
        responses={200: SeatSerializer, **ERRORS},
        description=(
            "Release a seat whose device is lost; the reason is recorded in the decision log."
        ),
    )
    def post(self, request: Request, pk: int) -> Response:
        data = _validated(ReasonSerializer, request.data)
        seat = seat_force_release(seat_id=pk, reason=data["reason"], acting_user=request.user)
        return Response(SeatSerializer(seat).data)


class TokenRevokeView(AdminAPIMixin, APIView):
    required_scopes: ClassVar = {"POST": "revocations:write"}

    @extend_schema(
        operation_id="admin_tokens_revoke",
        tags=["admin"],
        request=TokenRevokeSerializer,
        responses={201: RevocationSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = _validated(TokenRevokeSerializer, request.data)
        revocation = token_revoke(jti=data["jti"], reason=data["reason"], acting_user=request.user)
        return Response(RevocationSerializer(revocation).data, status=201)


class RevocationListView(AdminAPIMixin, generics.ListAPIView):
    required_scopes: ClassVar = {"GET": "grants:read"}
    serializer_class = RevocationSerializer
    queryset = Revocation.objects.all()

    @extend_schema(
        operation_id="admin_revocations_list",
        tags=["admin"],
        responses={200: RevocationSerializer(many=True), **ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class ManifestListView(AdminAPIMixin, generics.ListAPIView):
    required_scopes: ClassVar = {"GET": "manifests:read"}
    serializer_class = ManifestSerializer

    def get_queryset(self) -> Any:
        queryset = Manifest.objects.all()
        product = self.request.query_params.get("product")
        if product:
            data = _validated(ProductFilterSerializer, {"product": product})
            queryset = queryset.filter(product_code=data["product"])
        return queryset

    @extend_schema(
        operation_id="admin_manifests_list",
        tags=["admin"],
        parameters=[OpenApiParameter("product", str, OpenApiParameter.QUERY, required=False)],
        responses={200: ManifestSerializer(many=True), **ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)
