from django.contrib import admin

from portal.catalog.models import Feature, Product, RootSigningKey


class FeatureInline(admin.TabularInline):
    model = Feature
    extra = 1


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "created_at")
    search_fields = ("code", "name")
    inlines = (FeatureInline,)


@admin.register(RootSigningKey)
class RootSigningKeyAdmin(admin.ModelAdmin):
    """Root keys are read-only here; rotate them with `manage.py rotate_root_key`."""

    list_display = ("kid", "state", "created_at", "not_after")
    readonly_fields = ("kid", "state", "created_at", "not_after", "state_changed_at")
    exclude = ("public_key",)

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False
