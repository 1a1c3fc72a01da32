"""Client API views: HTTP in, calls into licensing.seats and manifests, JSON out.

Every endpoint counts the request against the per-address rate limit before
doing any work, rejects oversized bodies, and renders errors as problem
details through the project's DRF exception handler.
"""

import hashlib
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from licensing.api.serializers import (
    ActivateRequestSerializer,
    ActivateResponseSerializer,
    KeysResponseSerializer,
    ManifestResponseSerializer,
    ProblemSerializer,
    ProductRequestSerializer,
    TokenResponseSerializer,
)
from licensing.dpop import proof_verify
from licensing.exceptions import ProductNotLicensed, RequestTooLarge
from licensing.licensekeys import license_key_hash
from licensing.manifests import manifest_current
from licensing.models import Policy
from licensing.ratelimit import rate_limit_hit
from licensing.seats import seat_activate, seat_deactivate, token_refresh
from licensing.signing import root_jwks, tenant_key_certificates
from portal.problems import RequestInvalid

DPOP_HEADER = OpenApiParameter(
    "DPoP",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description="Device proof (dpop+jwt) signed by the device's Ed25519 key.",
)
IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="A retry with the same key, device key and body returns the first response.",
)
PROBLEM = OpenApiResponse(ProblemSerializer, description="Problem details (RFC 9457).")
ERRORS = {status: PROBLEM for status in (400, 401, 403, 404, 409, 413, 422, 429)}
MAX_IDEMPOTENCY_KEY_LENGTH = 200


def client_address(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def _validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class ClientAPIView(APIView):
    """Base of client endpoints: no session or token auth, device proofs per view."""

    authentication_classes: ClassVar = []
    permission_classes: ClassVar = [AllowAny]
    parser_classes: ClassVar = [JSONParser]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        rate_limit_hit(scope="address", identity=client_address(request))
        limit = settings.KEYPLANE_CLIENT_MAX_BODY_BYTES
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError as error:
            raise RequestInvalid("The Content-Length header is not a number.") from error
        if declared > limit:
            raise RequestTooLarge(f"The body has {declared} bytes; the limit is {limit}.")
        try:
            body = request._request.body
        except RequestDataTooBig as error:
            raise RequestTooLarge(f"The body exceeds the limit of {limit} bytes.") from error
        if len(body) > limit:
            raise RequestTooLarge(f"The body has {len(body)} bytes; the limit is {limit}.")
        super().initial(request, *args, **kwargs)


class KeysView(ClientAPIView):
    @extend_schema(
        operation_id="client_keys",
        summary="Tenant key certificates",
        responses={200: KeysResponseSerializer, **ERRORS},
        tags=["client"],
    )
    def get(self, request: Request) -> Response:
        return Response({"keys": tenant_key_certificates()})


class ActivateView(ClientAPIView):
    @extend_schema(
        operation_id="client_activate",
        summary="Activate a device with a license key",
        parameters=[DPOP_HEADER, IDEMPOTENCY_HEADER],
        request=ActivateRequestSerializer,
        responses={200: ActivateResponseSerializer, 201: ActivateResponseSerializer, **ERRORS},
        tags=["client"],
    )
    def post(self, request: Request) -> Response:
        proof = proof_verify(request)
        data = _validated(ActivateRequestSerializer, request.data)
        if data.get("license_key"):
            rate_limit_hit(scope="license", identity=license_key_hash(data["license_key"]))
        idempotency_key = request.headers.get("Idempotency-Key") or None
        if idempotency_key is not None and (
            len(idempotency_key) > MAX_IDEMPOTENCY_KEY_LENGTH or not idempotency_key.isprintable()
        ):
            raise RequestInvalid(
                f"The Idempotency-Key header must be at most {MAX_IDEMPOTENCY_KEY_LENGTH} "
                "printable characters."
            )
        device = data.get("device") or {}
        if data.get("enrollment_token"):
            answer = _activate_with_enrollment_token(proof, data, device)
            return Response(answer.body, status=answer.status)

        answer = seat_activate(
            license_key=data["license_key"],
            product_code=data["product"],
            public_jwk=proof.jwk,
            thumbprint=proof.thumbprint,
            device_name=device.get("name", ""),
            platform=device.get("platform", ""),
            idempotency_key=idempotency_key,
            request_hash=hashlib.sha256(request.body).hexdigest(),
        )
        return Response(answer.body, status=answer.status)


def _activate_with_enrollment_token(
    proof: Any, data: dict[str, Any], device: dict[str, Any]
) -> Any:
    """Activate through the identity app's enrollment tokens.

    Imported here, not at module level, because identity builds on
    licensing's seat rules; licensing only hands the request over. A retried
    activation of the same device returns its seat without counting another
    use, so no idempotency record is needed on this path.
    """
    from identity.activation import enrollment_activate
    from identity.device_users import device_user_from_id_token
    from identity.enrollment import enrollment_token_hash

    rate_limit_hit(scope="license", identity=enrollment_token_hash(data["enrollment_token"]))
    user = None
    if data.get("id_token"):
        user = device_user_from_id_token(id_token=data["id_token"])
    return enrollment_activate(
        token=data["enrollment_token"],
        product_code=data["product"],
        public_jwk=proof.jwk,
        thumbprint=proof.thumbprint,
        device_name=device.get("name", ""),
        platform=device.get("platform", ""),
        user=user,
    )


class RefreshView(ClientAPIView):
    @extend_schema(
        operation_id="client_refresh",
        summary="Get a new license token for this device",
        parameters=[DPOP_HEADER],
        request=ProductRequestSerializer,
        responses={200: TokenResponseSerializer, **ERRORS},
        tags=["client"],
    )
    def post(self, request: Request) -> Response:
        proof = proof_verify(request, rate_scope="device")
        data = _validated(ProductRequestSerializer, request.data)
        answer = token_refresh(thumbprint=proof.thumbprint, product_code=data["product"])
        return Response(answer.body, status=answer.status)


class DeactivateView(ClientAPIView):
    @extend_schema(
        operation_id="client_deactivate",
        summary="Release this device's seat",
        parameters=[DPOP_HEADER],
        request=ProductRequestSerializer,
        responses={204: None, **ERRORS},
        tags=["client"],
    )
    def post(self, request: Request) -> Response:
        proof = proof_verify(request, rate_scope="device")
        data = _validated(ProductRequestSerializer, request.data)
        seat_deactivate(thumbprint=proof.thumbprint, product_code=data["product"])
        return Response(status=204)


def _etag_matches(if_none_match: str, etag: str) -> bool:
    candidates = [part.strip() for part in if_none_match.split(",")]
    bare = etag.strip('"')
    return any(c == "*" or c.removeprefix("W/").strip('"') == bare for c in candidates)


class ManifestView(ClientAPIView):
    @extend_schema(
        operation_id="client_manifest",
        summary="The tenant's signed manifest of a product",
        parameters=[
            OpenApiParameter("product", OpenApiTypes.STR, OpenApiParameter.QUERY, required=True),
            OpenApiParameter(
                "DPoP",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=False,
                description="Optional device proof; verified when present.",
            ),
        ],
        responses={
            200: ManifestResponseSerializer,
            304: OpenApiResponse(description="Not modified (If-None-Match)."),
            **ERRORS,
        },
        tags=["client"],
    )
    def get(self, request: Request) -> Response:
        if request.headers.get("DPoP"):
            proof_verify(request)
        data = _validated(
            ProductRequestSerializer, {"product": request.query_params.get("product")}
        )
        product_code = data["product"]
        if not Policy.objects.filter(product_code=product_code).exists():
            raise ProductNotLicensed(f"This organisation has no license for {product_code!r}.")
        manifest = manifest_current(product_code)
        headers = {"ETag": manifest.etag, "Cache-Control": "no-cache"}
        if _etag_matches(request.headers.get("If-None-Match", ""), manifest.etag):
            return Response(status=304, headers=headers)
        return Response({"manifest": manifest.jws}, headers=headers)


@require_GET
def root_keys(request: HttpRequest) -> HttpResponse:
    """Return the platform root keys as a JWKS, which clients pin at build time."""
    response = JsonResponse(root_jwks())
    response["Cache-Control"] = "public, max-age=300"
    return response
