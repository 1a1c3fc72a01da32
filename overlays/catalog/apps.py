from django.apps import AppConfig


class OverlayCatalogConfig(AppConfig):
    name = "overlays.catalog"
    label = "overlay_catalog"
    verbose_name = "Overlay schemas"
