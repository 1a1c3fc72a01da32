from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from licensing.signing import root_key_rotate


class Command(BaseCommand):
    help = (
        "Create a new platform root key and mark the current one retiring. Publish the new "
        "root key set to application builds before the old key's certificates expire."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reason", default="scheduled", help="Why the key is rotated (audited)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        key = root_key_rotate(reason=options["reason"])
        self.stdout.write(f"New root key {key.kid} is active.")
