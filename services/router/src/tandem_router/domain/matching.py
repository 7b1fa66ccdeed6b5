"""Lead / contact / event -> account: registered and alias domains first, then fuzzy names."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from rapidfuzz import fuzz, process

from tandem_router.domain.apply import RouterEvent
from tandem_router.domain.model import AccountState
from tandem_shared.accounts import is_personal_domain, registered_domain
from tandem_shared.events import (
    AccountUpserted,
    ActivityLogged,
    ContactUpserted,
    EngagementRecorded,
    HandoffReassignRequested,
    IntentObserved,
    MatchInfo,
    TalFinalized,
    TalRemoved,
)

# Legal-form words that say nothing about which company it is.
_LEGAL_FORMS = frozenset(
    {
        "inc", "incorporated", "corp", "corporation", "co", "company", "ltd", "limited",
        "llc", "llp", "lp", "plc", "gmbh", "mbh", "ag", "kg", "ohg", "ug", "se", "sa", "sas",
        "sarl", "sasu", "srl", "spa", "bv", "nv", "oy", "oyj", "ab", "as", "asa", "aps", "pty",
        "pte", "kk", "nl", "the", "group", "holding", "holdings",
    }
)  # fmt: skip
_NON_WORD = re.compile(r"[^\w]+")
MatchMethod = Literal["alias_domain", "subsidiary_domain"]


@dataclass(frozen=True)
class AccountRef:
    """What matching needs to know about one account."""

    account_key: str
    name: str | None = None
    alias_domains: tuple[str, ...] = ()
    subsidiary_domains: tuple[str, ...] = ()
    crm_ids: tuple[str, ...] = ()

    @classmethod
    def of(cls, state: AccountState) -> AccountRef:
        """Return the reference of an account's state."""
        return cls(
            account_key=state.account_key,
            name=state.name,
            alias_domains=state.alias_domains,
            subsidiary_domains=state.subsidiary_domains,
            crm_ids=tuple(sorted(state.crm_ids.values())),
        )


@dataclass(frozen=True)
class AccountMatch:
    """Where an event belongs: the account key (None: nowhere) and how it was found."""

    account_key: str | None
    info: MatchInfo
    note: str

    @property
    def matched(self) -> bool:
        """Return True when the event matched an account Tandem already knew."""
        return self.info.method != "none"


@dataclass(frozen=True)
class AccountIndex:
    """Lookup tables over every known account (build once per batch, reuse across events)."""

    domains: dict[str, tuple[str, str]] = field(default_factory=dict)  # domain -> (key, kind)
    crm_ids: dict[str, str] = field(default_factory=dict)
    names: dict[str, tuple[str, ...]] = field(default_factory=dict)  # normalized -> keys
    # normalized -> its words sorted: what token_sort_ratio compares, worked out once per name
    # rather than for every name at every fuzzy match.
    sorted_names: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, refs: Iterable[AccountRef]) -> AccountIndex:
        """Index accounts by primary, alias and subsidiary domain, CRM id and normalized name."""
        domains: dict[str, tuple[str, str]] = {}
        crm_ids: dict[str, str] = {}
        names: dict[str, tuple[str, ...]] = {}
        sorted_names: dict[str, str] = {}
        for ref in sorted(refs, key=lambda r: r.account_key):
            for kind, values in (
                ("subsidiary", ref.subsidiary_domains),
                ("alias", ref.alias_domains),
                ("primary", (ref.account_key,)),
            ):
                for value in values:  # primary keys override aliases of other accounts
                    domains[value.lower()] = (ref.account_key, kind)
            crm_ids.update(dict.fromkeys(ref.crm_ids, ref.account_key))
            normalized = normalize_company_name(ref.name) if ref.name else ""
            if normalized:
                names[normalized] = (*names.get(normalized, ()), ref.account_key)
                sorted_names.setdefault(normalized, sorted_words(normalized))
        return cls(domains=domains, crm_ids=crm_ids, names=names, sorted_names=sorted_names)


def sorted_words(normalized: str) -> str:
    """Return a normalized name's words in order: fuzz.ratio over two of them is exactly
    fuzz.token_sort_ratio over the names."""
    return " ".join(sorted(normalized.split()))


def normalize_company_name(name: str) -> str:
    """Return a company name without accents, case, punctuation or trailing legal forms."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    words = _NON_WORD.sub(" ", ascii_name.replace("&", " and ").lower()).split()
    while len(words) > 1 and words[-1] in _LEGAL_FORMS:
        words.pop()
    if len(words) > 1 and words[0] == "the":
        words.pop(0)
    return " ".join(words)


def match_account(
    index: AccountIndex,
    *,
    domains: Iterable[str | None] = (),
    crm_account_id: str | None = None,
    company_name: str | None = None,
    fuzzy_threshold: float,
) -> AccountMatch | None:
    """Return the known account of a CRM id, a domain / email, or a company name, else None."""
    if crm_account_id and crm_account_id in index.crm_ids:
        key = index.crm_ids[crm_account_id]
        info = MatchInfo(method="crm_id", matched_value=crm_account_id)
        return AccountMatch(key, info, f"CRM account {crm_account_id} is {key}")
    for value in domains:
        found = _match_domain(index, value)
        if found is not None:
            return found
    if company_name:
        return _match_name(index, company_name, fuzzy_threshold)
    return None


def locate_account(
    event: RouterEvent, index: AccountIndex, *, fuzzy_threshold: float
) -> AccountMatch:
    """Return where an event belongs: a known account, a new business domain, or nowhere."""
    domains, crm_id, company = _clues(event)
    found = match_account(
        index,
        domains=domains,
        crm_account_id=crm_id,
        company_name=company,
        fuzzy_threshold=fuzzy_threshold,
    )
    if found is not None:
        return found
    for value in domains:
        domain = registered_domain(value)
        if domain and not is_personal_domain(domain):
            info = MatchInfo(method="none", score=0.0, matched_value=domain)
            return AccountMatch(domain, info, f"no known account for {domain}: a new account")
    info = MatchInfo(method="none", score=0.0)
    return AccountMatch(None, info, "no business domain and no company name matched")


@dataclass(frozen=True)
class Clues:
    """What an event offers for matching: business domains, a CRM account id, a company name."""

    domains: tuple[str, ...]  # registered domains, personal mailbox domains left out
    crm_account_id: str | None
    company_name: str | None


def event_clues(event: RouterEvent) -> Clues:
    """Return the normalized clues of an event (what an account store is searched by)."""
    values, crm_id, company = _clues(event)
    domains = [d for d in (registered_domain(v) for v in values) if d and not is_personal_domain(d)]
    return Clues(tuple(dict.fromkeys(domains)), crm_id, company)


def _clues(event: RouterEvent) -> tuple[list[str | None], str | None, str | None]:
    """Return the (domains, CRM account id, company name) an event offers for matching."""
    match event:
        case ContactUpserted():
            return [event.email, event.account_key], event.account_crm_id, event.company_name
        case EngagementRecorded():
            return [event.contact_email, event.account_key], None, event.company_name
        case AccountUpserted():
            return [event.account_key, event.domain], event.crm_id, None
        case ActivityLogged():
            return [event.account_key, event.contact_email], event.account_crm_id, None
        case IntentObserved() | TalFinalized() | TalRemoved() | HandoffReassignRequested():
            return [event.account_key], None, None


def _match_domain(index: AccountIndex, value: str | None) -> AccountMatch | None:
    domain = registered_domain(value)
    if domain is None or is_personal_domain(domain):
        return None
    hit = index.domains.get(domain)
    if hit is None:
        return None
    key, kind = hit
    if kind == "primary":
        return AccountMatch(
            key, MatchInfo(method="domain", matched_value=domain), f"domain {domain}"
        )
    method: MatchMethod = "alias_domain" if kind == "alias" else "subsidiary_domain"
    info = MatchInfo(method=method, matched_value=domain)
    return AccountMatch(key, info, f"{kind} domain {domain} of {key}")


def _match_name(index: AccountIndex, company_name: str, threshold: float) -> AccountMatch | None:
    query = normalize_company_name(company_name)
    if not query or not index.names:
        return None
    # token_sort_ratio over the names, as ratio over their sorted words (sorted once per name).
    best = process.extract(
        sorted_words(query),
        index.sorted_names,
        scorer=fuzz.ratio,
        score_cutoff=threshold * 100,
        limit=2,
    )
    if not best:
        return None
    _, score, name = best[0]
    keys = index.names[name]
    tied = len(best) > 1 and best[1][1] == score
    if len(keys) > 1 or tied:
        return None  # ambiguous: two accounts fit equally well, so neither is a safe match
    info = MatchInfo(method="fuzzy_name", score=round(score / 100, 4), matched_value=name)
    note = f"company name {company_name!r} ~ {name!r} ({score:.0f}/100)"
    return AccountMatch(keys[0], info, note)
