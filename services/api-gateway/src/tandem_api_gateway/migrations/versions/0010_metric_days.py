"""Per-day metric aggregates, kept by triggers in the transaction that changes a handoff, a deal
or an account, and filled from the rows already there.

A day is a UTC date. `handoff_days` holds, per day, tier, signal and team, the handoffs made
that day (how many, touched, met, resolved) and the SLA verdicts reached that day (met,
breached, breached without a touch); `deal_days` holds, per day, tier and TAL membership (the
account's, or its survivor's), the deals opened and closed that day with their exact amounts.
What each deal was counted as is kept in `deal_counts`, so a change of an account (tier, TAL,
merge) takes back exactly what its deals had added.

Revision ID: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_COUNT = {"nullable": False, "server_default": "0"}
_DAY = "((({at}) AT TIME ZONE 'UTC')::date)"

_HANDOFF = f"""
CREATE FUNCTION handoff_days_add(h handoffs, sign integer) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    -- handoff_facts: only handoffs known well enough to measure.
    IF h.tier IS NULL OR h.signal IS NULL THEN
        RETURN;
    END IF;
    IF h.handed_off_at IS NOT NULL THEN
        INSERT INTO handoff_days AS d (day, tier, signal, team, handoffs, touched, met, resolved)
        VALUES ({_DAY.format(at="h.handed_off_at")}, h.tier, h.signal, h.team, sign,
                CASE WHEN h.touch_seconds IS NOT NULL THEN sign ELSE 0 END,
                CASE WHEN h.sla_outcome = 'met' THEN sign ELSE 0 END,
                CASE WHEN h.sla_outcome IN ('met', 'breached') THEN sign ELSE 0 END)
        ON CONFLICT (day, tier, signal, team) DO UPDATE SET
            handoffs = d.handoffs + excluded.handoffs, touched = d.touched + excluded.touched,
            met = d.met + excluded.met, resolved = d.resolved + excluded.resolved;
    END IF;
    IF h.outcome_at IS NOT NULL AND h.sla_outcome IN ('met', 'breached') THEN
        INSERT INTO handoff_days AS d (day, tier, signal, team, verdicts_met, verdicts_breached,
                                       open_breaches)
        VALUES ({_DAY.format(at="h.outcome_at")}, h.tier, h.signal, h.team,
                CASE WHEN h.sla_outcome = 'met' THEN sign ELSE 0 END,
                CASE WHEN h.sla_outcome = 'breached' THEN sign ELSE 0 END,
                CASE WHEN h.sla_outcome = 'breached' AND h.first_touch_at IS NULL
                     THEN sign ELSE 0 END)
        ON CONFLICT (day, tier, signal, team) DO UPDATE SET
            verdicts_met = d.verdicts_met + excluded.verdicts_met,
            verdicts_breached = d.verdicts_breached + excluded.verdicts_breached,
            open_breaches = d.open_breaches + excluded.open_breaches;
    END IF;
END $$;

CREATE FUNCTION handoff_days_track() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM handoff_days_add(OLD, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM handoff_days_add(NEW, 1);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER handoff_days_track AFTER INSERT OR UPDATE OR DELETE ON handoffs
FOR EACH ROW EXECUTE FUNCTION handoff_days_track();
"""

_RECOUNT = f"""
-- Every aggregate counted afresh from the rows, at once: the migration's backfill, and what
-- the incremental counts are checked against (docs/runbook.md).
CREATE FUNCTION metric_days_recount() RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    TRUNCATE handoff_days, deal_counts, deal_days;
    INSERT INTO handoff_days
    SELECT day, tier, signal, team, sum(handoffs), sum(touched), sum(met), sum(resolved),
           sum(verdicts_met), sum(verdicts_breached), sum(open_breaches)
    FROM (
        SELECT {_DAY.format(at="handed_off_at")} AS day, tier, signal, team,
               count(*) AS handoffs, count(touch_seconds) AS touched,
               count(*) FILTER (WHERE sla_outcome = 'met') AS met,
               count(*) FILTER (WHERE sla_outcome IN ('met', 'breached')) AS resolved,
               0 AS verdicts_met, 0 AS verdicts_breached, 0 AS open_breaches
        FROM handoffs
        WHERE tier IS NOT NULL AND signal IS NOT NULL AND handed_off_at IS NOT NULL
        GROUP BY 1, 2, 3, 4
        UNION ALL
        SELECT {_DAY.format(at="outcome_at")}, tier, signal, team, 0, 0, 0, 0,
               count(*) FILTER (WHERE sla_outcome = 'met'),
               count(*) FILTER (WHERE sla_outcome = 'breached'),
               count(*) FILTER (WHERE sla_outcome = 'breached' AND first_touch_at IS NULL)
        FROM handoffs
        WHERE tier IS NOT NULL AND signal IS NOT NULL AND outcome_at IS NOT NULL
          AND sla_outcome IN ('met', 'breached')
        GROUP BY 1, 2, 3, 4
    ) parts
    GROUP BY 1, 2, 3, 4;
    INSERT INTO deal_counts SELECT * FROM deal_counted;
    INSERT INTO deal_days (day, tier, in_tal, opened, opened_amount, closed, won, won_amount)
    SELECT day, tier, in_tal, sum(opened), sum(opened_amount), sum(closed), sum(won),
           sum(won_amount)
    FROM (
        SELECT opened_on AS day, tier, in_tal, count(*) AS opened, sum(amount) AS opened_amount,
               0 AS closed, 0 AS won, 0 AS won_amount
        FROM deal_counts WHERE opened_on IS NOT NULL GROUP BY 1, 2, 3
        UNION ALL
        SELECT closed_on, tier, in_tal, 0, 0, count(*), count(*) FILTER (WHERE won),
               coalesce(sum(amount) FILTER (WHERE won), 0)
        FROM deal_counts WHERE closed_on IS NOT NULL GROUP BY 1, 2, 3
    ) parts
    GROUP BY 1, 2, 3;
END $$;
"""

_DEAL = f"""
-- What a deal counts as (deal_facts: merged-away and deleted deals left out; the tier and TAL
-- membership of the account's survivor, else of the account, else tier 3 outside the TAL).
CREATE VIEW deal_counted AS
SELECT deal.deal_id, coalesce(survivor.tier, account.tier, '3') AS tier,
       coalesce(survivor.in_tal, account.in_tal, false) AS in_tal,
       CASE WHEN NOT deal.is_closed THEN {_DAY.format(at="deal.created_at")} END AS opened_on,
       CASE WHEN deal.is_closed THEN {_DAY.format(at="deal.closed_at")} END AS closed_on,
       deal.is_won AS won, coalesce(deal.amount, 0)::numeric AS amount
FROM deals deal
LEFT JOIN accounts account ON account.account_key = deal.account_key
LEFT JOIN accounts survivor ON survivor.account_key = account.merged_into
WHERE deal.merged_into IS NULL AND deal.deleted_at IS NULL;

CREATE FUNCTION deal_days_add(c deal_counts, sign integer) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF c.opened_on IS NOT NULL THEN
        INSERT INTO deal_days AS d (day, tier, in_tal, opened, opened_amount)
        VALUES (c.opened_on, c.tier, c.in_tal, sign, sign * c.amount)
        ON CONFLICT (day, tier, in_tal) DO UPDATE SET
            opened = d.opened + excluded.opened,
            opened_amount = d.opened_amount + excluded.opened_amount;
    END IF;
    IF c.closed_on IS NOT NULL THEN
        INSERT INTO deal_days AS d (day, tier, in_tal, closed, won, won_amount)
        VALUES (c.closed_on, c.tier, c.in_tal, sign, CASE WHEN c.won THEN sign ELSE 0 END,
                CASE WHEN c.won THEN sign * c.amount ELSE 0 END)
        ON CONFLICT (day, tier, in_tal) DO UPDATE SET
            closed = d.closed + excluded.closed, won = d.won + excluded.won,
            won_amount = d.won_amount + excluded.won_amount;
    END IF;
END $$;

-- Take back what the deal was counted as, then count it as it is now.
CREATE FUNCTION deal_days_recount(id text) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    was deal_counts;
BEGIN
    DELETE FROM deal_counts WHERE deal_id = id RETURNING * INTO was;
    IF FOUND THEN
        PERFORM deal_days_add(was, -1);
    END IF;
    INSERT INTO deal_counts SELECT * FROM deal_counted WHERE deal_id = id
    RETURNING * INTO was;
    IF FOUND THEN
        PERFORM deal_days_add(was, 1);
    END IF;
END $$;

CREATE FUNCTION deal_days_track() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.deal_id <> NEW.deal_id THEN
        PERFORM deal_days_recount(OLD.deal_id);
    END IF;
    PERFORM deal_days_recount(CASE WHEN TG_OP = 'DELETE' THEN OLD.deal_id ELSE NEW.deal_id END);
    RETURN NULL;
END $$;

CREATE TRIGGER deal_days_track AFTER INSERT OR UPDATE OR DELETE ON deals
FOR EACH ROW EXECUTE FUNCTION deal_days_track();

-- An account's tier, TAL membership or merge decides how the deals at it, and at the accounts
-- merged into it, are counted.
CREATE FUNCTION deal_days_track_account() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    keys text[];
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.tier IS NOT DISTINCT FROM NEW.tier
       AND OLD.in_tal IS NOT DISTINCT FROM NEW.in_tal
       AND OLD.merged_into IS NOT DISTINCT FROM NEW.merged_into
       AND OLD.account_key = NEW.account_key THEN
        RETURN NULL;
    END IF;
    keys := CASE TG_OP WHEN 'INSERT' THEN ARRAY[NEW.account_key]
                       WHEN 'DELETE' THEN ARRAY[OLD.account_key]
                       ELSE ARRAY[OLD.account_key, NEW.account_key] END;
    PERFORM deal_days_recount(deal.deal_id)
    FROM deals deal
    WHERE deal.account_key = ANY(keys)
       OR deal.account_key IN (
           SELECT merged.account_key FROM accounts merged WHERE merged.merged_into = ANY(keys));
    RETURN NULL;
END $$;

CREATE TRIGGER deal_days_track_account AFTER INSERT OR UPDATE OR DELETE ON accounts
FOR EACH ROW EXECUTE FUNCTION deal_days_track_account();
"""


def upgrade() -> None:
    day, text = sa.Column("day", sa.Date, primary_key=True), sa.Text
    op.create_table(
        "handoff_days",
        day,
        sa.Column("tier", text, primary_key=True),
        sa.Column("signal", text, primary_key=True),
        sa.Column("team", text, primary_key=True),
        *(
            sa.Column(name, sa.Integer, **_COUNT)
            for name in (
                *("handoffs", "touched", "met", "resolved"),
                *("verdicts_met", "verdicts_breached", "open_breaches"),
            )
        ),
    )
    op.create_table(
        "deal_counts",
        sa.Column("deal_id", text, primary_key=True),
        sa.Column("tier", text, nullable=False),
        sa.Column("in_tal", sa.Boolean, nullable=False),
        sa.Column("opened_on", sa.Date),
        sa.Column("closed_on", sa.Date),
        sa.Column("won", sa.Boolean, nullable=False),
        sa.Column("amount", sa.Numeric, nullable=False),
    )
    op.create_table(
        "deal_days",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("tier", text, primary_key=True),
        sa.Column("in_tal", sa.Boolean, primary_key=True),
        *(sa.Column(name, sa.Integer, **_COUNT) for name in ("opened", "closed", "won")),
        *(sa.Column(name, sa.Numeric, **_COUNT) for name in ("opened_amount", "won_amount")),
    )
    # The rows by handoff time: a period's partial days at its edges, and its touch times.
    op.create_index(
        "handoffs_handed_off_at",
        "handoffs",
        ["handed_off_at"],
        postgresql_include=["tier", "signal", "team", "sla_outcome", "touch_seconds"],
        postgresql_where=sa.text("tier IS NOT NULL AND signal IS NOT NULL"),
    )
    # Percentiles read the period's touch times through handoffs_handed_off_at: the index in
    # (tier, touch time) order of 0008 is no longer read.
    op.drop_index("handoffs_touch", "handoffs")
    op.create_index("deals_account_key", "deals", ["account_key"])
    for column in ("created_at", "closed_at"):
        op.create_index(f"deals_{column}", "deals", [column])
    # One statement per blank-line-separated block (a prepared statement holds one command).
    for statement in f"{_HANDOFF}\n{_DEAL}\n{_RECOUNT}".strip().split("\n\n"):
        op.execute(statement)
    op.execute("SELECT metric_days_recount()")  # the rows already there


def downgrade() -> None:
    raise NotImplementedError("Tandem migrations only go forward")
