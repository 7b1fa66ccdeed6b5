"""Authentication by API key (Bearer or X-API-Key), rate limiting and the policy check."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from tandem_api_gateway.adapters import key_store
from tandem_api_gateway.api.context import Gateway, GatewayDep
from tandem_api_gateway.api.rate_limit import retry_after_header
from tandem_api_gateway.domain.api_keys import key_id_of, verify_api_key
from tandem_api_gateway.domain.authz import Operation, Principal, is_allowed
from tandem_api_gateway.domain.errors import InvalidApiKey, NotPermitted

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key")

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="tandem"'}


def unauthorized(detail: str) -> HTTPException:
    """Return the 401 every authentication failure answers with."""
    return HTTPException(status_code=401, detail=detail, headers=_CHALLENGE)


async def principal_for_key(gateway: Gateway, presented: str) -> Principal:
    """Return the principal of a presented key; raise a 401 for any unknown or bad key."""
    try:
        key_id = key_id_of(presented)
    except InvalidApiKey as exc:
        raise unauthorized("invalid API key") from exc
    async with gateway.read() as session:
        stored = await key_store.find_key(session, key_id)
    pepper = gateway.settings.pepper
    if stored is None or not verify_api_key(presented, stored_hash=stored.key_hash, pepper=pepper):
        raise unauthorized("invalid API key")
    return Principal(person_id=stored.person_id, role=stored.role)


async def authenticate(
    request: Request,
    gateway: GatewayDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header_key: Annotated[str | None, Security(_header)],
) -> Principal:
    """Return the caller's principal, after the key's rate limit allows the request."""
    presented = bearer.credentials if bearer is not None else header_key
    if not presented:
        raise unauthorized("an API key is required (Authorization: Bearer or X-API-Key)")
    principal = await principal_for_key(gateway, presented)
    assert gateway.limiter is not None
    wait = gateway.limiter.take(key_id_of(presented))
    if wait is not None:
        raise HTTPException(
            status_code=429,
            detail="rate limit exceeded for this API key",
            headers={"Retry-After": retry_after_header(wait)},
        )
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(authenticate)]


def require(principal: Principal, operation: Operation) -> None:
    """Raise NotPermitted (403) when the role may not perform the operation at all."""
    if not is_allowed(principal, operation):
        readable = operation.value.replace("_", " ")
        raise NotPermitted(f"role {principal.role.value} may not {readable}")
