"""A seeded fake payment gateway for simulation tests of automatic top-ups.

:class:`FakeGateway` implements :class:`prepaid_wallet.rules.topup.PaymentGateway`. For each new
idempotency key it draws what happens from the method's :class:`Behaviour`:

* ``succeed`` -- charged, ``SUCCEEDED`` returned;
* ``hard_decline`` / ``soft_decline`` -- nothing charged, the decline returned;
* ``timeout_before`` -- the request is lost before the provider sees it: ``UNKNOWN`` returned,
  nothing charged, and ``lookup`` keeps answering ``UNKNOWN``; the next ``charge`` under the same
  key is handled as a fresh request (which is never lost again, so a key is lost at most once);
* ``timeout_after`` -- charged, but the answer is lost: ``UNKNOWN`` returned; ``lookup`` answers
  ``UNKNOWN`` for ``latency`` calls (drawn from ``0..max_latency``), then ``SUCCEEDED``.

A ``charge`` under a key the provider already holds never charges again: it answers what
``lookup`` would. :meth:`FakeGateway.redeliver` plays a repeated or late report (a webhook) of
some final outcome. Every real charge is recorded in :attr:`FakeGateway.charges`. Everything is
drawn from the ``random.Random`` given, so a seed replays the same run.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

import attrs

from prepaid_wallet.money import Money
from prepaid_wallet.rules.topup import ChargeOutcome, ChargeStatus

__all__ = ["Behaviour", "FakeGateway", "KeyReusedError", "RealCharge"]

_KINDS = ("succeed", "hard_decline", "soft_decline", "timeout_before", "timeout_after")


@attrs.frozen
class Behaviour:
    """Relative weights of what a charge does (not all zero), the most ``lookup`` calls a
    charge that timed out after charging stays unknown for, and the chance that
    :meth:`FakeGateway.redeliver` re-delivers an outcome."""

    succeed: float = 1.0
    hard_decline: float = 0.0
    soft_decline: float = 0.0
    timeout_before: float = 0.0
    timeout_after: float = 0.0
    max_latency: int = 0

    def __attrs_post_init__(self) -> None:
        weights = [getattr(self, kind) for kind in _KINDS]
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError("weights must be non-negative and not all zero")

    def draw(self, rng: random.Random, *, allow_loss: bool) -> str:
        """One kind of charge, by weight (``timeout_before`` left out unless ``allow_loss``)."""
        kinds = [k for k in _KINDS if allow_loss or k != "timeout_before"]
        weights = [getattr(self, kind) for kind in kinds]
        if sum(weights) <= 0:
            return "succeed"
        return rng.choices(kinds, weights)[0]


@attrs.frozen
class RealCharge:
    """Money that really moved: under ``idempotency_key``, on ``method``, of ``amount``."""

    idempotency_key: str
    method: str
    amount: Money


class KeyReusedError(AssertionError):
    """A key was sent again with another method or amount (the caller broke the contract)."""


@attrs.define
class _Request:
    method: str
    amount: Money
    final: ChargeOutcome
    latency: int  # lookups still answered UNKNOWN


class FakeGateway:
    """A deterministic fake :class:`~prepaid_wallet.rules.topup.PaymentGateway`."""

    def __init__(
        self,
        rng: random.Random,
        behaviours: Mapping[str, Behaviour],
        *,
        redelivery: float = 0.0,
    ) -> None:
        self._rng = rng
        self._behaviours = dict(behaviours)
        self._redelivery = redelivery
        self._requests: dict[str, _Request] = {}
        self._lost: dict[str, tuple[str, Money]] = {}
        self.charges: list[RealCharge] = []
        self.calls: list[tuple[str, str]] = []  # ("charge" | "lookup", key), in order

    # -- the protocol ----------------------------------------------------------------------------

    def charge(self, *, method: str, amount: Money, idempotency_key: str) -> ChargeOutcome:
        self.calls.append(("charge", idempotency_key))
        known = self._requests.get(idempotency_key)
        if known is not None:
            if (known.method, known.amount) != (method, amount):
                raise KeyReusedError(idempotency_key)
            return self._current(known)
        lost = self._lost.get(idempotency_key)
        if lost is not None and lost != (method, amount):
            raise KeyReusedError(idempotency_key)
        behaviour = self._behaviours[method]
        kind = behaviour.draw(self._rng, allow_loss=lost is None)
        if kind == "timeout_before":
            self._lost[idempotency_key] = (method, amount)
            return ChargeOutcome(ChargeStatus.UNKNOWN, message="timeout")
        if kind in ("succeed", "timeout_after"):
            self._record_charge(idempotency_key, method, amount)
            final = ChargeOutcome(ChargeStatus.SUCCEEDED, reference=f"ch_{len(self.charges)}")
        elif kind == "hard_decline":
            final = ChargeOutcome(ChargeStatus.DECLINED_HARD, message="card closed")
        else:
            final = ChargeOutcome(ChargeStatus.DECLINED_SOFT, message="insufficient funds")
        latency = 0
        if kind == "timeout_after":
            latency = self._rng.randint(0, behaviour.max_latency)
        request = _Request(method, amount, final, latency)
        self._requests[idempotency_key] = request
        if kind == "timeout_after":
            return ChargeOutcome(ChargeStatus.UNKNOWN, message="timeout")
        return final

    def lookup(self, *, idempotency_key: str) -> ChargeOutcome:
        self.calls.append(("lookup", idempotency_key))
        request = self._requests.get(idempotency_key)
        if request is None:
            return ChargeOutcome(ChargeStatus.UNKNOWN, message="no charge under this key")
        if request.latency > 0:
            request.latency -= 1
            return ChargeOutcome(ChargeStatus.UNKNOWN, message="processing")
        return request.final

    # -- simulation helpers ----------------------------------------------------------------------

    def redeliver(self) -> tuple[str, ChargeOutcome] | None:
        """With the chance given at construction, a repeated or late report: the final outcome
        of a key the provider holds (possibly before ``lookup`` would tell it); else None."""
        if not self._requests or self._rng.random() >= self._redelivery:
            return None
        key = self._rng.choice(sorted(self._requests))
        return key, self._requests[key].final

    def final_outcome(self, idempotency_key: str) -> ChargeOutcome | None:
        """What really became of the key (None: the provider never received it)."""
        request = self._requests.get(idempotency_key)
        return None if request is None else request.final

    def _current(self, request: _Request) -> ChargeOutcome:
        if request.latency > 0:
            return ChargeOutcome(ChargeStatus.UNKNOWN, message="processing")
        return request.final

    def _record_charge(self, key: str, method: str, amount: Money) -> None:
        if any(charge.idempotency_key == key for charge in self.charges):
            raise AssertionError(f"charged twice under {key!r}")
        self.charges.append(RealCharge(key, method, amount))
