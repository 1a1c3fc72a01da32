"""Make the decision log and its checkpoints append-only in every tenant schema.

The trigger functions reject UPDATE, DELETE and TRUNCATE from every role
that does not bypass triggers. One exception: DELETE on decision-log entries
passes while the transaction-local setting `keyplane.audit_purge` is `on`,
which only `audit.services.decision_log_purge` sets, after it has signed a
retention-cut checkpoint. This stops application bugs and casual edits; a
database superuser can still disable triggers, and `audit_verify` detects
what such a user changes.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION audit_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND TG_ARGV[0] = 'purgeable'
       AND current_setting('keyplane.audit_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% on %.% is not allowed: the audit log is append-only',
        TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_decisionlogentry_append_only
    BEFORE UPDATE OR DELETE ON audit_decisionlogentry
    FOR EACH ROW EXECUTE FUNCTION audit_reject_change('purgeable');
CREATE TRIGGER audit_decisionlogentry_no_truncate
    BEFORE TRUNCATE ON audit_decisionlogentry
    FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change('always');
CREATE TRIGGER audit_checkpoint_append_only
    BEFORE UPDATE OR DELETE ON audit_checkpoint
    FOR EACH ROW EXECUTE FUNCTION audit_reject_change('always');
CREATE TRIGGER audit_checkpoint_no_truncate
    BEFORE TRUNCATE ON audit_checkpoint
    FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change('always');

INSERT INTO audit_chainhead (id, seq, hash) VALUES (1, 0, repeat('0', 64))
    ON CONFLICT (id) DO NOTHING;
"""

BACKWARD = """
DROP TRIGGER IF EXISTS audit_checkpoint_no_truncate ON audit_checkpoint;
DROP TRIGGER IF EXISTS audit_checkpoint_append_only ON audit_checkpoint;
DROP TRIGGER IF EXISTS audit_decisionlogentry_no_truncate ON audit_decisionlogentry;
DROP TRIGGER IF EXISTS audit_decisionlogentry_append_only ON audit_decisionlogentry;
DROP FUNCTION IF EXISTS audit_reject_change();
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_decision_log")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
