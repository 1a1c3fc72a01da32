"""Identity fixtures: a real OpenID Connect provider process and a browser-like flow driver.

`oidc_provider` runs the test provider site (tests/oidc_provider/, Django
with django-oauth-toolkit's OpenID Connect support) under gunicorn on a free
loopback port, with its own PostgreSQL database `test_kp_oidc_provider` and
an RSA signing key made for the run. `sso_sign_in` drives the authorization
code flow the way a browser does: Keyplane's login redirect, the provider's
login form and consent page, then Keyplane's callback.
"""

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import psycopg
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings

from tests.conftest import PROJECT_ROOT, free_port, wait_for_port

# The licensing fixtures that the enrollment API tests request by name.
from tests.licensing.conftest import alpha_api, product, rate_limits_reset  # noqa: F401

PROVIDER_DATABASE = "test_kp_oidc_provider"
PROVIDER_PASSWORD = "provider-password-1"


def _admin_connection() -> psycopg.Connection[Any]:
    db = settings.DATABASES["default"]
    return psycopg.connect(
        host=db.get("HOST") or "127.0.0.1",
        port=int(db.get("PORT") or 5432),
        user=db.get("USER") or "postgres",
        password=db.get("PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
    )


def _provider_database_url() -> str:
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return (
        f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:"
        f"{db.get('PORT') or 5432}/{PROVIDER_DATABASE}"
    )


@dataclass
class Provider:
    """The running test provider: its URLs and a way to set its users and clients."""

    base_url: str
    issuer: str
    environment: dict[str, str]
    log_path: Path

    def seed(
        self,
        *,
        users: list[dict[str, Any]] = (),
        clients: list[dict[str, Any]] = (),  # type: ignore[assignment]
    ) -> None:
        document = {"users": list(users), "clients": list(clients)}
        subprocess.run(
            [sys.executable, "-m", "tests.oidc_provider.seed"],
            input=json.dumps(document).encode(),
            cwd=PROJECT_ROOT,
            env=self.environment,
            check=True,
            capture_output=True,
            timeout=60,
        )

    def user(self, *, email_domain: str, groups: list[str]) -> dict[str, Any]:
        """Create a provider user with a unique name in `groups`; return its seed record."""
        name = f"user-{uuid.uuid4().hex[:8]}"
        record = {
            "username": name,
            "password": PROVIDER_PASSWORD,
            "email": f"{name}@{email_domain}",
            "first_name": "Test",
            "last_name": name,
            "groups": groups,
        }
        self.seed(users=[record])
        return record


@pytest.fixture(scope="session")
def oidc_provider(django_db_setup: None) -> Iterator[Provider]:
    """The test provider under gunicorn, on its own database, for the whole session."""
    with _admin_connection() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{PROVIDER_DATABASE}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{PROVIDER_DATABASE}"')

    workdir = Path(tempfile.mkdtemp(prefix="kp-oidc-provider-"))
    key_path = workdir / "rsa.pem"
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_path.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    environment = dict(os.environ)
    environment.update(
        DJANGO_SETTINGS_MODULE="tests.oidc_provider.settings",
        OIDC_PROVIDER_DATABASE_URL=_provider_database_url(),
        OIDC_PROVIDER_RSA_KEY_FILE=str(key_path),
        OIDC_PROVIDER_ISSUER=f"{base_url}/o",
        OIDC_PROVIDER_SECRET_KEY=secrets.token_urlsafe(40),
        # oauthlib rejects plain-HTTP endpoints unless this variable is set.
        OAUTHLIB_INSECURE_TRANSPORT="1",
        PYTHONPATH=str(PROJECT_ROOT),
    )
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--no-input", "-v", "0"],
        cwd=PROJECT_ROOT,
        env=environment,
        check=True,
        timeout=300,
    )
    gunicorn_bin = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    assert gunicorn_bin, "gunicorn executable not found next to the test interpreter"
    log_path = PROJECT_ROOT / ".keyplane" / f"test-oidc-provider-{settings.TEST_RUN_ID}.log"
    log_path.parent.mkdir(exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                gunicorn_bin,
                "tests.oidc_provider.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--timeout",
                "60",
            ],
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port)
        yield Provider(
            base_url=base_url, issuer=f"{base_url}/o", environment=environment, log_path=log_path
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(workdir, ignore_errors=True)
        with _admin_connection() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{PROVIDER_DATABASE}" WITH (FORCE)')


class _FormParser(HTMLParser):
    """Collects the first form's action and its input fields from an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._in_form = False
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form" and not self._done:
            self._in_form = True
            self.action = values.get("action", "")
        elif (
            tag == "input"
            and self._in_form
            and values.get("name")
            and values.get("type") not in {"submit", "button"}
        ):
            self.fields[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._in_form:
            self._in_form = False
            self._done = True


def form_of(page: requests.Response) -> tuple[str, dict[str, str]]:
    """Return the absolute action URL and the fields of the page's first form."""
    parser = _FormParser()
    parser.feed(page.text)
    action = urljoin(page.url, parser.action or page.url)
    return action, parser.fields


@dataclass
class SignIn:
    """Result of a driven sign-in: the browser session and every step's response."""

    browser: requests.Session
    callback_url: str = ""
    callback: requests.Response | None = None
    steps: list[requests.Response] = field(default_factory=list)


def provider_authorize(browser: requests.Session, authorize_url: str, user: dict[str, Any]) -> str:
    """Sign in at the provider if needed, grant consent, return the redirect to the client."""
    response = browser.get(authorize_url, allow_redirects=False, timeout=30)
    if response.status_code == 302 and "/accounts/login/" in response.headers["Location"]:
        login_page = browser.get(urljoin(authorize_url, response.headers["Location"]), timeout=30)
        action, fields = form_of(login_page)
        fields.update(username=user["username"], password=user["password"])
        response = browser.post(action, data=fields, allow_redirects=False, timeout=30)
        assert response.status_code == 302, f"provider login failed: {response.status_code}"
        response = browser.get(
            urljoin(authorize_url, response.headers["Location"]), allow_redirects=False, timeout=30
        )
    if response.status_code == 200:
        action, fields = form_of(response)
        fields["allow"] = "Authorize"
        response = browser.post(action, data=fields, allow_redirects=False, timeout=30)
    assert response.status_code == 302, f"provider authorization failed: {response.status_code}"
    return str(response.headers["Location"])


def sso_sign_in(
    site_url: str, slug: str, user: dict[str, Any], browser: requests.Session | None = None
) -> SignIn:
    """Sign in to tenant `slug`'s admin through its provider as `user`; stop after the callback."""
    result = SignIn(browser=browser or requests.Session())
    start = result.browser.get(
        f"{site_url}/t/{slug}/oidc/login/", allow_redirects=False, timeout=30
    )
    result.steps.append(start)
    assert start.status_code == 302, (
        f"login did not redirect: {start.status_code} {start.text[:300]}"
    )
    result.callback_url = provider_authorize(result.browser, start.headers["Location"], user)
    result.callback = result.browser.get(result.callback_url, allow_redirects=False, timeout=30)
    return result
