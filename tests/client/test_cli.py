"""keyplane-client CLI: activate, status offline, features, verify."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from keyplane_client.cli import run

from tests.client.vector_server import VectorServer
from tests.vectors.tokens import PRODUCT, TENANT, hostile_licenses, make_keys


@pytest.fixture
def keys():
    return make_keys(now=int(time.time()))


@pytest.fixture
def server(keys):
    server = VectorServer(keys, clock=time.time).start()
    yield server
    server.stop()


@pytest.fixture
def root_keys_file(keys, tmp_path):
    path = tmp_path / "root-keys.json"
    path.write_text(json.dumps(keys.root_jwks))
    return path


def cli(server_url, state_dir, *command):
    return [
        "--server",
        server_url,
        "--tenant",
        TENANT,
        "--product",
        PRODUCT,
        "--state-dir",
        str(state_dir),
        *command,
    ]


@pytest.fixture
def activated_dir(server, root_keys_file, tmp_path, capsys):
    state_dir = tmp_path / "state"
    code = run(
        cli(
            server.url,
            state_dir,
            "--root-keys",
            str(root_keys_file),
            "activate",
            "--license-key",
            "KP-GOOD-KEY",
        )
    )
    assert code == 0, capsys.readouterr()
    capsys.readouterr()
    return state_dir


def test_cli_activate_prints_valid(server, root_keys_file, tmp_path, capsys):
    state_dir = tmp_path / "state"
    code = run(
        cli(
            server.url,
            state_dir,
            "--root-keys",
            str(root_keys_file),
            "activate",
            "--license-key",
            "KP-GOOD-KEY",
        )
    )
    assert code == 0
    assert "state:          valid" in capsys.readouterr().out


def test_cli_activate_rejected_key_exits_3(server, root_keys_file, tmp_path, capsys):
    code = run(
        cli(
            server.url,
            tmp_path / "s",
            "--root-keys",
            str(root_keys_file),
            "activate",
            "--license-key",
            "KP-BAD",
        )
    )
    assert code == 3
    assert "license_invalid" in capsys.readouterr().err


def test_cli_status_json_with_network_cut(server, activated_dir, capsys):
    server.stop()
    closed = "http://127.0.0.1:9"
    code = run(cli(closed, activated_dir, "status", "--json"))
    status = json.loads(capsys.readouterr().out)
    assert code == 0
    assert status["state"] == "valid"
    assert status["features"] == ["export", "render"]


def test_cli_refresh_with_network_cut_keeps_status(server, activated_dir, capsys):
    server.stop()
    closed = "http://127.0.0.1:9"
    assert run(cli(closed, activated_dir, "refresh")) == 3
    capsys.readouterr()
    assert run(cli(closed, activated_dir, "status")) == 0


def test_cli_features_lists_entitlements(server, activated_dir, capsys):
    assert run(cli(server.url, activated_dir, "features")) == 0
    assert capsys.readouterr().out.split() == ["export", "render"]


def test_cli_verify_valid_token(server, keys, activated_dir, capsys):
    assert run(cli(server.url, activated_dir, "verify", keys.license())) == 0
    assert capsys.readouterr().out.strip() == "valid: ok"


@pytest.mark.parametrize(
    "case", ["alg_none", "embedded_jwk", "unknown_kid", "payload_byte_changed", "garbage"]
)
def test_cli_verify_hostile_token_exits_1(server, keys, activated_dir, capsys, case):
    assert run(cli(server.url, activated_dir, "verify", hostile_licenses(keys)[case])) == 1
    assert capsys.readouterr().out.startswith("invalid: ")


def test_cli_status_without_root_keys_exits_2(tmp_path, capsys):
    assert run(cli("http://127.0.0.1:9", tmp_path / "empty", "status")) == 2
    assert "root_keys_missing" in capsys.readouterr().err


def test_cli_entry_point_runs(server, activated_dir):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "keyplane_client",
            *cli(server.url, activated_dir, "status", "--json"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["state"] == "valid"


def test_example_app_activates_then_runs_offline(server, root_keys_file, tmp_path):
    example = Path(__file__).resolve().parents[2] / "client" / "examples" / "minimal_app.py"
    state_dir = tmp_path / "app"
    base = [
        sys.executable, str(example), "--tenant", TENANT, "--product", PRODUCT,
        "--root-keys", str(root_keys_file), "--state-dir", str(state_dir), "--once",
    ]  # fmt: skip
    first = subprocess.run(
        [*base, "--server", server.url, "--license-key", "KP-GOOD-KEY"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert first.returncode == 0, first.stdout + first.stderr
    assert "export allowed: True" in first.stdout
    server.stop()
    offline = subprocess.run(
        [*base, "--server", "http://127.0.0.1:9"], capture_output=True, text=True, timeout=60
    )
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert "settings from overlay release 1" in offline.stdout
