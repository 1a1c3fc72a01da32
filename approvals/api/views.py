"""Change-request admin API: scoped bearer tokens in, calls into approvals.services, JSON out."""

from typing import Any, ClassVar

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals import services
from approvals.api.serializers import (
    ChangeRequestCreateSerializer,
    ChangeRequestEditSerializer,
    ChangeRequestSerializer,
    DecisionSerializer,
    ProblemSerializer,
    WhatIfEventSerializer,
)
from approvals.models import ChangeRequest
from approvals.renewals import renewals_whatif
from approvals.selectors import queue_for
from portal.access.authentication import BearerTokenAuthentication, HasScope
from portal.problems import RequestInvalid

PROBLEM = OpenApiResponse(ProblemSerializer, description="Problem details (RFC 9457).")
ERRORS = {status: PROBLEM for status in (400, 401, 403, 404, 409)}
MAX_WHATIF_DAYS = 3650


class IdCursorPagination(CursorPagination):
    ordering = "-id"
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"


AUTHENTICATION = [BearerTokenAuthentication]
PERMISSIONS = [HasScope]


def _validated(serializer_class: Any, data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _body(request_id: int) -> dict[str, Any]:
    row = ChangeRequest.objects.select_related("requester").get(pk=request_id)
    return dict(ChangeRequestSerializer(row).data)


class ChangeRequestListView(generics.ListAPIView):  # type: ignore[type-arg]  # untyped generic
    authentication_classes = AUTHENTICATION
    permission_classes = PERMISSIONS
    pagination_class = IdCursorPagination
    required_scopes: ClassVar = {"GET": "approvals:read", "POST": "approvals:write"}
    serializer_class = ChangeRequestSerializer

    def get_queryset(self) -> Any:
        rows = ChangeRequest.objects.select_related("requester").prefetch_related(
            "approvals__approver"
        )
        state = self.request.query_params.get("state")
        if state:
            rows = rows.filter(state=state)
        if self.request.query_params.get("waiting_for_me") == "true":
            rows = rows.filter(pk__in=queue_for(self.request.user).values("pk"))
        return rows

    @extend_schema(
        operation_id="admin_change_requests_list",
        tags=["admin"],
        parameters=[
            OpenApiParameter("state", str, description="Only requests in this state."),
            OpenApiParameter(
                "waiting_for_me", bool, description="Only requests waiting for the token's user."
            ),
        ],
        responses={200: ChangeRequestSerializer(many=True), **ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="admin_change_requests_create",
        tags=["admin"],
        request=ChangeRequestCreateSerializer,
        responses={201: ChangeRequestSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = _validated(ChangeRequestCreateSerializer, request.data)
        created = services.changerequest_create(acting_user=request.user, **data)
        return Response(_body(created.pk), status=201)


class ChangeRequestDetailView(generics.RetrieveAPIView):  # type: ignore[type-arg]  # untyped generic
    authentication_classes = AUTHENTICATION
    permission_classes = PERMISSIONS
    required_scopes: ClassVar = {"GET": "approvals:read", "PATCH": "approvals:write"}
    serializer_class = ChangeRequestSerializer
    queryset = ChangeRequest.objects.select_related("requester")

    @extend_schema(
        operation_id="admin_change_requests_retrieve",
        tags=["admin"],
        responses={200: ChangeRequestSerializer, **ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="admin_change_requests_edit",
        tags=["admin"],
        request=ChangeRequestEditSerializer,
        responses={200: ChangeRequestSerializer, **ERRORS},
        description="Edit a pending or approved request; approvals given so far are voided.",
    )
    def patch(self, request: Request, pk: int) -> Response:
        data = _validated(ChangeRequestEditSerializer, request.data)
        services.changerequest_edit(request_id=pk, acting_user=request.user, **data)
        return Response(_body(pk))


class _DecisionView(APIView):
    """Base of the decision endpoints; each subclass names its action and scope."""

    authentication_classes = AUTHENTICATION
    permission_classes = PERMISSIONS
    action = ""

    def decide(self, request: Request, pk: int) -> Response:
        reason = _validated(DecisionSerializer, request.data)["reason"]
        body: dict[str, Any] = {}
        if self.action == "approve":
            services.changerequest_approve(request_id=pk, acting_user=request.user, reason=reason)
        elif self.action == "reject":
            services.changerequest_reject(request_id=pk, acting_user=request.user, reason=reason)
        elif self.action == "withdraw":
            services.changerequest_withdraw(request_id=pk, acting_user=request.user, reason=reason)
        else:
            applied = services.changerequest_apply(request_id=pk, acting_user=request.user)
            license_key = getattr(applied, "issued_license_key", None)
            if license_key:
                body["license_key"] = license_key
        body.update(_body(pk))
        return Response(body)


class ChangeRequestApproveView(_DecisionView):
    action = "approve"
    required_scopes: ClassVar = {"POST": "approvals:decide"}

    @extend_schema(
        operation_id="admin_change_requests_approve",
        tags=["admin"],
        request=DecisionSerializer,
        responses={200: ChangeRequestSerializer, **ERRORS},
        description="Approve; the requester can never approve their own request.",
    )
    def post(self, request: Request, pk: int) -> Response:
        return self.decide(request, pk)


class ChangeRequestRejectView(_DecisionView):
    action = "reject"
    required_scopes: ClassVar = {"POST": "approvals:decide"}

    @extend_schema(
        operation_id="admin_change_requests_reject",
        tags=["admin"],
        request=DecisionSerializer,
        responses={200: ChangeRequestSerializer, **ERRORS},
        description="Reject with a required reason; one rejection ends the request.",
    )
    def post(self, request: Request, pk: int) -> Response:
        return self.decide(request, pk)


class ChangeRequestWithdrawView(_DecisionView):
    action = "withdraw"
    required_scopes: ClassVar = {"POST": "approvals:write"}

    @extend_schema(
        operation_id="admin_change_requests_withdraw",
        tags=["admin"],
        request=DecisionSerializer,
        responses={200: ChangeRequestSerializer, **ERRORS},
        description="Withdraw your own pending or approved request with a reason.",
    )
    def post(self, request: Request, pk: int) -> Response:
        return self.decide(request, pk)


class ChangeRequestApplyView(_DecisionView):
    action = "apply"
    required_scopes: ClassVar = {"POST": "approvals:decide"}

    @extend_schema(
        operation_id="admin_change_requests_apply",
        tags=["admin"],
        request=None,
        responses={200: ChangeRequestSerializer, **ERRORS},
        description="Apply an approved request now; a new grant's license key is returned once.",
    )
    def post(self, request: Request, pk: int) -> Response:
        return self.decide(request, pk)


class RenewalWhatIfView(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = PERMISSIONS
    required_scopes: ClassVar = {"GET": "approvals:read"}

    @extend_schema(
        operation_id="admin_renewals_whatif",
        tags=["admin"],
        parameters=[OpenApiParameter("days", int, description="Days to replay (default 120).")],
        responses={200: WhatIfEventSerializer(many=True), **ERRORS},
        description="Replay the renewal calendar forward under the current approvals; reads only.",
    )
    def get(self, request: Request) -> Response:
        raw = request.query_params.get("days", "120")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_WHATIF_DAYS:
            raise RequestInvalid(
                f"days must be a whole number from 1 to {MAX_WHATIF_DAYS}, not {raw!r}."
            )
        events = renewals_whatif(days=int(raw))
        return Response(WhatIfEventSerializer(events, many=True).data)
