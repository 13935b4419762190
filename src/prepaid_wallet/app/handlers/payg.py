"""Pay-as-you-go time credit: the handlers of the contract's commands and the job that expires
upgrades whose window has ended.

Every handler works on the locked wallet through a :class:`_Books`, which keeps the contract,
the payments and the upgrade the command changes, writes one journal entry per movement of
money (``top_up`` for money in, ``time`` for money turned into time, ``time_return`` back,
``downpayment``) with its on-time line, and at the end stores everything and issues the device's
tokens for the new service end. An upgrade whose window has ended is expired first by any
command on its contract (and by the job), so a payment at or after the deadline is never held
toward it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs

from prepaid_wallet import wallet as _w
from prepaid_wallet.app.checks import check_currency
from prepaid_wallet.app.commands.payg import (
    CallUpgrade,
    ConfirmUpgradeInstalled,
    OpenContract,
    PaygPay,
    ReconvertPayments,
    RecordConversion,
    ReportDevice,
    UnlinkConversionPayment,
)
from prepaid_wallet.app.environment import Environment
from prepaid_wallet.app.outbox import (
    UPGRADE_CALLED,
    UPGRADE_EXPIRED,
    UPGRADE_INSTALLED,
    UPGRADE_PAID,
    emit,
    instant_text,
    money_data,
)
from prepaid_wallet.app.payg import (
    CONTRACTS,
    CONVERSIONS,
    DEVICES,
    ON_TIME,
    PAYMENTS,
    UPGRADES,
    conversion_of,
    due_upgrades,
    find_contract,
    payment_key,
    payment_of,
    payment_taken,
)
from prepaid_wallet.app.pipeline import Context, not_before
from prepaid_wallet.app.tenant_rules import WITH_LOCKS
from prepaid_wallet.errors import (
    ContractNotFoundError,
    ContractStateError,
    DownpaymentNotCoveredError,
    InvalidInputError,
    PaymentStateError,
)
from prepaid_wallet.ledger import EntryKind, downpayments_account, service_account
from prepaid_wallet.money import Money
from prepaid_wallet.rules.payg import (
    UPGRADE_WINDOW,
    Contract,
    ContractState,
    Conversion,
    OnTime,
    OnTimeKind,
    PaygDevice,
    PaygOutcome,
    PaygPayment,
    PaymentStatus,
    Upgrade,
    UpgradeStatus,
    check_eligible,
    grant,
    performance,
    remove,
    revalue,
    revalued,
    seconds_for,
)
from prepaid_wallet.rules.payg_tokens import Token, device_key, issue, register
from prepaid_wallet.wallet import Wallet

__all__ = [
    "call_upgrade",
    "confirm_upgrade_installed",
    "expire_upgrades",
    "open_contract",
    "pay",
    "reconvert_payments",
    "record_conversion",
    "report_device",
    "unlink_conversion_payment",
]

_BATCH = 100
_ZERO = timedelta(0)

#: The event each status of an upgrade writes when the upgrade reaches it.
_UPGRADE_EVENTS = {
    UpgradeStatus.PAY_UPGRADE_DOWNPAYMENT: UPGRADE_CALLED,
    UpgradeStatus.INSTALL_COLLECT_UPGRADE: UPGRADE_PAID,
    UpgradeStatus.INSTALLED: UPGRADE_INSTALLED,
    UpgradeStatus.EXPIRED: UPGRADE_EXPIRED,
}


class _Books:
    """What one command changes on one contract, written when it :meth:`finish` es."""

    def __init__(self, ctx: Context, wallet: Wallet, contract: Contract) -> None:
        self.ctx = ctx
        self.at = ctx.at.astimezone(UTC)
        self.wallet = wallet
        self.contract = contract
        self.first_end = contract.service_end
        self.upgrade: Upgrade | None = None
        self.payments: dict[str, PaygPayment] = {}
        self.lines: list[OnTime] = []
        self.others: list[Conversion] = []

    @classmethod
    def of(cls, ctx: Context, wallet_id: str) -> _Books:
        """The books of the locked wallet's contract (``ContractNotFoundError`` without one),
        with a waiting upgrade whose window has ended expired first."""
        wallet = ctx.wallet(wallet_id)
        contract = find_contract(ctx.uow, wallet.id)
        if contract is None:
            raise ContractNotFoundError(wallet.id)
        books = cls(ctx, wallet, contract)
        if contract.upgrade_id is not None:
            books.upgrade = ctx.uow.get_record(UPGRADES, contract.upgrade_id)
        books.expire_if_late()
        return books

    @property
    def zero(self) -> Money:
        return Money.zero(self.wallet.currency)

    # -- money and time ---------------------------------------------------------------------

    def entry(self, kind: EntryKind, amount: Money, account: str, **extra: str) -> str:
        """One entry moving ``amount`` from the open balance to ``account`` (negative: back)."""
        change = _w.settle(self.wallet, kind, amount, account, self.ctx.info(**extra))
        self.ctx.record(change)
        self.wallet = change.wallet(self.wallet.id)
        return change.entry.id

    def money_in(self, amount: Money, method: str, payment_id: str) -> str:
        """A payment's money into the open balance: its top-up entry."""
        change = _w.top_up(self.wallet, amount, method, self.ctx.info(payment_id=payment_id))
        self.ctx.record(change)
        self.wallet = change.wallet(self.wallet.id)
        return change.entry.id

    def line(self, kind: OnTimeKind, amount: Money, time: timedelta, payment_ids: tuple[str, ...],
             entry_id: str | None) -> OnTime:
        """The on-time line of what was just done (its id ends with its place)."""
        upgrade = self.upgrade
        line = OnTime(
            id=f"{self.ctx.env.ids.new('ot')}.{len(self.lines):04d}",
            tenant_id=self.wallet.tenant_id, wallet_id=self.wallet.id, kind=kind, at=self.at,
            amount=amount, daily_rate=self.contract.daily_rate, time=time,
            service_end=self.contract.service_end, payment_ids=payment_ids,
            entry_id=entry_id, upgrade_id=None if upgrade is None else upgrade.upgrade_id)
        self.lines.append(line)
        return line

    def to_time(self, payment: PaygPayment, kind: OnTimeKind = OnTimeKind.PAYMENT) -> None:
        """Turn ``payment`` (its money in the open balance) into time at the current rate."""
        rate = self.contract.daily_rate
        time = seconds_for(payment.amount, rate)
        entry_id = self.entry(EntryKind.TIME, payment.amount, service_account(
            self.wallet.tenant_id), payment_id=payment.payment_id)
        self.contract = grant(self.contract, time, self.at)
        self.line(kind, payment.amount, time, (payment.payment_id,), entry_id)
        self.payments[payment.payment_id] = attrs.evolve(
            payment, status=PaymentStatus.TIME, time=time, daily_rate=rate,
            time_entry_id=entry_id)

    def back_to_money(self, amount: Money, payment_ids: tuple[str, ...]) -> None:
        """Turn the time ``amount`` buys at the current rate back into ``amount`` of money
        (``NotEnoughTimeError`` beyond the time left)."""
        time = seconds_for(amount, self.contract.daily_rate)
        self.contract = remove(self.contract, time, self.at)
        entry_id = self.entry(EntryKind.TIME_RETURN, -amount,
                              service_account(self.wallet.tenant_id))
        self.line(OnTimeKind.RECONVERSION, -amount, -time, payment_ids, entry_id)

    # -- the upgrade ------------------------------------------------------------------------

    def waiting(self, action: str) -> Upgrade:
        """The upgrade waiting for its downpayment; ``ContractStateError`` when none is."""
        upgrade = self.upgrade
        if self.contract.state is not ContractState.PAY_UPGRADE_DOWNPAYMENT or upgrade is None:
            raise ContractStateError(self.wallet.id, self.contract.state.value, action)
        return upgrade

    def expire_if_late(self) -> None:
        """Expire a waiting upgrade at or after its deadline: its held payments turned into
        time at the old rate, the contract active again."""
        upgrade = self.upgrade
        if (self.contract.state is not ContractState.PAY_UPGRADE_DOWNPAYMENT
                or upgrade is None or not upgrade.is_late(self.at)):
            return
        for payment_id in upgrade.held:
            self.to_time(self.payment(payment_id))
        self.upgrade = attrs.evolve(upgrade, status=UpgradeStatus.EXPIRED, ended_at=self.at)
        self.contract = attrs.evolve(self.contract, state=ContractState.ACTIVE,
                                     upgrade_id=None, updated_at=self.at)

    def payment(self, payment_id: str) -> PaygPayment:
        """A payment of this wallet, as this command has left it."""
        return self.payments.get(payment_id) or payment_of(self.ctx.uow, self.wallet.id,
                                                           payment_id)

    def complete(self, available: Money, paid_by: str) -> None:
        """Pay the waiting upgrade's downpayment from the open balance, where ``available``
        (at least the downpayment) waits: the downpayment entry, the time left re-valued at
        the new rate, the surplus turned into time at it; the contract moves to install or
        collect the upgrade."""
        upgrade = self.waiting("pay the downpayment")
        entry_id = self.entry(EntryKind.DOWNPAYMENT, upgrade.downpayment,
                              downpayments_account(self.wallet.tenant_id),
                              upgrade_id=upgrade.upgrade_id)
        for payment_id in upgrade.held:
            self.payments[payment_id] = attrs.evolve(
                self.payment(payment_id), status=PaymentStatus.DOWNPAYMENT)
        before = self.contract.service_end
        self.contract = revalue(self.contract, upgrade.daily_rate, self.at)
        self.contract = attrs.evolve(self.contract, products=upgrade.products,
                                     state=ContractState.INSTALL_COLLECT_UPGRADE)
        self.line(OnTimeKind.DOWNPAYMENT, upgrade.downpayment, _ZERO, upgrade.held, entry_id)
        if self.contract.service_end != before:
            self.line(OnTimeKind.REVALUATION, self.zero, self.contract.service_end - before,
                      (), None)
        surplus = available - upgrade.downpayment
        if surplus.is_positive():
            time = seconds_for(surplus, self.contract.daily_rate)
            surplus_entry = self.entry(EntryKind.TIME, surplus,
                                       service_account(self.wallet.tenant_id),
                                       upgrade_id=upgrade.upgrade_id)
            self.contract = grant(self.contract, time, self.at)
            self.line(OnTimeKind.SURPLUS, surplus, time, (), surplus_entry)
        self.upgrade = attrs.evolve(
            upgrade, status=UpgradeStatus.INSTALL_COLLECT_UPGRADE, paid_by=paid_by,
            downpayment_entry_id=entry_id, ended_at=self.at)

    # -- the end ----------------------------------------------------------------------------

    def tokens(self) -> tuple[Token, ...]:
        """The device's tokens for the new service end, if it changed, the contract has a
        device and the service has the devices' keys; the device's new token state buffered."""
        contract = self.contract
        source = self.ctx.env.device_keys
        if contract.device_id is None or source is None or contract.service_end == self.first_end:
            return ()
        key = device_key(source, contract.tenant_id, contract.device_id)
        device = self.ctx.uow.get_record(DEVICES, payment_key(contract.tenant_id,
                                                              contract.device_id))
        state = register(contract.device_id, key=key) if device is None else device.tokens
        after, tokens = issue(state, key, new_end=contract.service_end, now=self.at)
        self.ctx.uow.put_record(DEVICES, PaygDevice(
            tenant_id=contract.tenant_id, device_id=contract.device_id,
            wallet_id=contract.wallet_id, tokens=after))
        return tokens

    def upgrade_event(self, before: Upgrade | None, after: Upgrade) -> None:
        """The event of the upgrade's new status (none when it did not change)."""
        kind = _UPGRADE_EVENTS[after.status]
        if before is not None and before.status is after.status:
            return
        data: dict[str, object] = {
            "upgrade_id": after.upgrade_id, "status": after.status.value,
            "products": list(after.products), "daily_rate": money_data(after.daily_rate),
            "old_rate": money_data(after.old_rate), "downpayment": money_data(after.downpayment),
            "deadline": instant_text(after.deadline)}
        if after.downpayment_entry_id is not None:
            data["downpayment_entry_id"] = after.downpayment_entry_id
        emit(self.ctx.env, self.ctx.uow, tenant_id=after.tenant_id, wallet_id=after.wallet_id,
             kind=kind, at=self.at, data=data)

    def finish(self) -> PaygOutcome:
        """Store what changed and return the outcome, with the device's tokens."""
        uow = self.ctx.uow
        uow.put_record(CONTRACTS, self.contract)
        if self.upgrade is not None:
            self.upgrade_event(uow.get_record(UPGRADES, self.upgrade.upgrade_id), self.upgrade)
            uow.put_record(UPGRADES, self.upgrade)
        for payment in self.payments.values():
            uow.put_record(PAYMENTS, payment)
        for conversion in self.others:
            uow.put_record(CONVERSIONS, conversion)
        for line in self.lines:
            uow.put_record(ON_TIME, line)
        tokens = self.tokens()
        return PaygOutcome(contract=self.contract, upgrade=self.upgrade,
                           payments=tuple(self.payments.values()), on_time=tuple(self.lines),
                           tokens=tokens)


# -- the contract -----------------------------------------------------------------------------


def open_contract(ctx: Context, command: OpenContract) -> PaygOutcome:
    """A new contract on the wallet: no time yet (service ends when it starts);
    ``ContractStateError`` when the wallet already has one."""
    wallet = ctx.wallet(command.wallet_id)
    check_currency(wallet, command.daily_rate, "daily_rate")
    found = find_contract(ctx.uow, wallet.id)
    if found is not None:
        raise ContractStateError(wallet.id, found.state.value, "open another contract")
    at = ctx.at.astimezone(UTC)
    if command.device_id is not None:
        _register(ctx, wallet, command.device_id, command.starting_code)
    contract = Contract(
        wallet_id=wallet.id, tenant_id=wallet.tenant_id, products=tuple(command.products),
        daily_rate=command.daily_rate, started_at=at, service_end=at,
        device_id=command.device_id, updated_at=at)
    return _Books(ctx, wallet, contract).finish()


def _register(ctx: Context, wallet: Wallet, device_id: str, starting_code: int | None) -> None:
    """Register the contract's device (``InvalidInputError`` for a device of another wallet):
    its starting code given, or derived from its key (none now without either: it is derived
    when the first token is issued)."""
    found = ctx.uow.get_record(DEVICES, payment_key(wallet.tenant_id, device_id))
    if found is not None and found.wallet_id != wallet.id:
        raise InvalidInputError("device_id", "is the device of another contract", device_id)
    source = ctx.env.device_keys
    key = None if source is None else device_key(source, wallet.tenant_id, device_id)
    if starting_code is None and key is None:
        return
    ctx.uow.put_record(DEVICES, PaygDevice(
        tenant_id=wallet.tenant_id, device_id=device_id, wallet_id=wallet.id,
        tokens=register(device_id, key=key, starting_code=starting_code)))


def report_device(ctx: Context, command: ReportDevice) -> PaygOutcome:
    """The device's state as the host reports it."""
    books = _Books.of(ctx, command.wallet_id)
    books.contract = attrs.evolve(books.contract, device_state=command.state,
                                  updated_at=books.at)
    return books.finish()


def confirm_upgrade_installed(ctx: Context, command: ConfirmUpgradeInstalled) -> PaygOutcome:
    """The paid upgrade installed or collected: the contract active again
    (``ContractStateError`` unless it was waiting for that)."""
    books = _Books.of(ctx, command.wallet_id)
    upgrade = books.upgrade
    if books.contract.state is not ContractState.INSTALL_COLLECT_UPGRADE or upgrade is None:
        raise ContractStateError(books.wallet.id, books.contract.state.value,
                                 "confirm an upgrade installed")
    books.upgrade = attrs.evolve(upgrade, status=UpgradeStatus.INSTALLED)
    books.contract = attrs.evolve(books.contract, state=ContractState.ACTIVE, upgrade_id=None,
                                  updated_at=books.at)
    return books.finish()


# -- money in ---------------------------------------------------------------------------------


def _check_new(ctx: Context, books: _Books, payment_id: str, field: str) -> None:
    if payment_taken(ctx.uow, books.wallet.tenant_id, payment_id):
        raise InvalidInputError(field, "is already recorded at this tenant", payment_id)


def pay(ctx: Context, command: PaygPay) -> PaygOutcome:
    """A payment: its money into the open balance (a top-up entry), then, while an upgrade
    waits for its downpayment, held toward it (completing it the moment the held payments
    reach it), else turned into time at the contract's rate."""
    books = _Books.of(ctx, command.wallet_id)
    check_currency(books.wallet, command.amount)
    _check_new(ctx, books, command.payment_id, "payment_id")
    entry_id = books.money_in(command.amount, command.method, command.payment_id)
    payment = PaygPayment(
        payment_id=command.payment_id, tenant_id=books.wallet.tenant_id,
        wallet_id=books.wallet.id, amount=command.amount, method=command.method,
        paid_at=books.at, status=PaymentStatus.HELD, entry_id=entry_id)
    upgrade = books.upgrade
    if books.contract.state is ContractState.PAY_UPGRADE_DOWNPAYMENT and upgrade is not None:
        books.payments[payment.payment_id] = attrs.evolve(payment, upgrade_id=upgrade.upgrade_id)
        upgrade = attrs.evolve(upgrade, held=(*upgrade.held, payment.payment_id),
                               held_total=upgrade.held_total + command.amount)
        books.upgrade = upgrade
        if upgrade.held_total >= upgrade.downpayment:
            books.complete(upgrade.held_total, "payments")
    else:
        books.to_time(payment)
    return books.finish()


def record_conversion(ctx: Context, command: RecordConversion) -> PaygOutcome:
    """A conversion transaction: the payments' money into the open balance (one top-up entry)
    and turned into time together (one time entry), each payment linked to it and bought the
    time its amount buys at the contract's rate."""
    books = _Books.of(ctx, command.wallet_id)
    _check_new(ctx, books, command.conversion_id, "conversion_id")
    ids = tuple(sorted(command.payments))
    for payment_id in ids:
        check_currency(books.wallet, command.payments[payment_id], "payments")
        _check_new(ctx, books, payment_id, "payments")
    total = Money.sum((command.payments[i] for i in ids), books.wallet.currency)
    entry_id = books.money_in(total, command.method, command.conversion_id)
    rate = books.contract.daily_rate
    times = {i: seconds_for(command.payments[i], rate) for i in ids}
    time = sum(times.values(), _ZERO)
    time_entry = books.entry(EntryKind.TIME, total, service_account(books.wallet.tenant_id),
                             conversion_id=command.conversion_id)
    books.contract = grant(books.contract, time, books.at)
    books.line(OnTimeKind.CONVERSION, total, time, ids, time_entry)
    for payment_id in ids:
        books.payments[payment_id] = PaygPayment(
            payment_id=payment_id, tenant_id=books.wallet.tenant_id, wallet_id=books.wallet.id,
            amount=command.payments[payment_id], method=command.method, paid_at=books.at,
            status=PaymentStatus.LINKED, time=times[payment_id], daily_rate=rate,
            entry_id=entry_id, time_entry_id=time_entry, conversion_id=command.conversion_id)
    books.others.append(Conversion(
        conversion_id=command.conversion_id, tenant_id=books.wallet.tenant_id,
        wallet_id=books.wallet.id, converted_at=books.at, amount=total, payment_ids=ids))
    return books.finish()


# -- the upgrade ------------------------------------------------------------------------------


def call_upgrade(ctx: Context, command: CallUpgrade) -> PaygOutcome:
    """The upgrade call: eligibility checked (performance strictly above 95 %, the device on,
    service ending in the future; ``NotEligibleError``), the upgrade recorded with the time the
    customer would have left at the new rate, and the contract moved to pay the downpayment
    within :data:`~prepaid_wallet.rules.payg.UPGRADE_WINDOW`."""
    books = _Books.of(ctx, command.wallet_id)
    check_currency(books.wallet, command.daily_rate, "daily_rate")
    contract = books.contract
    at = books.at
    if command.performance is None:
        score, source = performance(contract, at), "library"
    else:
        score, source = command.performance, "host"
    check_eligible(contract, at, score)
    upgrade = Upgrade(
        upgrade_id=ctx.env.ids.new("upg"), tenant_id=contract.tenant_id,
        wallet_id=contract.wallet_id, products=tuple(command.products),
        daily_rate=command.daily_rate, old_rate=contract.daily_rate,
        downpayment=command.downpayment, called_at=at, deadline=at + UPGRADE_WINDOW,
        status=UpgradeStatus.PAY_UPGRADE_DOWNPAYMENT, performance=str(score),
        performance_source=source,
        time_left_after=revalued(contract.time_left(at), contract.daily_rate,
                                 command.daily_rate),
        held_total=books.zero)
    books.upgrade = upgrade
    books.contract = attrs.evolve(contract, state=ContractState.PAY_UPGRADE_DOWNPAYMENT,
                                  upgrade_id=upgrade.upgrade_id, updated_at=at)
    return books.finish()


def _cover(upgrade: Upgrade, amount: Money) -> Money:
    """What pays the downpayment: ``amount`` plus the payments held toward it;
    ``DownpaymentNotCoveredError`` when it falls short."""
    available = upgrade.held_total + amount
    if available < upgrade.downpayment:
        raise DownpaymentNotCoveredError(upgrade.upgrade_id, upgrade.downpayment, available)
    return available


def reconvert_payments(ctx: Context, command: ReconvertPayments) -> PaygOutcome:
    """Past payments' time turned back into money, which pays the waiting upgrade's
    downpayment; a surplus becomes time again at the new rate."""
    books = _Books.of(ctx, command.wallet_id)
    upgrade = books.waiting("reconvert payments")
    selected = []
    for payment_id in command.payment_ids:
        payment = books.payment(payment_id)
        if payment.status is not PaymentStatus.TIME:
            raise PaymentStateError(payment_id, payment.status.value, "reconvert")
        selected.append(payment)
    amount = Money.sum((p.amount for p in selected), books.wallet.currency)
    available = _cover(upgrade, amount)
    ids = tuple(p.payment_id for p in selected)
    books.back_to_money(amount, ids)
    for payment in selected:
        books.payments[payment.payment_id] = attrs.evolve(
            payment, status=PaymentStatus.RECONVERTED, upgrade_id=upgrade.upgrade_id)
    books.complete(available, "reconversion")
    return books.finish()


def unlink_conversion_payment(ctx: Context, command: UnlinkConversionPayment) -> PaygOutcome:
    """One payment unlinked from a conversion transaction, its time turned back into money,
    which pays the waiting upgrade's downpayment; a surplus becomes time again."""
    books = _Books.of(ctx, command.wallet_id)
    upgrade = books.waiting("unlink a conversion payment")
    conversion = conversion_of(ctx.uow, books.wallet.id, command.conversion_id)
    if command.payment_id is not None:
        payment = books.payment(command.payment_id)
        if payment.conversion_id != conversion.conversion_id:
            raise PaymentStateError(payment.payment_id, payment.status.value,
                                    f"unlink from {conversion.conversion_id}")
        if payment.status is not PaymentStatus.LINKED:
            raise PaymentStateError(payment.payment_id, payment.status.value, "unlink")
    else:
        linked = [books.payment(i) for i in conversion.payment_ids]
        if not linked:
            raise PaymentStateError(conversion.conversion_id, "without linked payments",
                                    "unlink")
        short = upgrade.downpayment - upgrade.held_total
        covering = [p for p in linked if p.amount >= short]
        payment = covering[0] if covering else max(linked, key=lambda p: p.amount.minor_units)
    available = _cover(upgrade, payment.amount)
    books.back_to_money(payment.amount, (payment.payment_id,))
    books.payments[payment.payment_id] = attrs.evolve(
        payment, status=PaymentStatus.UNLINKED, upgrade_id=upgrade.upgrade_id)
    books.others.append(attrs.evolve(
        conversion,
        payment_ids=tuple(i for i in conversion.payment_ids if i != payment.payment_id),
        unlinked=(*conversion.unlinked, payment.payment_id)))
    books.complete(available, "unlink")
    return books.finish()


# -- the job ----------------------------------------------------------------------------------


def expire_upgrades(env: Environment, at: datetime | None = None) -> tuple[str, ...]:
    """Expire every upgrade still waiting for its downpayment at or after its deadline (a
    scoped service: its own tenant's), each in a unit of work of its own under its wallet's
    lock: its held payments turned into time at the old rate, the contract active again. The
    ids expired. Commands on a contract expire its upgrade too, so running this late never
    changes an outcome; it makes the state visible."""
    now = (env.now() if at is None else at).astimezone(UTC)
    expired: list[str] = []
    while True:
        with env.store.unit_of_work(read_only=True) as uow:
            waiting = due_upgrades(uow, env.tenant_id, _BATCH)
        due = [u for u in waiting if u.is_late(now)]
        done = len(expired)
        for upgrade in due:
            with env.store.unit_of_work() as uow:
                wallets = uow.lock_wallets([upgrade.wallet_id], tenant_records=WITH_LOCKS)
                ctx = Context(env, uow, not_before(now, wallets.values()), None, None, {},
                              wallets)
                books = _Books.of(ctx, upgrade.wallet_id)
                if books.upgrade is not None and books.upgrade.upgrade_id == upgrade.upgrade_id \
                        and books.upgrade.status is UpgradeStatus.EXPIRED:
                    books.finish()
                    uow.commit()
                    expired.append(upgrade.upgrade_id)
        if len(due) < len(waiting) or len(waiting) < _BATCH or len(expired) == done:
            return tuple(expired)
