"""The alerts delivered on each channel, in the alerts' listing order, kept by triggers.

`GET /v1/alerts?channel=` lists the alerts with a delivery on the channel, newest first. Read
through the alerts' own order, a rare channel meant probing the deliveries of every alert
passed over; `alert_channels` holds one row per alert and channel it has a delivery on, with
the alert's sort time, so a page reads its own rows off (channel, sort_at, alert_id). Triggers
on both tables keep it in the writing transaction, whichever of the alert and its deliveries
arrives first; a truncate of the alerts empties it (a rebuild).

Revision ID: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_SQL = """
CREATE FUNCTION alert_channels_add(id text, on_channel text) RETURNS void
LANGUAGE sql SET search_path FROM CURRENT
BEGIN ATOMIC
    INSERT INTO alert_channels (channel, alert_id, sort_at)
    SELECT on_channel, alert.alert_id, alert.sort_at FROM alerts alert WHERE alert.alert_id = id
    ON CONFLICT DO NOTHING;
END;

-- A channel stays listed while any delivery of the alert on it remains.
CREATE FUNCTION alert_channels_drop(id text, on_channel text) RETURNS void
LANGUAGE sql SET search_path FROM CURRENT
BEGIN ATOMIC
    DELETE FROM alert_channels listed
    WHERE listed.alert_id = id AND listed.channel = on_channel
      AND NOT EXISTS (
          SELECT 1 FROM alert_deliveries d WHERE d.alert_id = id AND d.channel = on_channel);
END;

CREATE FUNCTION alert_channels_track_delivery() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.alert_id = NEW.alert_id AND OLD.channel = NEW.channel THEN
        RETURN NULL;  -- an upsert that sets them to what they were
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM alert_channels_drop(OLD.alert_id, OLD.channel);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM alert_channels_add(NEW.alert_id, NEW.channel);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER alert_channels_track_delivery
AFTER INSERT OR DELETE OR UPDATE OF alert_id, channel ON alert_deliveries
FOR EACH ROW EXECUTE FUNCTION alert_channels_track_delivery();

CREATE FUNCTION alert_channels_track_alert() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.alert_id = NEW.alert_id AND OLD.sort_at = NEW.sort_at THEN
        RETURN NULL;  -- an upsert that sets them to what they were
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM alert_channels WHERE alert_id = OLD.alert_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO alert_channels (channel, alert_id, sort_at)
        SELECT DISTINCT d.channel, NEW.alert_id, NEW.sort_at
        FROM alert_deliveries d WHERE d.alert_id = NEW.alert_id
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER alert_channels_track_alert
AFTER INSERT OR DELETE OR UPDATE OF alert_id, sort_at ON alerts
FOR EACH ROW EXECUTE FUNCTION alert_channels_track_alert();

CREATE FUNCTION alert_channels_truncate() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    TRUNCATE alert_channels;
    RETURN NULL;
END $$;

CREATE TRIGGER alert_channels_truncate AFTER TRUNCATE ON alerts
FOR EACH STATEMENT EXECUTE FUNCTION alert_channels_truncate();

INSERT INTO alert_channels (channel, alert_id, sort_at)
SELECT DISTINCT d.channel, alert.alert_id, alert.sort_at
FROM alerts alert JOIN alert_deliveries d ON d.alert_id = alert.alert_id
"""


def upgrade() -> None:
    op.create_table(
        "alert_channels",
        sa.Column("alert_id", sa.Text, primary_key=True),
        sa.Column("channel", sa.Text, primary_key=True),
        sa.Column("sort_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("alert_channels_listing", "alert_channels", ["channel", "sort_at", "alert_id"])
    # One statement per blank-line-separated block (a prepared statement holds one command).
    for statement in _SQL.strip().split("\n\n"):
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("Tandem migrations only go forward")
