"""The company-name index fuzzy matching searches, kept between events and rebuilt by difference.

Matching by name needs every named account. They are still read for every event that falls back
to names (one row of two arrays, decoded by asyncpg), so an event sees exactly the names it did
before; only the index over them is kept, and just the accounts whose name changed are indexed
again (normalizing thousands of names per event was most of a routed event's time).
"""

from __future__ import annotations

from tandem_router.domain.matching import AccountIndex, normalize_company_name, sorted_words


class NameIndex:
    """The AccountIndex of (account key, name) pairs, as AccountIndex.build makes it."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}  # account key -> name
        self._normalized: dict[str, str] = {}  # account key -> its normalized name, when any
        self._keys: dict[str, tuple[str, ...]] = {}  # normalized name -> account keys, sorted
        self._sorted: dict[str, str] = {}  # normalized name -> its words sorted
        self._domains: dict[str, tuple[str, str]] = {}

    def index(self, names: dict[str, str]) -> AccountIndex:
        """Return the index of exactly these accounts (key -> name), updating the kept one."""
        if names != self._names:
            for key in self._names.keys() - names.keys():
                self._forget(key)
            for key, name in names.items():
                if self._names.get(key) != name:
                    self._forget(key)
                    self._add(key, name)
        # Shared, not copied: AccountIndex only reads its tables.
        return AccountIndex(
            domains=self._domains, crm_ids={}, names=self._keys, sorted_names=self._sorted
        )

    def _add(self, key: str, name: str) -> None:
        self._names[key] = name
        self._domains[key.lower()] = (key, "primary")
        normalized = normalize_company_name(name) if name else ""
        if normalized:
            self._normalized[key] = normalized
            self._keys[normalized] = tuple(sorted((*self._keys.get(normalized, ()), key)))
            if normalized not in self._sorted:
                self._sorted[normalized] = sorted_words(normalized)

    def _forget(self, key: str) -> None:
        if self._names.pop(key, None) is None:
            return
        self._domains.pop(key.lower(), None)
        normalized = self._normalized.pop(key, None)
        if normalized is not None:
            keys = tuple(k for k in self._keys[normalized] if k != key)
            if keys:
                self._keys[normalized] = keys
            else:
                del self._keys[normalized]
                del self._sorted[normalized]
