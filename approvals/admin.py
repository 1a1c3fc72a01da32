"""Tenant admin for change requests: the approver queue, the diff, decisions and the what-if.

Every write goes through `approvals.services`; the admin only collects input
and shows the outcome.
"""

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from approvals import services
from approvals.appliers import change_prepare
from approvals.models import Approval, ApprovalSettings, ChangeRequest, TermTransition
from approvals.renewals import renewals_whatif
from approvals.selectors import APPROVE_PERMISSION, approval_settings, kind_is_gated, queue_for
from portal.admin_sites import tenant_admin_site
from portal.problems import KeyplaneError

DONE = {"approve": "approved", "reject": "rejected", "withdraw": "withdrawn", "apply": "applied"}


class WaitingForMeFilter(admin.SimpleListFilter):
    title = "queue"
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("mine", "Waiting for my decision")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "mine":
            return queryset.filter(pk__in=queue_for(request.user).values("pk"))
        return queryset


class ChangeRequestForm(forms.ModelForm):  # type: ignore[type-arg]  # not subscriptable at run time
    payload = forms.JSONField(
        help_text=(
            'What will change, as JSON. renewal: {"grant": ID}; seat_increase: {"grant": ID, '
            '"seat_count": N}; new_grant: {"policy": ID, "seat_count": N}; entitlement_change: '
            '{"policy": ID, "entitlements": [CODES]}; grant_revocation: {"grant": ID}; '
            'overlay_release: {"product_code": CODE, "tenant_patch": {...}}.'
        )
    )

    class Meta:
        model = ChangeRequest
        fields = ["kind", "payload", "reason", "schedule", "apply_after"]

    def clean(self) -> dict[str, Any]:
        """Check the payload against its kind, so errors show on the form instead of a 403."""
        data = super().clean() or {}
        kind = data.get("kind") or self.instance.kind
        if kind and "payload" in data:
            try:
                prepared = change_prepare(kind, data["payload"])
            except KeyplaneError as error:
                raise forms.ValidationError(f"{error.detail} {error.remediation}") from error
            policy = prepared.grant.policy if prepared.grant is not None else None
            if not kind_is_gated(kind, policy=policy, settings=approval_settings()):
                raise forms.ValidationError(
                    f"Changes of kind {kind!r} need no approval under this tenant's policy; "
                    "make the change directly, or gate the kind in the approval settings."
                )
        return data


class ApprovalInline(admin.TabularInline):  # type: ignore[type-arg]  # not subscriptable at run time
    model = Approval
    extra = 0
    can_delete = False
    fields = ("approver", "decision", "reason", "revision", "created_at", "voided_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ChangeRequest, site=tenant_admin_site)
class ChangeRequestAdmin(SimpleHistoryAdmin):
    form = ChangeRequestForm
    change_form_template = "approvals/changerequest_change_form.html"
    list_display = [
        "id",
        "kind",
        "state_label",
        "requester",
        "created_at",
        "progress",
        "expires_at",
    ]
    list_filter = [WaitingForMeFilter, "state", "kind", "origin"]
    list_select_related = ["requester"]
    search_fields = ["reason"]
    inlines = [ApprovalInline]
    readonly_fields = [
        "state",
        "origin",
        "requester",
        "grant",
        "term_end",
        "quorum_required",
        "revision",
        "created_at",
        "updated_at",
        "expires_at",
        "escalation_level",
        "next_escalation_at",
        "apply_due_at",
        "decided_at",
        "decision_reason",
        "applied_at",
        "result",
        "failure_reason",
    ]

    @admin.display(description="state", ordering="state")
    def state_label(self, obj: ChangeRequest) -> str:
        return obj.get_state_display()

    def get_queryset(self, request: HttpRequest) -> QuerySet[ChangeRequest]:
        counted = Q(
            approvals__decision=Approval.Decision.APPROVE,
            approvals__voided_at__isnull=True,
            approvals__revision=F("revision"),
        )
        return (
            super()
            .get_queryset(request)
            .annotate(approval_count=Count("approvals", filter=counted))
        )

    @admin.display(description="approvals")
    def progress(self, obj: ChangeRequest) -> str:
        return f"{getattr(obj, 'approval_count', 0)} of {obj.quorum_required}"

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # What and why first, then the state and its dates.
        requested = ["kind", "payload", "reason", "schedule", "apply_after"]
        return requested if obj is None else [*requested, *self.readonly_fields]

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        # A new request has no approvals yet.
        return [] if obj is None else list(self.inlines)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return self.readonly_fields
        editable = obj.state in (ChangeRequest.State.PENDING, ChangeRequest.State.APPROVED)
        if editable and obj.requester_id == request.user.pk:
            return [*self.readonly_fields, "kind"]
        return [*self.readonly_fields, "kind", "payload", "reason", "schedule", "apply_after"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Only the requester edits, and only before the request is decided or applied;
        # for everyone else the page is read-only, with the decision form above it.
        if obj is None:
            return super().has_change_permission(request, obj)
        editable = obj.state in (ChangeRequest.State.PENDING, ChangeRequest.State.APPROVED)
        return (
            editable
            and obj.requester_id == request.user.pk
            and super().has_change_permission(request, obj)
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: ChangeRequest, form: Any, change: bool) -> None:
        data = form.cleaned_data
        try:
            if change:
                saved = services.changerequest_edit(
                    request_id=obj.pk,
                    acting_user=request.user,
                    payload=data.get("payload"),
                    reason=data.get("reason"),
                    schedule=data.get("schedule"),
                    apply_after=data.get("apply_after"),
                )
            else:
                saved = services.changerequest_create(
                    kind=data["kind"],
                    payload=data["payload"],
                    reason=data["reason"],
                    acting_user=request.user,
                    schedule=data.get("schedule") or ChangeRequest.Schedule.IMMEDIATE,
                    apply_after=data.get("apply_after"),
                )
        except KeyplaneError as error:
            raise PermissionDenied(f"{error.title}: {error.detail} {error.remediation}") from error
        obj.pk = saved.pk

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("queue/", view(self.queue_view), name="approvals_changerequest_queue"),
            path("whatif/", view(self.whatif_view), name="approvals_changerequest_whatif"),
            path(
                "<int:pk>/decide/",
                view(self.decide_view),
                name="approvals_changerequest_decide",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        obj = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if obj is not None:
            keys = sorted(set(obj.before) | set(obj.after))
            context["diff_rows"] = [
                {
                    "field": key,
                    "before": json.dumps(obj.before.get(key)),
                    "after": json.dumps(obj.after.get(key)),
                    "changed": obj.before.get(key) != obj.after.get(key),
                }
                for key in keys
            ]
            context["can_decide"] = (
                obj.state == ChangeRequest.State.PENDING
                and obj.requester_id != request.user.pk
                and request.user.has_perm(APPROVE_PERMISSION)
            )
            context["is_requester"] = obj.requester_id == request.user.pk
            context["can_apply"] = (
                obj.state == ChangeRequest.State.APPROVED
                and request.user.has_perm(APPROVE_PERMISSION)
            )
            context["decide_url"] = reverse(
                f"{self.admin_site.name}:approvals_changerequest_decide", args=[obj.pk]
            )
        return super().change_view(request, object_id, form_url, extra_context=context)

    def decide_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        target = get_object_or_404(ChangeRequest, pk=pk)
        change_url = reverse(f"{self.admin_site.name}:approvals_changerequest_change", args=[pk])
        if request.method != "POST" or not self.has_view_permission(request, target):
            raise PermissionDenied("Decisions are sent as POST by users who can see the request.")
        action = request.POST.get("action", "")
        reason = request.POST.get("reason", "")
        try:
            if action == "approve":
                services.changerequest_approve(
                    request_id=pk, acting_user=request.user, reason=reason
                )
            elif action == "reject":
                services.changerequest_reject(
                    request_id=pk, acting_user=request.user, reason=reason
                )
            elif action == "withdraw":
                services.changerequest_withdraw(
                    request_id=pk, acting_user=request.user, reason=reason
                )
            elif action == "apply" and request.user.has_perm(APPROVE_PERMISSION):
                applied = services.changerequest_apply(request_id=pk, acting_user=request.user)
                license_key = getattr(applied, "issued_license_key", None)
                if license_key:
                    messages.warning(
                        request,
                        format_html(
                            "License key of the new grant, shown once: <code>{}</code>", license_key
                        ),
                    )
            else:
                raise PermissionDenied(f"Unknown or forbidden action {action!r}.")
        except KeyplaneError as error:
            messages.error(request, f"{error.title}: {error.detail} {error.remediation}")
        else:
            messages.success(request, f"Change request {pk}: {DONE[action]}.")
        return HttpResponseRedirect(change_url)

    def queue_view(self, request: HttpRequest) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "Change requests waiting for you",
            "requests": queue_for(request.user),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "approvals/queue.html", context)

    def whatif_view(self, request: HttpRequest) -> HttpResponse:
        try:
            days = max(1, min(int(request.GET.get("days", "120")), 3650))
        except ValueError:
            days = 120
        context = {
            **self.admin_site.each_context(request),
            "title": f"Renewal what-if: the next {days} days",
            "days": days,
            "events": renewals_whatif(days=days),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "approvals/whatif.html", context)


@admin.register(ApprovalSettings, site=tenant_admin_site)
class ApprovalSettingsAdmin(SimpleHistoryAdmin):
    list_display = ["__str__", "quorum", "request_expiry_hours", "maintenance_window"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not ApprovalSettings.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(TermTransition, site=tenant_admin_site)
class TermTransitionAdmin(SimpleHistoryAdmin):
    list_display = ["grant", "kind", "term_end", "due_at", "occurred_at", "actor"]
    list_filter = ["kind"]
    list_select_related = ["grant__policy", "actor"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
