"""API keys in the database: stored hashed, looked up by their key id."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tandem_api_gateway.adapters.tables import api_keys
from tandem_api_gateway.domain.authz import Role


@dataclass(frozen=True, slots=True)
class StoredKey:
    key_id: str
    key_hash: str
    role: Role
    person_id: str


async def add_key(
    session: AsyncSession,
    *,
    key_id: str,
    key_hash: str,
    role: Role,
    person_id: str,
    label: str = "",
    replace: bool = False,
) -> None:
    """Store a key's hash with its role and person (`replace`: overwrite a seeded key)."""
    stmt = insert(api_keys).values(
        key_id=key_id, key_hash=key_hash, role=role.value, person_id=person_id, label=label
    )
    if replace:
        stmt = stmt.on_conflict_do_update(
            index_elements=["key_id"],
            set_={
                "key_hash": stmt.excluded.key_hash,
                "role": stmt.excluded.role,
                "person_id": stmt.excluded.person_id,
                "label": stmt.excluded.label,
                "revoked_at": None,
            },
        )
    await session.execute(stmt)


async def find_key(session: AsyncSession, key_id: str) -> StoredKey | None:
    """Return the active key with this id, or None."""
    query = sa.select(api_keys).where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
    row = (await session.execute(query)).mappings().first()
    if row is None:
        return None
    return StoredKey(
        key_id=row["key_id"],
        key_hash=row["key_hash"],
        role=Role(row["role"]),
        person_id=row["person_id"],
    )
