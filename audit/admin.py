"""Tenant admin of the audit app: the read-only decision log and the history helpers.

`KeyplaneHistoryAdmin` is the base for every history-tracked model's admin
in other apps: django-simple-history's history page with a field-by-field
diff of each change, plus an "as of" page that lists the model's objects as
they were at a chosen date and time.
"""

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.functional import cached_property
from simple_history.admin import SimpleHistoryAdmin

from audit.models import AuditSettings, Checkpoint, DecisionLogEntry, LegalHold
from audit.selectors import history_as_of, parse_as_of
from audit.services import legal_holds_release
from portal.admin_sites import tenant_admin_site

# Below this many rows (by the planner's estimate) the exact count is cheap.
EXACT_COUNT_BELOW = 10_000


class EstimatedCountPaginator(Paginator):  # type: ignore[type-arg]  # pages of any model
    """A paginator that never runs COUNT(*) on a large table.

    For tables the planner estimates at `EXACT_COUNT_BELOW` rows or more, the
    count is the estimate from `pg_class.reltuples`, also for filtered lists,
    so the page links are approximate and a page past the real end is empty.
    """

    @cached_property
    def count(self) -> int:
        queryset: Any = self.object_list
        table = queryset.model._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)", [table]
            )
            row = cursor.fetchone()
        # reltuples is -1 until the table's first VACUUM or ANALYZE.
        estimate = int(row[0]) if row and row[0] is not None else -1
        if estimate < EXACT_COUNT_BELOW:
            return int(queryset.count())
        return estimate


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]  # base for any model
    """An admin that shows rows and never adds, changes or deletes them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DecisionLogEntry, site=tenant_admin_site)
class DecisionLogEntryAdmin(ReadOnlyAdmin):
    list_display = ("seq", "time", "event", "outcome", "reason", "actor", "subject")
    list_filter = ("outcome", "event", ("time", admin.DateFieldListFilter))
    # Exact matches only: these columns are indexed or short, and a LIKE scan
    # over the whole log would be slow.
    search_fields = ("=actor", "=subject", "=reason")
    date_hierarchy = None
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 100
    readonly_fields = (*list_display, "data", "prev_hash", "hash")


@admin.register(Checkpoint, site=tenant_admin_site)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = ("seq", "kind", "created_at", "hash")
    list_filter = ("kind",)
    readonly_fields = ("seq", "kind", "created_at", "hash", "token")


class KeyplaneHistoryAdmin(SimpleHistoryAdmin):
    """SimpleHistoryAdmin plus an "as of" page at `<changelist>/as-of/?when=...`."""

    as_of_template = "audit/as_of.html"
    change_list_template = "audit/change_list_with_as_of.html"

    def get_urls(self) -> list[Any]:
        opts = self.model._meta
        as_of = path(
            "as-of/",
            self.admin_site.admin_view(self.as_of_view),
            name=f"{opts.app_label}_{opts.model_name}_as_of",
        )
        return [as_of, *super().get_urls()]

    def as_of_view(self, request: HttpRequest) -> HttpResponse:
        """List the model's objects as they were at `when` (ISO date or date and time)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        when_text = request.GET.get("when", "")
        when = parse_as_of(when_text) if when_text else None
        if when_text and when is None:
            self.message_user(
                request,
                f"{when_text!r} is not a date or date and time; use e.g. 2026-06-30 or "
                "2026-06-30T17:00.",
                messages.ERROR,
            )
        rows = history_as_of(self.model, when) if when is not None else []
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"{self.model._meta.verbose_name_plural.capitalize()} as of",
            "when": when,
            "when_text": when_text,
            "columns": rows[0]["values"].keys() if rows else [],
            "rows": rows,
        }
        return TemplateResponse(request, self.as_of_template, context)


@admin.register(AuditSettings, site=tenant_admin_site)
class AuditSettingsAdmin(KeyplaneHistoryAdmin):
    list_display = ("retention_days",)
    fields = ("retention_days", "alert_recipients")
    filter_horizontal = ("alert_recipients",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not AuditSettings.objects.exists() and super().has_add_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(LegalHold, site=tenant_admin_site)
class LegalHoldAdmin(KeyplaneHistoryAdmin):
    list_display = ("subject", "active", "created_at", "released_at")
    list_filter = ("active",)
    search_fields = ("=subject",)
    fields = ("subject", "reason", "active", "released_at")
    readonly_fields = ("active", "released_at")
    actions = ("release_holds",)

    @admin.action(description="Release selected holds", permissions=["change"])
    def release_holds(self, request: HttpRequest, queryset: QuerySet[LegalHold]) -> None:
        released = legal_holds_release(
            holds=queryset, acting_user=request.user, reason="released in the admin"
        )
        self.message_user(request, f"{released} holds released.", messages.SUCCESS)
