"""Reads of the decision log: chain verification and export rows."""

from collections.abc import Iterator
from typing import Any

from django.db import connection

from audit import chain
from audit.models import ChainHead, Checkpoint, DecisionLogEntry

_CHUNK = 2000


def current_tenant_slug() -> str:
    """Return the slug of the tenant whose schema is active."""
    from portal.tenants.models import Tenant

    slug = getattr(getattr(connection, "tenant", None), "slug", "")
    if slug:
        return str(slug)
    found = (
        Tenant.objects.filter(schema_name=connection.schema_name)
        .values_list("slug", flat=True)
        .first()
    )
    return found or connection.schema_name


def entry_rows(
    *, first_seq: int | None = None, last_seq: int | None = None, chunk_size: int = _CHUNK
) -> Iterator[dict[str, Any]]:
    """Yield entries as dicts in ascending `seq` order, optionally limited to a `seq` range.

    Reads in keyset-paginated chunks, so memory stays flat on large logs.
    """
    queryset = DecisionLogEntry.objects.order_by("seq")
    if first_seq is not None:
        queryset = queryset.filter(seq__gte=first_seq)
    if last_seq is not None:
        queryset = queryset.filter(seq__lte=last_seq)
    fields = (*chain.ENTRY_FIELDS, "hash")
    after = None
    while True:
        page = queryset if after is None else queryset.filter(seq__gt=after)
        rows = list(page.values(*fields)[:chunk_size])
        if not rows:
            return
        yield from rows
        after = rows[-1]["seq"]


def checkpoint_rows() -> list[dict[str, Any]]:
    return list(Checkpoint.objects.order_by("seq", "id").values("id", "seq", "hash", "kind", "token"))


def chain_verify() -> chain.VerificationReport:
    """Verify the current tenant's decision log against its checkpoints and chain head."""
    head = ChainHead.objects.filter(pk=1).values_list("seq", "hash").first()
    return chain.verify_chain(
        entry_rows(),
        checkpoint_rows(),
        key_set=chain.tenant_key_set(),
        tenant=current_tenant_slug(),
        head=head,
    )
