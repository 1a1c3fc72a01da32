"""Files the demo keeps under .keyplane/: the demo file and the generated credentials.

Both contain secrets (passwords, license keys, an admin API token), so they
are written atomically with mode 0600 and never leave the git-ignored state
folder. The credentials file is what makes `demo_seed` idempotent: a second
run reuses the passwords and license keys the first run generated, because
Keyplane stores only hashes of them.
"""

import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings


def demo_file_path() -> Path:
    return Path(settings.STATE_DIR) / "demo.json"


def credentials_path() -> Path:
    return Path(settings.STATE_DIR) / "demo-credentials.json"


def private_json_write(path: Path, data: Any) -> None:
    """Write JSON readable by the owner only, replacing the file in one rename."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            json.dump(data, stream, indent=2, sort_keys=True)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def demo_file_read(path: Path | None = None) -> dict[str, Any]:
    path = path or demo_file_path()
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


class Credentials:
    """Generated demo passwords, license keys and tokens, kept between runs."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or credentials_path()
        self.data: dict[str, Any] = {}
        if self.path.exists():
            self.data = json.loads(self.path.read_text(encoding="utf-8"))

    def password(self, username: str) -> str:
        """Return the stored password of a demo user, generating it on first use."""
        passwords = self.data.setdefault("passwords", {})
        if username not in passwords:
            passwords[username] = secrets.token_urlsafe(12)
        return str(passwords[username])

    def grant(self, tenant: str, label: str) -> dict[str, Any] | None:
        found = self.data.get("grants", {}).get(tenant, {}).get(label)
        return dict(found) if found else None

    def grant_store(self, tenant: str, label: str, *, grant_id: int, license_key: str) -> None:
        grants = self.data.setdefault("grants", {}).setdefault(tenant, {})
        grants[label] = {"id": grant_id, "license_key": license_key}

    def token(self, tenant: str) -> str | None:
        value = self.data.get("api_tokens", {}).get(tenant)
        return str(value) if value else None

    def token_store(self, tenant: str, token: str) -> None:
        self.data.setdefault("api_tokens", {})[tenant] = token

    def forget_tenant(self, tenant: str) -> None:
        """Drop a tenant's license keys and token, after its schema was dropped."""
        self.data.get("grants", {}).pop(tenant, None)
        self.data.get("api_tokens", {}).pop(tenant, None)

    def save(self) -> None:
        private_json_write(self.path, self.data)
