from django.contrib import admin, messages

from portal.catalog.models import Feature, KeyState, Product, RootSigningKey


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

    actions = ("rotate_root_key",)

    @admin.action(description="Rotate the root key (the selected key must be the active one)")
    def rotate_root_key(self, request, queryset) -> None:  # type: ignore[no-untyped-def]
        from licensing.signing import root_key_rotate

        if not request.user.is_superuser or not queryset.filter(state=KeyState.ACTIVE).exists():
            messages.error(request, "A superuser must select the active root key to rotate it.")
            return
        key = root_key_rotate(reason="rotated in the platform admin")
        messages.success(request, f"Root key {key.kid} is now active; ship the new key set.")

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False
