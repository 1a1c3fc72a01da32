"""Export bundles and the standalone verifier, run as its own process without Django."""

import csv
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit import chain
from audit.models import LegalHold
from audit.services import decision_record
from tests.audit.conftest import CheckpointTestSigner

ROOT_KEY_TYPE = "kp-key-cert+jwt"


@pytest.fixture
def root_signer(registered_signer) -> CheckpointTestSigner:
    """A root key that certifies the test tenant key, registered as licensing would."""
    root = CheckpointTestSigner(kid="test-root-key")
    certificate = root.sign(
        {"sub": registered_signer.kid, "tid": "alpha", "jwk": registered_signer.jwk, "iat": 0},
        typ=ROOT_KEY_TYPE,
    )
    chain.register_key_set_provider(registered_signer.key_set, certificates=lambda: [certificate])
    return root


@pytest.fixture
def bundle(in_alpha, root_signer, tmp_path) -> Path:
    for index in range(4):
        decision_record(
            event="license.activate",
            outcome="granted",
            actor=f"device:{index}",
            subject=f"grant:{index}",
            data={"note": 'naïve ünïcode, "quoted", comma'},
        )
    LegalHold.objects.create(subject="grant:1", reason="case 9")
    out = tmp_path / "bundle"
    today = timezone.now().date()
    call_command(
        "audit_export",
        tenant="alpha",
        since=str(today - dt.timedelta(days=1)),
        until=str(today + dt.timedelta(days=1)),
        out=str(out),
    )
    return out


def run_verifier(bundle: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """Run the bundle's own copy of the verifier with Django absent from the environment."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("DJANGO")}
    env["PYTHONPATH"] = ""
    return subprocess.run(
        [
            sys.executable,
            "-I",
            str(bundle / "verifier" / "verify_bundle.py"),
            str(bundle),
            *arguments,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=bundle,
        timeout=60,
    )


def write_root_keys(tmp_path: Path, root: CheckpointTestSigner) -> Path:
    path = tmp_path / "root-keys.json"
    path.write_text(json.dumps(root.key_set()))
    return path


def test_export_bundle_contains_files(bundle):
    names = {path.name for path in bundle.iterdir()}

    assert {"manifest.json", "decisions.jsonl", "decisions.csv", "checkpoints.jsonl"} <= names
    assert {"history.jsonl", "history.csv", "keys.json", "verifier"} <= names


def test_export_history_names_users(bundle):
    rows = [json.loads(line) for line in (bundle / "history.jsonl").read_text().splitlines()]
    holds = [row for row in rows if row["model"] == "audit.LegalHold"]

    assert holds[-1]["fields"]["subject"] == "grant:1"
    assert holds[-1]["history_user"] == "system:unattributed"


def test_export_csv_matches_jsonl(bundle):
    with (bundle / "decisions.csv").open(encoding="utf-8", newline="") as handle:
        csv_rows = list(csv.DictReader(handle))
    json_rows = [json.loads(line) for line in (bundle / "decisions.jsonl").read_text().splitlines()]

    assert [row["hash"] for row in csv_rows] == [row["hash"] for row in json_rows]
    assert json.loads(csv_rows[-1]["data"]) == json_rows[-1]["data"]


def test_verify_bundle_standalone_ok(bundle, root_signer, tmp_path):
    result = run_verifier(bundle, "--root-keys", str(write_root_keys(tmp_path, root_signer)))

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok:")


def test_verify_bundle_accepts_inline_jwks(bundle, root_signer):
    result = run_verifier(bundle, "--root-keys", json.dumps(root_signer.key_set()))

    assert result.returncode == 0, result.stderr


def test_verify_bundle_tampered_entry_fails(bundle, root_signer, tmp_path):
    path = bundle / "decisions.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[1]["outcome"] = "refused"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    manifest = json.loads((bundle / "manifest.json").read_text())
    # A careful attacker also fixes the file digest in the manifest.
    manifest["files"]["decisions.jsonl"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest))

    result = run_verifier(bundle, "--root-keys", str(write_root_keys(tmp_path, root_signer)))

    assert result.returncode == 1
    assert f"entry #{rows[1]['seq']} does not match its stored hash" in result.stderr


def test_verify_bundle_changed_file_fails(bundle, root_signer, tmp_path):
    with (bundle / "history.csv").open("a") as handle:
        handle.write("forged,row\n")

    result = run_verifier(bundle, "--root-keys", str(write_root_keys(tmp_path, root_signer)))

    assert result.returncode == 1
    assert "history.csv has SHA-256" in result.stderr


def test_verify_bundle_other_root_fails(bundle, tmp_path):
    stranger = CheckpointTestSigner(kid="test-root-key")

    result = run_verifier(bundle, "--root-keys", str(write_root_keys(tmp_path, stranger)))

    assert result.returncode == 1
    assert "certificate 0 does not verify" in result.stderr


def test_verify_bundle_dropped_tail_fails(bundle, root_signer, tmp_path):
    path = bundle / "decisions.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("".join(line + "\n" for line in lines[:-1]))
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["decisions.jsonl"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest))

    result = run_verifier(bundle, "--root-keys", str(write_root_keys(tmp_path, root_signer)))

    assert result.returncode == 1
    assert "is missing" in result.stderr
