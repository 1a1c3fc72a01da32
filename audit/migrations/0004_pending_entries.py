"""Record decisions as pending entries and chain them into the log after commit.

`audit_pendingentry` holds decisions that are recorded but not chained.
Its trigger rejects UPDATE and TRUNCATE; DELETE stays allowed, because
chaining deletes each entry in the statement that appends it to the log.

`audit_chain_checked` lets that one statement fail as a whole when the
chain head moved but not every entry reached the log.
"""

from django.db import migrations, models

FORWARD = """
CREATE TRIGGER audit_pendingentry_no_update
    BEFORE UPDATE ON audit_pendingentry
    FOR EACH ROW EXECUTE FUNCTION audit_reject_change('always');
CREATE TRIGGER audit_pendingentry_no_truncate
    BEFORE TRUNCATE ON audit_pendingentry
    FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change('always');

CREATE OR REPLACE FUNCTION audit_chain_checked(moved int, logged int, expected int)
RETURNS int
LANGUAGE plpgsql AS $$
BEGIN
    IF moved = 1 AND logged <> expected THEN
        RAISE EXCEPTION 'chaining moved the chain head over % entries but logged %',
            expected, logged
            USING ERRCODE = 'data_exception',
                  HINT = 'Nothing was chained; run audit_verify on the tenant.';
    END IF;
    RETURN moved;
END;
$$;
"""

BACKWARD = """
DROP FUNCTION IF EXISTS audit_chain_checked(int, int, int);
DROP TRIGGER IF EXISTS audit_pendingentry_no_truncate ON audit_pendingentry;
DROP TRIGGER IF EXISTS audit_pendingentry_no_update ON audit_pendingentry;
"""


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0003_entry_hash_not_unique'),
    ]

    operations = [
        migrations.CreateModel(
            name='PendingEntry',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('time', models.DateTimeField()),
                ('event', models.CharField(max_length=64)),
                ('outcome', models.CharField(max_length=32)),
                ('reason', models.CharField(blank=True, max_length=64)),
                ('actor', models.CharField(max_length=150)),
                ('subject', models.CharField(blank=True, max_length=150)),
                ('data', models.JSONField(blank=True, default=dict)),
            ],
            options={
                'verbose_name': 'pending decision-log entry',
                'verbose_name_plural': 'pending decision-log entries',
            },
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
