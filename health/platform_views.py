"""Platform pages of license health: the cross-tenant dashboard and `/metrics`."""

import pygal  # type: ignore[import-untyped]  # pygal ships no type hints
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.safestring import SafeString

from health import charts
from health.dashboard import PLATFORM_SORTS, platform_rows
from health.metrics import metrics_view

__all__ = ["metrics_view", "platform_dashboard"]


def _risk_chart(rows: list[dict[str, object]]) -> SafeString:
    chart = pygal.HorizontalBar(**charts.chart_options("Risk score per tenant"))
    for row in rows[:20]:
        chart.add(str(row["slug"]), [row["score"]])
    return charts.svg_render(chart)


def _dashboard(request: HttpRequest) -> HttpResponse:
    if not request.user.is_staff:
        raise PermissionDenied
    sort = request.GET.get("sort", "risk")
    if sort not in PLATFORM_SORTS:
        sort = "risk"
    rows = platform_rows(sort=sort)
    context = {
        **admin.site.each_context(request),
        "title": "License health across tenants",
        "rows": rows,
        "sort": sort,
        "sorts": list(PLATFORM_SORTS),
        "risk_chart": _risk_chart(rows),
    }
    return TemplateResponse(request, "health/platform_dashboard.html", context)


platform_dashboard = admin.site.admin_view(_dashboard)
