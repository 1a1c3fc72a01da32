"""Dashboard charts as inline SVG, rendered server-side by pygal.

pygal escapes every label and value it writes into the SVG, so strings that
devices report (client versions) cannot inject markup. `js=[]` keeps pygal
from linking its tooltip script from a CDN, so pages load without network.
"""

import datetime as dt
from collections.abc import Mapping, Sequence

import pygal  # type: ignore[import-untyped]  # pygal ships no type hints
from django.utils.safestring import SafeString, mark_safe
from pygal.style import Style  # type: ignore[import-untyped]

STYLE = Style(
    background="transparent",
    plot_background="transparent",
    colors=("#417690", "#c0392b", "#e67e22", "#7f8c8d", "#27ae60", "#8e44ad"),
    font_family="sans-serif",
)
SEVERITY_COLOURS = {"critical": "#c0392b", "warning": "#e67e22", "info": "#417690"}


def chart_options(title: str, **extra: object) -> dict[str, object]:
    return {
        "title": title,
        "style": STYLE,
        "js": [],
        "disable_xml_declaration": True,
        "width": 640,
        "height": 300,
        "explicit_size": True,
        **extra,
    }


def svg_render(chart: pygal.graph.graph.Graph) -> SafeString:
    # Safe: pygal builds the SVG with an XML library that escapes all text.
    return mark_safe(chart.render(is_unicode=True))  # noqa: S308


def seat_utilisation(series: Mapping[str, Sequence[tuple[dt.date, int, int]]]) -> SafeString:
    """Line chart of active seats per grant over time, one line per grant."""
    days = sorted({day for points in series.values() for day, _, _ in points})
    chart = pygal.Line(
        **chart_options("Active seats per grant", x_label_rotation=30, show_dots=True)
    )
    chart.x_labels = [day.isoformat() for day in days]
    for label, points in series.items():
        by_day = {day: active for day, active, _ in points}
        chart.add(label, [by_day.get(day) for day in days])
    return svg_render(chart)


def findings_by_severity(counts: dict[str, int]) -> SafeString:
    """Bar chart of unresolved findings per severity."""
    style = Style(**{**STYLE.to_dict(), "colors": tuple(SEVERITY_COLOURS.values())})
    chart = pygal.Bar(**{**chart_options("Unresolved findings"), "style": style})
    for severity in SEVERITY_COLOURS:
        chart.add(severity, [counts.get(severity, 0)])
    return svg_render(chart)


def version_spread(versions: Sequence[tuple[str, int]]) -> SafeString:
    """Pie chart of client versions among the devices' latest check-ins."""
    chart = pygal.Pie(**chart_options("Client versions", inner_radius=0.4))
    for version, count in versions:
        chart.add(version, count)
    return svg_render(chart)


def rollout_progress(rows: Sequence[dict[str, object]]) -> SafeString:
    """Horizontal bars of the share of devices on each product's current overlay release."""
    chart = pygal.HorizontalBar(
        **chart_options("Devices on the current overlay release (%)", range=(0, 100))
    )
    for row in rows:
        chart.add(f"{row['product']} release {row['release']}", [row["percent"]])
    return svg_render(chart)
