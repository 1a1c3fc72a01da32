from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The `make demo` scenario: seeding, the fleet simulator and the orchestrator."""

    name = "portal.demo"
    label = "demo"
    verbose_name = "Demo"
