"""Tenant URL conf of the benchmark server: the real one plus a bare baseline endpoint.

The baseline does the database work of a refresh and one Ed25519 signature,
and nothing else: no DRF, no device proof, no rate limit, no serializer. It
exists only in this benchmark's URL conf, never in production.
"""

import json
import secrets
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from audit.services import decision_record
from licensing.jws import jws_sign
from licensing.models import Device, IssuedToken, Manifest, Seat
from portal.urls_tenant import urlpatterns as tenant_urlpatterns

_KEY = Ed25519PrivateKey.generate()


@csrf_exempt
def baseline(request: HttpRequest) -> HttpResponse:
    thumbprint = json.loads(request.body)["thumbprint"]
    with transaction.atomic():
        device = Device.objects.get(thumbprint=thumbprint)
        seat = (
            Seat.objects.filter(device=device, status="active")
            .select_related("grant__policy")
            .get()
        )
        manifest = Manifest.objects.filter(product_code="bench").order_by("-version").first()
        now = int(time.time())
        jti = secrets.token_urlsafe(16)
        claims = {"sub": str(seat.grant_id), "did": str(device.pk), "iat": now, "jti": jti}
        token = jws_sign(claims, typ="kp-license+jwt", kid="baseline", private_key=_KEY)
        IssuedToken.objects.create(
            jti=jti,
            grant_id=seat.grant_id,
            device=device,
            kid="baseline",
            issued_at=timezone.now(),
            expires_at=timezone.now(),
        )
        decision_record(event="license.refresh", outcome="granted", subject=f"device:{thumbprint}")
    return JsonResponse({"token": token, "manifest": manifest.jws if manifest else ""})


urlpatterns = [*tenant_urlpatterns, path("bench/baseline", baseline)]
