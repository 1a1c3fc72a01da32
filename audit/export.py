"""Export of a tenant's decision log and history for a period as a verifiable bundle.

Bundle layout (one folder):

    manifest.json         format, tenant, period, sequence range, file digests
    decisions.jsonl       entries, one JSON object a line, in `seq` order
    decisions.csv         the same entries; `data` as a JSON string
    checkpoints.jsonl     the checkpoints up to the last exported entry (JWS in `token`)
    history.jsonl         history rows of every history-tracked model in the period
    history.csv           the same rows; `fields` as a JSON string
    keys.json             {"keys": tenant JWKS, "certificates": [kp-key-cert+jwt, ...]}
    verifier/             chain.py and verify_bundle.py, runnable without Django

The entries exported run from just after the newest checkpoint before the
period to the first checkpoint at or after its end, so both ends of the
exported range are signed. An entry can then be neither removed from nor
added to the range without failing verification. Entry times use the exact text
that the hash covers.
"""

import csv
import datetime as dt
import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from simple_history.models import registered_models

from audit import chain
from audit.exceptions import CheckpointSignerMissing
from audit.models import Checkpoint, DecisionLogEntry
from audit.selectors import checkpoint_rows, current_tenant_slug, entry_rows
from audit.services import checkpoint_create

logger = logging.getLogger(__name__)

BUNDLE_FORMAT = "keyplane-audit-bundle/1"
ENTRY_COLUMNS = ("seq", *chain.ENTRY_FIELDS[1:], "hash")
HISTORY_COLUMNS = (
    "model",
    "object_id",
    "history_id",
    "history_date",
    "history_type",
    "history_user",
    "history_change_reason",
    "fields",
)


def _exported_range(since: dt.datetime, until: dt.datetime) -> tuple[int, int] | None:
    """Return the first and last `seq` to export, widened to signed checkpoints."""
    in_period = DecisionLogEntry.objects.filter(time__gte=since, time__lt=until)
    first = in_period.order_by("seq").values_list("seq", flat=True).first()
    last = in_period.order_by("-seq").values_list("seq", flat=True).first()
    if first is None or last is None:
        return None
    before = (
        Checkpoint.objects.filter(seq__lt=first)
        .order_by("-seq")
        .values_list("seq", flat=True)
        .first()
    )
    oldest = DecisionLogEntry.objects.order_by("seq").values_list("seq", flat=True).first()
    start = max(before + 1 if before is not None else 1, oldest or 1)
    after = (
        Checkpoint.objects.filter(seq__gte=last)
        .order_by("seq")
        .values_list("seq", flat=True)
        .first()
    )
    return start, after if after is not None else last


def _entry_document(row: dict[str, Any]) -> dict[str, Any]:
    document = {name: row[name] for name in ENTRY_COLUMNS}
    document["time"] = chain.format_time(row["time"])
    return document


def _history_documents(since: dt.datetime, until: dt.datetime) -> list[dict[str, Any]]:
    """Return the history rows of every tracked model of this schema in the period."""
    documents: list[dict[str, Any]] = []
    tracked = {model for model in registered_models.values() if hasattr(model, "history")}
    for model in sorted(tracked, key=lambda m: m._meta.label):
        manager = model.history
        if not _table_in_schema(manager.model._meta.db_table):
            continue
        records = manager.filter(history_date__gte=since, history_date__lt=until).order_by(
            "history_date", "history_id"
        )
        field_names = [field.attname for field in model._meta.concrete_fields]
        for record in records.select_related("history_user"):
            user = record.history_user
            documents.append(
                {
                    "model": model._meta.label,
                    "object_id": getattr(record, model._meta.pk.attname),
                    "history_id": record.history_id,
                    "history_date": chain.format_time(record.history_date),
                    "history_type": record.history_type,
                    "history_user": user.get_username() if user is not None else "",
                    "history_change_reason": record.history_change_reason or "",
                    "fields": {name: getattr(record, name) for name in field_names},
                }
            )
    return documents


def _table_in_schema(table: str) -> bool:
    """Return whether `table` exists in the current schema itself, not only in the public one."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
            [connection.schema_name, table],
        )
        return cursor.fetchone() is not None


def _write_jsonl(path: Path, documents: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for document in documents:
            handle.write(
                json.dumps(document, cls=DjangoJSONEncoder, ensure_ascii=False, sort_keys=True)
            )
            handle.write("\n")


def _write_csv(
    path: Path, columns: tuple[str, ...], documents: list[dict[str, Any]], json_column: str
) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for document in documents:
            row = dict(document)
            row[json_column] = json.dumps(row[json_column], cls=DjangoJSONEncoder, sort_keys=True)
            writer.writerow(row)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def decision_log_export(*, since: dt.datetime, until: dt.datetime, out_dir: Path) -> Path:
    """Write the current tenant's bundle for [since, until) into `out_dir`.

    Returns the path of the bundle's manifest.

    1. Sign the chain head, so the newest entries are covered. Without a
       registered signer this step is skipped with a warning, and the
       verifier reports the unsigned end.
    2. Write the entries, checkpoints, history and keys.
    3. Copy the standalone verifier and write the manifest with file digests.
    """
    try:
        checkpoint_create()
    except CheckpointSignerMissing:
        logger.warning("audit.export_unsigned schema=%s reason=no_signer", connection.schema_name)

    out_dir.mkdir(parents=True, exist_ok=True)
    seq_range = _exported_range(since, until)
    entries: list[dict[str, Any]] = []
    if seq_range is not None:
        rows = entry_rows(first_seq=seq_range[0], last_seq=seq_range[1])
        entries = [_entry_document(row) for row in rows]
    _write_jsonl(out_dir / "decisions.jsonl", entries)
    _write_csv(out_dir / "decisions.csv", ENTRY_COLUMNS, entries, "data")

    # Later checkpoints cover entries that are not in the bundle.
    end_seq = seq_range[1] if seq_range is not None else 0
    checkpoints = [row for row in checkpoint_rows() if row["seq"] <= end_seq]
    _write_jsonl(out_dir / "checkpoints.jsonl", checkpoints)

    history = _history_documents(since, until)
    _write_jsonl(out_dir / "history.jsonl", history)
    _write_csv(out_dir / "history.csv", HISTORY_COLUMNS, history, "fields")

    keys = {
        "keys": (chain.tenant_key_set() or {"keys": []})["keys"],
        "certificates": chain.tenant_key_certificates(),
    }
    (out_dir / "keys.json").write_text(json.dumps(keys, indent=2, sort_keys=True), encoding="utf-8")

    verifier_dir = out_dir / "verifier"
    verifier_dir.mkdir(exist_ok=True)
    source_dir = Path(__file__).resolve().parent
    for name in ("chain.py", "verify_bundle.py"):
        shutil.copyfile(source_dir / name, verifier_dir / name)

    files = [
        "decisions.jsonl",
        "decisions.csv",
        "checkpoints.jsonl",
        "history.jsonl",
        "history.csv",
        "keys.json",
    ]
    manifest = {
        "format": BUNDLE_FORMAT,
        "tenant": current_tenant_slug(),
        "since": chain.format_time(since),
        "until": chain.format_time(until),
        "first_seq": entries[0]["seq"] if entries else None,
        "last_seq": entries[-1]["seq"] if entries else None,
        "entries": len(entries),
        "history_rows": len(history),
        "files": {name: _sha256(out_dir / name) for name in files},
    }
    manifest_path = out_dir / "manifest.json"
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    logger.info(
        "audit.export schema=%s entries=%d history_rows=%d",
        connection.schema_name,
        len(entries),
        len(history),
    )
    return manifest_path
