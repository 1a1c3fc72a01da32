"""Append decision-log entries from a separate process: `python -m tests.audit.append_worker`.

Arguments: SCHEMA RUN_ID COUNT. Each entry commits on its own, so several of
these processes contend for the chain head the way web workers do.
"""

import sys


def main() -> None:
    import django

    django.setup()
    from django_tenants.utils import schema_context

    from audit.services import decision_record

    schema, run_id, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with schema_context(schema):
        for index in range(count):
            decision_record(
                event="test.concurrent_append",
                outcome="ok",
                actor=f"device:{run_id}",
                data={"run": run_id, "index": index},
            )


if __name__ == "__main__":
    main()
