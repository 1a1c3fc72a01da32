from django.apps import AppConfig


class OverlaysConfig(AppConfig):
    name = "overlays"
    verbose_name = "Overlays"

    def ready(self) -> None:
        from licensing import manifest_contributions
        from overlays.services import overlay_pointer

        # Licensing never imports overlays; the manifest pulls the release pointer from here.
        manifest_contributions.register(overlay_pointer)
