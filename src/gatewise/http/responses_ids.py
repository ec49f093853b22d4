"""Ids of responses and their items, and the owner key that scopes them.

An item id embeds its response's random token: ``msg_<token><index>``, and
the response is ``resp_<token>``. So ``item_reference`` resolves with one
primary-key lookup of the response (no items table, one insert per response).
Clients treat ids as opaque; only this module knows their shape.
"""

from __future__ import annotations

import os

from gatewise.http.asgi import HTTPRequest

_TOKEN_HEX = 48
RESPONSE_PREFIX = "resp_"
ANONYMOUS = "anonymous"

# Item type -> id prefix (OpenAI's own prefixes where it has them).
ITEM_PREFIXES = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "reasoning": "rs",
}


class ResponseIds:
    """The ids of one response and of the items it creates (inputs first, then outputs)."""

    __slots__ = ("_next", "response_id", "token")

    def __init__(self, token: str | None = None) -> None:
        self.token = token or os.urandom(_TOKEN_HEX // 2).hex()
        self.response_id = RESPONSE_PREFIX + self.token
        self._next = 0

    def item(self, item_type: str) -> str:
        index = self._next
        self._next += 1
        return f"{ITEM_PREFIXES.get(item_type, 'item')}_{self.token}{index:x}"


def response_id_of_item(item_id: str) -> str | None:
    """The id of the response that created the item ``item_id``, if it is one of ours."""
    _, sep, rest = item_id.partition("_")
    if not sep or len(rest) <= _TOKEN_HEX:
        return None
    token = rest[:_TOKEN_HEX]
    try:
        int(token, 16), int(rest[_TOKEN_HEX:], 16)
    except ValueError:
        return None
    return RESPONSE_PREFIX + token


def owner_key(request: HTTPRequest) -> str:
    """Whose stored responses a request may see: the authenticated caller's owner.

    That is the app or user behind a gateway key (a rotated key keeps its
    conversations), an OIDC subject, or for an anonymous caller of an open
    gateway the SHA-256 of whatever credential it presented. Owners of
    different tenants never collide: app, user and OIDC owners carry ids.
    """
    principal = request.principal
    if principal is not None:
        return principal.owner
    return ANONYMOUS
