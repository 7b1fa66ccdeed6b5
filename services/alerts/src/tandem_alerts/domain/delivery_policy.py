"""Delivery outcomes: is a failed send worth retrying, when, and when to give up."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class FailureKind(StrEnum):
    """What a failed send says about trying again."""

    RATE_LIMITED = "rate_limited"  # wait what the server asked, then retry
    TRANSIENT = "transient"  # retry with back-off
    PERMANENT = "permanent"  # retrying cannot help


class Action(StrEnum):
    RETRY = "retry"
    GIVE_UP_PERMANENT = "give_up_permanent"
    GIVE_UP_EXHAUSTED = "give_up_exhausted"


@dataclass(frozen=True, kw_only=True)
class SlackFailure:
    """A failed chat.postMessage, as the I/O shell saw it (no slack_sdk types here)."""

    error: str | None = None  # the Web API `error` code
    status: int | None = None  # the HTTP status
    retry_after: float | None = None  # the Retry-After header, seconds
    timeout: bool = False  # no answer in time, or the connection dropped


@dataclass(frozen=True, kw_only=True)
class SmtpFailure:
    """A failed SMTP send, as the I/O shell saw it (no aiosmtplib types here)."""

    code: int | None = None  # the SMTP reply code, when the server answered
    recipients_refused: bool = False
    timeout: bool = False  # connect or read timeout
    connection_failed: bool = False  # refused, reset or disconnected
    message: str = ""


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently to retry one delivery."""

    # Transient failures give up by age, not by count: an outage of any length up to this is
    # waited out, however many attempts fit in it. Counted from the first attempt.
    give_up_after: float = 24 * 3600.0
    base_delay: float = 2.0  # seconds before the second attempt, before jitter
    max_delay: float = 300.0
    default_rate_limit_wait: float = 30.0  # when a 429 carries no usable Retry-After


DEFAULT_RETRY_POLICY = RetryPolicy()


@dataclass(frozen=True)
class Decision:
    """What to do after a failed attempt."""

    action: Action
    reason: str
    delay_seconds: float = 0.0

    @property
    def permanent(self) -> bool:
        """Return True when the failure is the destination's or the message's, not the weather's."""
        return self.action is Action.GIVE_UP_PERMANENT


RATE_LIMITED_REASON: Final = "rate limited"  # how a 429's retry reads in the attempt log
RATE_LIMIT_ERRORS: Final = frozenset({"ratelimited", "rate_limited"})
TRANSIENT_SLACK_ERRORS: Final = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
PERMANENT_SLACK_ERRORS: Final = frozenset(
    {
        "channel_not_found",
        "channel_is_archived",
        "not_in_channel",
        "is_archived",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "missing_scope",
        "no_permission",
        "user_not_found",
        "user_disabled",
        "cannot_dm_bot",
        "restricted_action",
        "action_prohibited",
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_too_long",
        "msg_blocks_too_long",
        "no_text",
        "too_many_attachments",
        "invalid_arguments",
        "invalid_payload",
    }
)


def classify_slack(failure: SlackFailure) -> FailureKind:
    """Classify a failed Slack call; unknown method errors are permanent (Slack is consistent)."""
    if failure.status == 429 or failure.error in RATE_LIMIT_ERRORS:
        return FailureKind.RATE_LIMITED
    if failure.timeout or failure.error in TRANSIENT_SLACK_ERRORS:
        return FailureKind.TRANSIENT
    if failure.status is not None and failure.status >= 500:
        return FailureKind.TRANSIENT
    return FailureKind.PERMANENT


def classify_smtp(failure: SmtpFailure) -> FailureKind:
    """Classify a failed SMTP send: 4xx and network trouble are transient, 5xx is permanent."""
    if failure.code is not None and 400 <= failure.code < 500:
        return FailureKind.TRANSIENT  # includes greylisting of a refused recipient
    if failure.recipients_refused:
        return FailureKind.PERMANENT
    if failure.code is not None and failure.code >= 500:
        return FailureKind.PERMANENT
    # A timeout, a dropped connection or an error without a reply code: the server never decided.
    return FailureKind.TRANSIENT


def decide(
    kind: FailureKind,
    *,
    attempts: int,
    age_seconds: float = 0.0,
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> Decision:
    """Decide what follows the `attempts`-th attempt of a delivery, `age_seconds` after its first.

    A 429 is Slack asking us to wait, not a failure: it is always retried after Retry-After and
    never brings a give-up closer. Transient failures are retried with capped back-off until the
    delivery has been failing for `give_up_after`; permanent ones give up at once.
    """
    if kind is FailureKind.PERMANENT:
        return Decision(Action.GIVE_UP_PERMANENT, "permanent failure")
    if kind is FailureKind.RATE_LIMITED:
        wait = retry_after if retry_after is not None and retry_after >= 0 else None
        return Decision(
            Action.RETRY,
            RATE_LIMITED_REASON,
            wait if wait is not None else policy.default_rate_limit_wait,
        )
    if age_seconds >= policy.give_up_after:
        return Decision(
            Action.GIVE_UP_EXHAUSTED,
            f"gave up after {_duration(age_seconds)} of failures ({attempts} attempts)",
        )
    return Decision(Action.RETRY, "transient failure", backoff(attempts, policy=policy, rand=rand))


def decide_slack(
    failure: SlackFailure,
    *,
    attempts: int,
    age_seconds: float = 0.0,
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    rand: Callable[[], float] = random.random,
) -> Decision:
    """Classify a Slack failure and decide the next step."""
    decision = decide(
        classify_slack(failure),
        attempts=attempts,
        age_seconds=age_seconds,
        policy=policy,
        retry_after=failure.retry_after,
        rand=rand,
    )
    return _with_cause(decision, failure.error or _status_text(failure.status, failure.timeout))


def decide_smtp(
    failure: SmtpFailure,
    *,
    attempts: int,
    age_seconds: float = 0.0,
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    rand: Callable[[], float] = random.random,
) -> Decision:
    """Classify an SMTP failure and decide the next step."""
    decision = decide(
        classify_smtp(failure), attempts=attempts, age_seconds=age_seconds, policy=policy, rand=rand
    )
    cause = f"smtp {failure.code}" if failure.code is not None else _smtp_cause(failure)
    return _with_cause(decision, f"{cause} {failure.message}".strip())


def backoff(attempts: int, *, policy: RetryPolicy, rand: Callable[[], float]) -> float:
    """Return an exponential delay with "equal jitter": half fixed, half random, capped."""
    # Retrying by age allows hundreds of attempts: bound the exponent before 2.0 ** n overflows.
    ceiling = min(policy.max_delay, policy.base_delay * 2.0 ** min(max(0, attempts - 1), 64))
    return ceiling / 2 + rand() * ceiling / 2


def _with_cause(decision: Decision, cause: str) -> Decision:
    return Decision(decision.action, f"{decision.reason}: {cause}", decision.delay_seconds)


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _status_text(status: int | None, timeout: bool) -> str:
    if timeout:
        return "timeout"
    return f"http {status}" if status is not None else "unknown error"


def _smtp_cause(failure: SmtpFailure) -> str:
    if failure.timeout:
        return "timeout"
    if failure.recipients_refused:
        return "recipients refused"
    return "connection failed" if failure.connection_failed else "smtp error"
