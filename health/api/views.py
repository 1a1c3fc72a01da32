"""Health API views: `POST checkin` for devices, findings for tenant administrators."""

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from health.api.serializers import CheckInSerializer
from health.checkins import CheckInReport, checkin_record
from health.models import Finding
from health.services import finding_acknowledge
from licensing.api.client_views import DPOP_HEADER, ERRORS, ClientAPIView
from licensing.dpop import proof_verify
from licensing.exceptions import DeviceUnknown
from licensing.models import Device
from licensing.ratelimit import rate_limit_hit
from portal.access.authentication import BearerTokenAuthentication
from portal.access.models import ApiToken
from portal.problems import RequestInvalid


class CheckInView(ClientAPIView):
    @extend_schema(
        operation_id="client_checkin",
        summary="Report the device's license and overlay state",
        parameters=[DPOP_HEADER],
        request=CheckInSerializer,
        responses={202: OpenApiResponse(description="Stored."), **ERRORS},
        tags=["client"],
    )
    def post(self, request: Request) -> Response:
        proof = proof_verify(request)
        rate_limit_hit(scope="device", identity=proof.thumbprint)
        serializer = CheckInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        device = Device.objects.filter(thumbprint=proof.thumbprint).first()
        if device is None:
            raise DeviceUnknown("No device of this organisation has the proof's key.")
        checkin_record(device=device, report=CheckInReport.from_body(serializer.validated_data))
        return Response(status=202)


class FindingSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]  # output only
    class Meta:
        model = Finding
        fields = (
            "id",
            "code",
            "severity",
            "subject",
            "affected",
            "summary",
            "remediation",
            "state",
            "first_seen",
            "acknowledged_at",
            "resolved_at",
        )
        read_only_fields = fields


class FindingPermission(BasePermission):
    """Reads need `health.view_finding`, acknowledging `health.change_finding`.

    An API token also needs the scope `devices:read` or `devices:write`:
    findings are about the tenant's devices and grants, and the token
    scopes have no health scope of their own.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            return False
        reading = request.method in ("GET", "HEAD")
        if isinstance(request.auth, ApiToken):
            scope = "devices:read" if reading else "devices:write"
            if scope not in request.auth.scopes:
                self.message = f"The API token lacks the scope {scope!r}."
                return False
        needed = "health.view_finding" if reading else "health.change_finding"
        return bool(user.has_perm(needed))


class FindingPagination(CursorPagination):
    ordering = ("-first_seen", "-id")


class FindingAdminView(APIView):
    authentication_classes = (BearerTokenAuthentication, SessionAuthentication)
    permission_classes = (FindingPermission,)


class FindingListView(FindingAdminView):
    @extend_schema(
        operation_id="health_findings",
        summary="Findings, unresolved by default; filter with ?state= and ?severity=",
        responses={200: FindingSerializer(many=True), **ERRORS},
        tags=["health"],
    )
    def get(self, request: Request) -> Response:
        findings = Finding.objects.all().order_by("-first_seen", "-id")
        state = request.query_params.get("state")
        severity = request.query_params.get("severity")
        if state and state not in Finding.State.values:
            raise RequestInvalid(f"state {state!r} is not one of {Finding.State.values}.")
        if severity and severity not in Finding.Severity.values:
            raise RequestInvalid(f"severity {severity!r} is not one of {Finding.Severity.values}.")
        findings = findings.filter(state=state) if state else findings.exclude(state="resolved")
        if severity:
            findings = findings.filter(severity=severity)
        paginator = FindingPagination()
        page = paginator.paginate_queryset(findings, request, view=self)
        return paginator.get_paginated_response(FindingSerializer(page, many=True).data)


class FindingAcknowledgeView(FindingAdminView):
    @extend_schema(
        operation_id="health_finding_acknowledge",
        summary="Acknowledge a finding: it stays listed but is no longer re-alerted",
        request=None,
        responses={200: FindingSerializer, **ERRORS},
        tags=["health"],
    )
    def post(self, request: Request, finding_id: int) -> Response:
        finding = finding_acknowledge(finding_id=finding_id, acting_user=request.user)
        return Response(FindingSerializer(finding).data)
