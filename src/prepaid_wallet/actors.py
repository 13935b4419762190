"""Who runs a command: an :class:`Actor`, an id and the roles it holds.

Every write command takes ``actor`` as an :class:`Actor`, a text (an actor with no roles) or
None (the service's actor). The journal records the actor's id only; the roles are what a
tenant's access policy is checked against (see docs/authorization.md).
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from prepaid_wallet.errors import InvalidInputError
from prepaid_wallet.ids import check_name
from prepaid_wallet.text import MAX_TEXT, check_text

__all__ = ["Actor", "as_actor", "check_roles"]

_ROLES_RULE = "roles must be a set of role names (1-128 ASCII letters, digits or . _ @ + -)"


def check_roles(value: object, field: str = "actor",
                rule: str = _ROLES_RULE) -> frozenset[str]:
    """``value`` (a collection of role names, not a text) as a frozenset; else
    ``InvalidInputError`` naming ``field`` with ``rule``."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidInputError(field, rule, value)
    roles = frozenset(value)
    for role in roles:
        try:
            check_name(role, field)
        except InvalidInputError:
            raise InvalidInputError(field, rule, role) from None
    return roles


def _roles(value: object) -> frozenset[str]:
    return check_roles(value)


@attrs.frozen
class Actor:
    """Who runs a command: ``id`` (a text field, as recorded on journal entries and stored
    versions) and ``roles`` (names, e.g. ``{"cashier"}``; any collection of names is taken
    as a frozenset). A bad id or role raises ``InvalidInputError`` naming ``actor``.

    >>> Actor("mia", {"cashier"}).roles
    frozenset({'cashier'})
    """

    id: str
    roles: frozenset[str] = attrs.field(default=frozenset(), converter=_roles)

    def __attrs_post_init__(self) -> None:
        check_text(self.id, "actor", max_length=MAX_TEXT)

    def holds(self, roles: Iterable[str]) -> bool:
        """Whether the actor holds at least one of ``roles``."""
        return not self.roles.isdisjoint(roles)


def as_actor(value: object, field: str = "actor") -> Actor | None:
    """``value`` as an :class:`Actor`: an ``Actor`` as it is, a text as an actor with no
    roles, None as None; anything else raises ``InvalidInputError`` naming ``field``."""
    if value is None or isinstance(value, Actor):
        return value
    if isinstance(value, str):
        return Actor(check_text(value, field, max_length=MAX_TEXT))
    raise InvalidInputError(field, "must be an Actor, a non-blank text or None", value)
