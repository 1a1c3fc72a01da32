"""`pip install ./client` into a fresh virtual environment gives a working CLI without Django."""

import json
import shutil
import subprocess
import time
import venv
from pathlib import Path

import pytest

from tests.client.vector_server import VectorServer
from tests.vectors.tokens import PRODUCT, TENANT, make_keys

CLIENT_DIR = Path(__file__).resolve().parents[2] / "client"


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean-venv")
    source = root / "client-src"
    shutil.copytree(
        CLIENT_DIR, source, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__", "build")
    )
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    # pip may reach PyPI for cryptography and setuptools; the pip cache usually serves them.
    result = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return root / "venv" / "bin"


def test_install_has_no_django(clean_venv):
    result = subprocess.run(
        [clean_venv / "python", "-c", "import django"], capture_output=True, timeout=60
    )
    assert result.returncode != 0


def test_install_cli_activates_and_reports_offline(clean_venv, tmp_path):
    keys = make_keys(now=int(time.time()))
    root_keys = tmp_path / "root-keys.json"
    root_keys.write_text(json.dumps(keys.root_jwks))
    server = VectorServer(keys, clock=time.time).start()
    base = ["--tenant", TENANT, "--product", PRODUCT, "--state-dir", str(tmp_path / "state")]
    try:
        activate = subprocess.run(
            [clean_venv / "keyplane-client", "--server", server.url, *base,
             "--root-keys", str(root_keys), "activate", "--license-key", "KP-GOOD-KEY"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        server.stop()
    assert activate.returncode == 0, activate.stderr
    status = subprocess.run(
        [clean_venv / "keyplane-client", "--server", server.url, *base, "status", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["state"] == "valid"
