"""Domain errors of the gateway; the HTTP shell maps each class to one status code."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a gateway decision raises on purpose."""


class InvalidInput(DomainError):
    """The request is well-formed but its values break a rule (HTTP 422)."""


class NotPermitted(DomainError):
    """The caller's role may not perform this operation (HTTP 403)."""


class InvalidTransition(DomainError):
    """The operation does not apply to the object's current state (HTTP 409)."""


class InvalidCursor(DomainError):
    """A pagination cursor is garbage, tampered with or meant for another listing (HTTP 400)."""


class InvalidApiKey(DomainError):
    """A presented API key is malformed (HTTP 401, never revealing which part was wrong)."""
