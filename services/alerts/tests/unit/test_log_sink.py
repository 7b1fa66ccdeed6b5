"""The log sink's line says who an alert is for and, for a cover, whom they cover for and why."""

from __future__ import annotations

from structlog.testing import capture_logs

from tandem_alerts.adapters.log_sink import LogSink


def test_a_line_names_the_recipient_and_the_alert(make_alert):
    with capture_logs() as lines:
        result = LogSink().send("ava.ae", [make_alert()], digest=False)

    [line] = lines
    assert result.ok
    assert line["event"] == "ALERT for ava.ae: Acme Corp requested a meeting"
    assert line["covering_for"] is None and line["cover_reason"] is None


def test_a_cover_line_says_whom_it_covers_for_and_why(make_alert):
    alert = make_alert(reason="ava.ae owns the account as its AE")

    with capture_logs() as lines:
        LogSink().send("ben.ae", [alert], digest=False, covering_for="ava.ae")

    [line] = lines
    assert line["event"] == (
        "ALERT for ben.ae, covering for ava.ae (quiet hours): Acme Corp requested a meeting"
    )
    assert (line["recipient"], line["covering_for"]) == ("ben.ae", "ava.ae")
    assert line["cover_reason"] == "quiet hours"
    assert line["reason"] == "ava.ae owns the account as its AE"


def test_a_burst_or_digest_logs_one_line_per_alert(make_alert):
    alerts = [make_alert(alert_id=f"al-{i}", title=f"Alert {i}") for i in range(3)]

    with capture_logs() as lines:
        LogSink().send("ava.ae", alerts, digest=True)

    assert [line["alert_id"] for line in lines] == ["al-0", "al-1", "al-2"]
    assert all(line["digest"] for line in lines)
