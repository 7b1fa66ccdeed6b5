"""Why a delivery is refused, one exception per HTTP answer the shell gives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tandem_ingest.domain.normalized import ElementError


class IngestError(Exception):
    """Base of every refusal raised by the ingest core."""


class SignatureError(IngestError):
    """The request is not authentically from the vendor (answer 401)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MalformedBodyError(IngestError):
    """The body cannot be parsed at all: not UTF-8, JSON, XML or CSV (answer 400)."""


class SchemaError(IngestError):
    """The body parsed but nothing in it is usable; `errors` carry the field paths (answer 422)."""

    def __init__(self, errors: Sequence[ElementError]) -> None:
        self.errors = tuple(errors)
        summary = "; ".join(f"{'.'.join(map(str, e.loc)) or '<body>'}: {e.message}" for e in errors)
        super().__init__(summary or "no usable element")


class OrganizationNotAllowedError(IngestError):
    """A Salesforce Outbound Message from an organization outside the allow-list (answer 403)."""

    def __init__(self, organization_id: str | None) -> None:
        super().__init__(f"Salesforce organization {organization_id!r} is not allowed")
        self.organization_id = organization_id
