"""Platform admin of overlay schemas and global defaults."""

from typing import ClassVar

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from overlays.catalog.models import GlobalDefaults, OverlaySchema


@admin.register(OverlaySchema)
class OverlaySchemaAdmin(SimpleHistoryAdmin):
    list_display = ("product", "version", "created_at")
    list_filter = ("product",)
    list_select_related = ("product",)
    search_fields: ClassVar = ["product__code"]

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        # A published schema version is immutable: upload a new version instead.
        return ("product", "version", "schema", "created_at") if obj else ("created_at",)


@admin.register(GlobalDefaults)
class GlobalDefaultsAdmin(SimpleHistoryAdmin):
    list_display = ("product", "updated_at")
    list_select_related = ("product",)
