"""Account keys: the registered domain (public-suffix rules, no network at run time)."""

from __future__ import annotations

from functools import lru_cache

import tldextract

# Mailbox providers: an address there says nothing about the employer.
PERSONAL_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "yahoo.co.uk",
        "yahoo.fr",
        "ymail.com",
        "hotmail.com",
        "hotmail.co.uk",
        "hotmail.fr",
        "outlook.com",
        "live.com",
        "msn.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "proton.me",
        "protonmail.com",
        "pm.me",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "mail.com",
        "zoho.com",
        "yandex.com",
        "yandex.ru",
        "mail.ru",
        "qq.com",
        "163.com",
        "126.com",
        "fastmail.com",
        "hey.com",
        "tutanota.com",
        "orange.fr",
        "free.fr",
        "comcast.net",
        "verizon.net",
        "att.net",
    }
)


@lru_cache(maxsize=1)
def _extractor() -> tldextract.TLDExtract:
    # The snapshot bundled with tldextract: no fetch, no cache writes.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def load_public_suffixes() -> None:
    """Parse the bundled public-suffix list now (a service's start), not at its first event."""
    _extractor()("example.com")


def registered_domain(value: str | None) -> str | None:
    """Return the registered domain of a domain, URL or email address, lower-cased."""
    if not value:
        return None
    host = value.strip().lower()
    if "@" in host:
        host = host.rsplit("@", 1)[1]
    return _registered(host)


@lru_cache(maxsize=65_536)
def _registered(host: str) -> str | None:
    # The public-suffix walk costs ~0.1 ms; a burst names the same few thousand hosts again.
    parts = _extractor()(host)
    if not parts.domain or not parts.suffix:
        return None
    return f"{parts.domain}.{parts.suffix}"


def is_personal_domain(domain: str | None) -> bool:
    """Return True for free mailbox domains that never identify an account."""
    return domain is not None and domain in PERSONAL_MAIL_DOMAINS


def account_key(value: str | None) -> str | None:
    """Return the account key for a domain, URL or business email; None for personal mail."""
    domain = registered_domain(value)
    if domain is None or is_personal_domain(domain):
        return None
    return domain
