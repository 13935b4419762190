"""The parts of the public facade, :class:`~prepaid_wallet.service.WalletService`.

The facade is one class made of one part per capability family, each in a module of this
package: :mod:`~prepaid_wallet.facade.wallets`, :mod:`~prepaid_wallet.facade.payments`,
:mod:`~prepaid_wallet.facade.transfers`, :mod:`~prepaid_wallet.facade.configuration`,
:mod:`~prepaid_wallet.facade.automation`, :mod:`~prepaid_wallet.facade.reading` and
:mod:`~prepaid_wallet.facade.api_keys` (which calls functions, not commands). A part
holds signatures and docstrings only: each write method builds a command record
(:mod:`prepaid_wallet.app.commands`) and runs it through the pipeline (:meth:`Facade._run`);
each read calls one query (:mod:`prepaid_wallet.app.queries`), each job one function of its
handler module, imported when the method is first called. ``tests/test_layers.py`` checks that
every method of every part is such a delegation.

Every write method's ``actor`` is an :class:`~prepaid_wallet.actors.Actor` (an id and roles), a
text (an actor with no roles) or None (the service's actor); the journal records its id, and
its roles are checked against the tenant's access policy (docs/authorization.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from prepaid_wallet.app.pipeline import run

if TYPE_CHECKING:
    from prepaid_wallet.app.environment import Environment
    from prepaid_wallet.app.pipeline import Command

__all__ = ["Facade"]

_R = TypeVar("_R")


class Facade:
    """What every part of the facade shares: the environment the service was built with (the
    store, clock, ids, scope and gateway) and the pipeline that runs its commands."""

    _env: Environment

    def _run(self, command: Command[_R]) -> _R:
        """Run a write command through the pipeline (:mod:`prepaid_wallet.app.pipeline`)."""
        return run(self._env, command)
