"""Histograms of the touch times per UTC month, kept by a trigger like the per-day aggregates.

`handoff_touch_months` counts, per month (of the handoff), tier, signal, team and bucket of the
time to first touch, the touched handoffs. A bucket is an eighth of a doubling of seconds
(`touch_bucket`: from the bits of the float, so exact and in value order); the
percentiles of a period's whole months add up these counts to find the bucket of each order
statistic and read only that bucket's touch times, by `handoffs_touch_bucket` (docs/metrics.md).

`metric_days_recount()` recounts it with the per-day aggregates.

Revision ID: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# A second or more: the float's exponent and the top three bits of its mantissa (its first two
# bytes, big-endian, less the sign bit, which is 0): each doubling of seconds cut into eight, in
# value order, exactly. Under a second (a touch logged before the handoff too): bucket 0.
# Inlined by the planner (no STRICT): cheap enough to compute per row of a period's edges.
_SQL = """
CREATE FUNCTION touch_bucket(seconds float8) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN seconds < 1 THEN 0
            ELSE ((get_byte(float8send(seconds), 0) * 256 + get_byte(float8send(seconds), 1))
                  >> 1) - 8183 END;

CREATE FUNCTION handoff_touch_months_add(h handoffs, sign integer) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    -- handoff_facts: only handoffs known well enough to measure, and touched.
    IF h.tier IS NULL OR h.signal IS NULL OR h.handed_off_at IS NULL
       OR h.touch_seconds IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO handoff_touch_months AS m (month, tier, signal, team, bucket, touched)
    VALUES (date_trunc('month', h.handed_off_at AT TIME ZONE 'UTC')::date, h.tier, h.signal,
            h.team, touch_bucket(h.touch_seconds), sign)
    ON CONFLICT (month, tier, signal, team, bucket) DO UPDATE SET
        touched = m.touched + excluded.touched;
END $$;

CREATE FUNCTION handoff_touch_months_track() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.tier IS NOT DISTINCT FROM NEW.tier
       AND OLD.signal IS NOT DISTINCT FROM NEW.signal AND OLD.team IS NOT DISTINCT FROM NEW.team
       AND OLD.handed_off_at IS NOT DISTINCT FROM NEW.handed_off_at
       AND OLD.touch_seconds IS NOT DISTINCT FROM NEW.touch_seconds THEN
        RETURN NULL;  -- most updates (the clock's status, alerts' links) count nothing here
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM handoff_touch_months_add(OLD, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM handoff_touch_months_add(NEW, 1);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER handoff_touch_months_track AFTER INSERT OR UPDATE OR DELETE ON handoffs
FOR EACH ROW EXECUTE FUNCTION handoff_touch_months_track();

-- The per-day aggregates' recount (migration 0010) recounts the months too.
ALTER FUNCTION metric_days_recount() RENAME TO metric_days_recount_days;

CREATE FUNCTION metric_days_recount() RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM metric_days_recount_days();
    TRUNCATE handoff_touch_months;
    INSERT INTO handoff_touch_months (month, tier, signal, team, bucket, touched)
    SELECT date_trunc('month', handed_off_at AT TIME ZONE 'UTC')::date, tier, signal, team,
           touch_bucket(touch_seconds), count(*)
    FROM handoffs
    WHERE tier IS NOT NULL AND signal IS NOT NULL AND handed_off_at IS NOT NULL
      AND touch_seconds IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5;
END $$;
"""


def upgrade() -> None:
    text = sa.Text
    op.create_table(
        "handoff_touch_months",
        sa.Column("month", sa.Date, primary_key=True),  # its first day
        sa.Column("tier", text, primary_key=True),
        sa.Column("signal", text, primary_key=True),
        sa.Column("team", text, primary_key=True),
        sa.Column("bucket", sa.Integer, primary_key=True),
        sa.Column("touched", sa.Integer, nullable=False),
    )
    # One statement per blank-line-separated block (a prepared statement holds one command).
    for statement in _SQL.strip().split("\n\n"):
        op.execute(statement)
    # A bucket's touch times in a span of months, in the order of handoff time.
    op.execute(
        "CREATE INDEX handoffs_touch_bucket ON handoffs "
        "(tier, touch_bucket(touch_seconds), handed_off_at) "
        "INCLUDE (signal, team, touch_seconds) "
        "WHERE tier IS NOT NULL AND signal IS NOT NULL AND touch_seconds IS NOT NULL"
    )
    op.execute("SELECT metric_days_recount()")  # the rows already there


def downgrade() -> None:
    raise NotImplementedError("Tandem migrations only go forward")
