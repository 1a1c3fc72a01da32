"""A minimal desktop application licensed through Keyplane.

    python minimal_app.py --server https://licensing.example --tenant acme \
        --product studio --root-keys root-keys.json [--license-key KEY] [--once]

It activates on first start (with --license-key), then on every start works
from the verified cache, so it runs offline. A background thread refreshes
the license and fetches overlays; callbacks swap features and settings in
place, so the document the user is editing survives the change. With
--once it prints the decision and exits, which is what the tests run.
"""

import argparse
import logging
import sys
import threading
from pathlib import Path

from keyplane_client import Client, Decision, KeyplaneClientError, Overlay, RootKeys


class Editor:
    """The application's UI in miniature: a document plus feature-dependent commands."""

    def __init__(self) -> None:
        self.document: list[str] = []
        self.settings: dict[str, object] = {"theme": "light"}
        self.commands: tuple[str, ...] = ()
        self.lock = threading.Lock()

    def apply_decision(self, decision: Decision, previous: Decision | None) -> None:
        # Callbacks run on the refresher thread; a GUI would post this to its event loop.
        with self.lock:
            self.commands = decision.features
        print(f"license: {decision.state.value} ({decision.reason}); features: {decision.features}")
        if not decision.licensed:
            print(f"  {decision.remediation}")

    def apply_overlay(self, overlay: Overlay | None, previous: Overlay | None) -> None:
        if overlay is None:
            return
        with self.lock:
            # Only settings change; self.document is left alone.
            self.settings = {**self.settings, **dict(overlay.values)}
        print(f"settings from overlay release {overlay.release}: {self.settings}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--product", required=True)
    parser.add_argument("--root-keys", required=True, type=Path, help="pinned root keys (JWKS)")
    parser.add_argument("--state-dir", type=Path, default=Path.home() / ".minimal-app" / "license")
    parser.add_argument("--license-key", help="activate with this key if not yet activated")
    parser.add_argument("--once", action="store_true", help="print the decision and exit")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    client = Client(
        server=args.server,
        tenant=args.tenant,
        product=args.product,
        state_dir=args.state_dir,
        root_keys=RootKeys.from_jwks(args.root_keys.read_text()),
    )
    editor = Editor()
    client.on_decision_change(editor.apply_decision)
    client.on_overlay_change(editor.apply_overlay)
    editor.apply_overlay(client.overlay, None)

    if client.license is None and args.license_key:
        try:
            client.activate(args.license_key)
        except KeyplaneClientError as exc:
            print(f"activation failed: {exc.reason}: {exc}", file=sys.stderr)

    decision = client.decision()
    print(f"export allowed: {decision.allows('export')}")
    if args.once:
        client.stop()
        return 0 if decision.licensed else 1

    client.start()
    try:
        threading.Event().wait()  # the application's main loop would run here
    except KeyboardInterrupt:
        pass
    finally:
        client.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
