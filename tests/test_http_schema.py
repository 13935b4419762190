"""The HTTP API against its own OpenAPI document, with generated input.

Schemathesis reads the document the application serves (``/schema/openapi.json``) and, for
every operation, generates requests: ones the document allows, ones it does not (negative),
and ones from a copy of the document narrowed to plausible values (euros, short tokens for
ids and names), which get past the input checks into the operations. Each is sent to the ASGI
application in process (a memory store and an SQLite store, each seeded with wallets with
money, a lot, a hold, entries, a condition group and a customer top-up, whose ids the path
parameters are given half the time) with a valid API key. Every answer must:

* not be a 5xx;
* conform to the document: a documented status code, the documented content type, a body
  that is valid against the schema of that status;
* not contain the API key.

The run is bounded and repeatable: ``PREPAID_WALLET_SCHEMA_EXAMPLES`` examples per operation
(default 8), derandomized (``PREPAID_WALLET_SCHEMA_RANDOM=1``: new ones each run).

The second half checks the wire format without HTTP: real values of every result type the
catalogue names, encoded by :func:`prepaid_wallet.wire.encode`, are valid against
:func:`prepaid_wallet.wire.schema`; and :func:`~prepaid_wallet.wire.decode` reads back what
:func:`~prepaid_wallet.wire.encode` wrote for the input types.
"""

from __future__ import annotations

import collections
import collections.abc as abc
import contextlib
import copy
import json
import os
import types
import typing
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("litestar")
schemathesis = pytest.importorskip("schemathesis")

import jsonschema  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from litestar.testing import TestClient  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from prepaid_wallet import (  # noqa: E402
    AccessPolicy,
    Actor,
    LineItem,
    Money,
    PaymentMode,
    SpendCondition,
    SpendRequest,
    TenantRules,
    WalletService,
    wire,
)
from prepaid_wallet.catalogue import catalogue  # noqa: E402
from prepaid_wallet.errors import AuthenticationError, InvalidInputError, NotFoundError  # noqa: E402
from prepaid_wallet.expiry import EndOfLocalDay  # noqa: E402
from prepaid_wallet.http.app import create_app  # noqa: E402
from prepaid_wallet.http.openapi import is_stream, stream_item  # noqa: E402
from prepaid_wallet.http.routes import Principal  # noqa: E402
from prepaid_wallet.rules.limits import Limits  # noqa: E402
from prepaid_wallet.rules.payg import DeviceState  # noqa: E402
from prepaid_wallet.rules.reminders import LowBalanceRule, Threshold  # noqa: E402
from prepaid_wallet.rules.topup.gateway import ChargeOutcome, ChargeStatus  # noqa: E402
from prepaid_wallet.rules.topup.rule import PaymentMethods, TopUpRule  # noqa: E402
from prepaid_wallet.storage import open_store  # noqa: E402
from tests.strategies import decimals, money  # noqa: E402

EXAMPLES = int(os.environ.get("PREPAID_WALLET_SCHEMA_EXAMPLES", "8"))
#: ``PREPAID_WALLET_SCHEMA_RANDOM=1``: new examples each run (to look for more, locally).
REPEATABLE = os.environ.get("PREPAID_WALLET_SCHEMA_RANDOM", "") != "1"
SECRET = "pw_test_Zq7dL0rX3mB9sK2v"  # the one valid key; no answer may contain it
TENANT = "hub"
AUTH = {"Authorization": f"Bearer {SECRET}"}
ADMIN = Actor("ops", frozenset({"admin"}))


def _authenticate(secret: str) -> Principal:
    if secret != SECRET:
        raise AuthenticationError()
    return Principal("key_test", TENANT, frozenset({"admin"}))


def _no_key_leak(ctx: Any, response: Any, case: Any) -> bool | None:
    """No answer contains the API key (body or headers)."""
    assert SECRET.encode() not in response.content, "the answer contains the API key"
    for name, values in response.headers.items():
        for value in values if isinstance(values, list) else [values]:
            assert SECRET not in value, f"the header {name} contains the API key"
    return None


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, _no_key_leak]


class World:
    """An application over a seeded store, its document and the real ids."""

    def __init__(self, app: Any, ids: dict[str, list[str]]) -> None:
        self.app = app
        self.ids = ids
        with TestClient(app) as client:
            document = client.get("/schema/openapi.json").json()
        self.schema = schemathesis.openapi.from_dict(document)
        self.schema.app = app
        self.realistic = schemathesis.openapi.from_dict(_realistic(document))


def _realistic(document: dict[str, Any]) -> dict[str, Any]:
    """The document with money narrowed to small positive amounts in the seeded wallets'
    currency: requests generated from it get past the money checks into the operations."""
    narrowed = copy.deepcopy(document)
    money = narrowed["components"]["schemas"]["Money"]["properties"]
    money["amount"] = {"type": "string", "pattern": r"^[1-9][0-9]{0,2}(\.[0-9]{2})?$"}
    money["currency"] = {"enum": ["EUR"]}
    _tokens(narrowed)
    return narrowed


_TOKEN = {"type": "string", "pattern": "^[a-z][a-z0-9]{0,7}$"}


def _tokens(node: Any) -> None:
    """Plain strings (ids, names, reasons, metadata) narrowed to short tokens."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "currency" and value == {"type": "string"}:
                node[key] = {"enum": ["EUR"]}
            elif value == {"type": "string"} and key != "cursor":
                node[key] = dict(_TOKEN)
            elif isinstance(value, dict) and value.get("schema") == {"type": "string"}:
                value["schema"] = ({"enum": ["EUR"]} if value.get("name") == "currency"
                                   else dict(_TOKEN))
            else:
                _tokens(value)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if value == {"type": "string"}:
                node[i] = dict(_TOKEN)
            else:
                _tokens(value)


def _seed(client: TestClient[Any]) -> dict[str, list[str]]:
    def post(path: str, body: dict[str, Any]) -> Any:
        answer = client.post(path, json=body, headers=AUTH)
        assert answer.status_code == 200, answer.text
        return answer.json()

    eur = {"amount": "50.00", "currency": "EUR"}
    wallet = post("/v1/open-wallet", {"owner_id": "ana", "currency": "EUR"})["id"]
    other = post("/v1/open-wallet", {"owner_id": "ben", "currency": "EUR"})["id"]
    receipt = post(f"/v1/wallets/{wallet}/top-up", {"amount": eur, "method": "card"})
    post(f"/v1/wallets/{other}/top-up", {"amount": eur, "method": "card"})
    lot = post(f"/v1/wallets/{wallet}/award", {
        "amount": {"amount": "5.00", "currency": "EUR"}, "reason": "welcome"})["id"]
    hold = post(f"/v1/wallets/{wallet}/hold",
                {"amount": {"amount": "3.00", "currency": "EUR"}, "window": "PT1H"})["id"]
    spent = post(f"/v1/wallets/{wallet}/spend",
                 {"request": {"amount": {"amount": "4.50", "currency": "EUR"}}})
    group = post("/v1/define-condition-group", {
        "name": "food", "condition": {"categories": ["food"]}})["id"]
    top_up = post(f"/v1/wallets/{wallet}/start-top-up",
                  {"amount": {"amount": "10.00", "currency": "EUR"}, "method": "card"})["id"]
    return {
        "wallet_id": [wallet, other], "hold_id": [hold], "lot_id": [lot],
        "entry_id": [receipt["entry_id"], spent["entry_id"]], "group_id": [group],
        "top_up_id": [top_up], "intent_id": [],
    }


def _world(url: str) -> Iterator[World]:
    store = open_store(url)
    app = create_app(store, authenticate=_authenticate, access_log=False)
    with TestClient(app) as client:
        ids = _seed(client)
    yield World(app, ids)
    store.close()


@pytest.fixture(scope="module")
def memory_world() -> Iterator[World]:
    yield from _world("memory:")


@pytest.fixture(scope="module")
def sqlite_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    path: Path = tmp_path_factory.mktemp("schema") / "store.db"
    yield from _world(f"sqlite:///{path}")


OPERATIONS = [op.name for op in catalogue()]


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
@pytest.mark.parametrize("name", OPERATIONS)
def test_operation_conforms(name: str, backend: str, request: pytest.FixtureRequest) -> None:
    """Generated requests to ``name`` are answered as the document says."""
    world: World = request.getfixturevalue(f"{backend}_world")
    operation = world.schema.find_operation_by_id(name)
    strategy = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
        world.realistic.find_operation_by_id(name).as_strategy(GenerationMode.POSITIVE),
    )

    @settings(max_examples=EXAMPLES, derandomize=REPEATABLE, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        drawn = data.draw(strategy)
        path = dict(drawn.path_parameters or {})
        for param in path:
            real = world.ids.get(param) or []
            if real and data.draw(st.booleans(), label=f"real {param}"):
                path[param] = data.draw(st.sampled_from(real))
        case = operation.Case(  # checked against the document as served
            method=drawn.method, path_parameters=path, query=drawn.query,
            headers={**(drawn.headers or {}), **AUTH}, body=drawn.body,
            media_type=drawn.media_type)
        case.call_and_validate(checks=CHECKS)

    run()


# -- the wire format: encode, schema and decode agree ---------------------------------------------


def _validator(tp: Any, *, inbound: bool = False) -> Any:
    defs: dict[str, Any] = {}
    root = wire.schema(tp, defs, inbound=inbound)
    return jsonschema.Draft202012Validator(
        {**root, "components": {"schemas": defs}},
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def _eur(text: str) -> Money:
    return Money.of(text, "EUR")


def _scenario() -> dict[str, list[Any]]:
    """Real results of (nearly) every operation, by operation name: writes run by a script,
    then every read that needs no more than an id."""
    service = WalletService(open_store("memory:"), tenant_id=TENANT,
                            actor=ADMIN)
    results: dict[str, list[Any]] = collections.defaultdict(list)

    takes_tenant = {op.name for op in catalogue() if op.param("tenant") is not None}
    needs_actor = {op.name for op in catalogue()
                   if any(p.where == "actor" and p.required for p in op.params)}

    def run(operation: str, *args: Any, **kwargs: Any) -> Any:
        if operation in takes_tenant:
            kwargs["tenant_id"] = TENANT
        if operation in needs_actor:
            kwargs["actor"] = ADMIN
        result = getattr(service, operation)(*args, **kwargs)
        results[operation].append(result)
        return result

    rules = TenantRules(automatic_top_ups=True, member_payment_modes=True,
                        limits=Limits(max_balance=_eur("1000.00")),
                        low_balance=LowBalanceRule((Threshold(_eur("15.00"), "warn"),)))
    run("set_tenant_rules", rules=rules, reason="start")
    run("set_access_policy", policy=AccessPolicy({"admin": frozenset({"*"})}))
    ana = run("open_wallet", owner_id="ana", currency="EUR", owner_groups=["staff"]).id
    ben = run("open_wallet", owner_id="ben", currency="EUR", floor=_eur("-5.00")).id
    kes = run("open_wallet", owner_id="cam", currency="KES").id
    run("top_up", ana, amount=_eur("100.00"), method="card", idempotency_key="t1")
    run("top_up", ben, amount=_eur("20.00"), method="card")
    group = run("define_condition_group", name="food",
                condition=SpendCondition(categories=frozenset({"food"})),
                valid_until=datetime.now(UTC) + timedelta(days=30)).id
    run("change_condition_group", group, name="meals")
    lot = run("award", ana, amount=_eur("10.00"), reason="welcome",
              expires_at=datetime.now(UTC) + timedelta(days=10), group_id=group).id
    run("extend_expiry", lot, expires_at=datetime.now(UTC) + timedelta(days=20))
    hold = run("hold", ana, amount=_eur("5.00"), window=timedelta(minutes=90)).id
    run("capture", hold, amount=_eur("2.50"))
    run("void", run("hold", ana, amount=_eur("1.00"), window=timedelta(hours=1)).id)
    spend = run("spend", ana, request=SpendRequest(_eur("12.00"), description="lunch", lines=(
        LineItem("soup", _eur("4.00"), "food"), LineItem("pen", _eur("8.00")))))
    run("check_spend", ana, request=SpendRequest(_eur("1000.00")))
    run("refund", spend.entry_id, amount=_eur("1.00"), reason="broken pen")
    run("credit", ben, amount=_eur("3.00"), reason="goodwill")
    run("reverse", run("top_up", ben, amount=_eur("3.00"), method="card").entry_id,
        reason="by mistake")
    run("debit", ben, amount=_eur("15.00"), reason="fee")  # below 15.00: an event
    run("transfer", from_wallet_id=ana, to_wallet_id=ben, amount=_eur("5.00"))
    run("payout", ben, amount=_eur("2.00"), method="bank")
    run("set_floor", ben, floor=_eur("-10.00"), reason="trusted")
    run("set_payment_mode", ana, mode=PaymentMode.CREDIT_FIRST, reason="prefers credit")
    run("set_limits", ana, limits=Limits(max_balance=_eur("500.00")))
    run("set_owner_groups", ana, owner_groups=["staff", "vip"])
    run("set_top_up_rule", ana, rule=TopUpRule(
        methods=PaymentMethods(primary="card"), threshold=_eur("10.00"),
        amount=_eur("20.00"), minimum=_eur("5.00")))
    top_up = run("start_top_up", ana, amount=_eur("10.00"), method="card").id
    run("apply_credit", ana, order_id="o1", total=_eur("3.00"))
    run("place_order", ana, order_id="o1")
    run("credit_owed", ana, order_id="o1", total=_eur("2.00"),
        paid_by_other_methods=_eur("0.00"))
    run("order_payment", ana, order_id="o1")
    run("apply_credit", ana, order_id="o3", total=_eur("1.00"))
    run("abandon_order", ana, order_id="o3")
    run("find_wallet", owner_id="ana", currency="EUR")
    run("open_contract", kes, products=["lamp"], daily_rate=Money.of("100", "KES"))
    run("payg_payment", kes, payment_id="p1", amount=Money.of("250", "KES"))
    run("report_device", kes, state=DeviceState.ON)
    run("low_balance_report", threshold=Money.of("50.00", "EUR"))
    ids = {"wallet_id": [ana, ben, kes], "hold_id": [hold], "lot_id": [lot],
           "entry_id": [spend.entry_id], "group_id": [group], "top_up_id": [top_up]}
    for op in catalogue():
        if op.write or any(p.required and p.where in ("body", "query") for p in op.params):
            continue
        first = op.param("path")
        for ident in ids.get(first.name, []) if first is not None else [None]:
            arguments: dict[str, Any] = {first.name: ident} if first is not None else {}
            arguments.update({p.name: TENANT if p.where == "tenant" else ADMIN
                              for p in op.params if p.where in ("tenant", "actor")})
            try:
                result = op.call(service, arguments)
            except NotFoundError:
                continue  # not this wallet's kind (a contract of a prepaid wallet)
            if is_stream(op.result):
                with contextlib.closing(result):
                    result = list(result)
            results[op.name].append(result)
    # Webhooks last: once the tenant has an endpoint, its events go there, not to events().
    since = datetime.now(UTC) - timedelta(hours=1)
    endpoint = run("add_webhook_endpoint", url="https://hub.example/hooks").id
    run("debit", ben, amount=_eur("1.00"), reason="fee")
    service.fan_out_events()
    run("webhook_endpoints")
    run("webhook_deliveries")
    run("replay_webhooks", since=since)
    run("rotate_webhook_secret", endpoint)
    run("remove_webhook_endpoint", endpoint)
    return results


#: Results the scenario above does not reach (upgrades, conversions, charges reported by a
#: payment gateway); their types are still checked by the generated requests.
_NOT_REACHED = frozenset({
    "call_upgrade", "confirm_upgrade_installed", "record_conversion", "reconvert_payments",
    "unlink_conversion_payment", "charge_back_top_up", "report_charge", "ack_events",
    "top_up_intent", "conversions", "upgrades",
})


def test_encoded_results_are_valid_against_their_schema() -> None:
    """For every operation, real results encoded by ``wire.encode`` validate against
    ``wire.schema`` of its result type (a stream's lines against its item's schema)."""
    results = _scenario()
    reached = set()
    for op in catalogue():
        item = stream_item(op.result)
        validator = _validator(item if item is not None else op.result)
        for result in results.get(op.name, []):
            values = result if item is not None else [result]
            for value in values:
                if value is None or value == []:
                    continue
                reached.add(op.name)
                errors = [f"{e.json_path}: {e.message}"
                          for e in validator.iter_errors(wire.encode(value))]
                assert not errors, (op.name, errors)
    missing = {op.name for op in catalogue()} - reached - _NOT_REACHED
    assert not missing, f"no real result of {sorted(missing)}"


def _input_types() -> set[Any]:
    return {p.type for op in catalogue() for p in op.params
            if p.where in ("path", "query", "body")}


_INSTANTS = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9000, 1, 1),
                         timezones=st.just(UTC))
_DURATIONS = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=100_000))
_MONEY = money()
#: Values of the input types with a structure of their own, built by hand.
_BUILT: dict[Any, Any] = {
    SpendCondition: st.sampled_from([
        SpendCondition(), SpendCondition(categories=frozenset({"food", "drink"})),
        SpendCondition(merchants=frozenset({"techno"}), products=frozenset({"p1"}))]),
    SpendRequest: st.builds(
        lambda amount, mode: SpendRequest(amount, mode=mode, description="lunch", lines=(
            LineItem("soup", amount, "food"),)),
        money("EUR", min_minor=1, max_minor=10**9), st.sampled_from([None, *PaymentMode])),
    AccessPolicy: st.just(AccessPolicy({"admin": frozenset({"*"}),
                                        "clerk": frozenset({"spend", "top_up"})})),
    TenantRules: st.sampled_from([
        TenantRules(), TenantRules(automatic_top_ups=True, member_payment_modes=True,
                                   limits=Limits(max_balance=Money.of("100.00", "EUR")))]),
    Limits: st.builds(lambda m: Limits(max_balance=m), money("EUR", min_minor=1)),
    TopUpRule: st.just(TopUpRule(
        methods=PaymentMethods(primary="card"), threshold=Money.of("10.00", "EUR"),
        amount=Money.of("20.00", "EUR"), minimum=Money.of("5.00", "EUR"))),
    ChargeOutcome: st.builds(ChargeOutcome, st.sampled_from(list(ChargeStatus)),
                             st.sampled_from([None, "ref-1"]), st.sampled_from([None, "ok"])),
    EndOfLocalDay: st.builds(EndOfLocalDay, st.dates(), st.sampled_from(
        ["Europe/Paris", "UTC", "America/Lima"])),
}


def _values(tp: Any) -> st.SearchStrategy[Any]:
    """Values of input type ``tp``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return st.one_of([_values(arm) for arm in typing.get_args(tp)])
    if origin in (abc.Iterable, abc.Sequence):
        return st.lists(_values(typing.get_args(tp)[0]), max_size=3).map(tuple)
    if origin is abc.Mapping:
        key, value = typing.get_args(tp)
        return st.dictionaries(_values(key), _values(value), max_size=3)
    simple: dict[Any, st.SearchStrategy[Any]] = {
        type(None): st.none(), str: st.text(max_size=20), bool: st.booleans(),
        int: st.integers(), Decimal: decimals(), Money: _MONEY, datetime: _INSTANTS,
        timedelta: _DURATIONS,
    }
    if tp in simple:
        return simple[tp]
    if isinstance(tp, type) and issubclass(tp, Enum):
        return st.sampled_from(list(tp))
    return _BUILT[tp]


@pytest.mark.parametrize("tp", sorted(_input_types(), key=repr), ids=repr)
def test_input_types_round_trip(tp: Any) -> None:
    """``decode(t, encode(v)) == v`` for values of every type a request carries, and what
    ``encode`` writes is valid against the inbound schema of ``t``."""
    validator = _validator(tp, inbound=True)

    @settings(max_examples=60, derandomize=True, database=None, deadline=None)
    @given(_values(tp))
    def run(value: Any) -> None:
        data = wire.encode(value)
        errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(data)]
        assert not errors, errors
        back = wire.decode(tp, json.loads(json.dumps(data)), "x")
        assert back == value

    run()


# -- what the generated requests found ------------------------------------------------------------


def test_a_refusal_value_named_like_a_problem_member_is_renamed() -> None:
    """A refused void of a captured hold carries the hold's status as ``hold_status`` (its
    ``status`` is the problem's own, the HTTP status); a rule's ``detail`` likewise."""
    from prepaid_wallet.errors import HoldStateError, NotEligibleError
    from prepaid_wallet.http.problems import problem_of

    body = problem_of(HoldStateError("hold_1", "captured", "void"), "r1")
    assert (body["status"], body["hold_status"], body["hold_id"]) == (402, "captured", "hold_1")
    body = problem_of(NotEligibleError("w_1", "device", "not on"), "r1")
    assert body["detail"] != "not on"
    assert body["wallet_detail"] == "not on"


def test_an_instant_with_a_lower_case_z_is_read() -> None:
    """RFC 3339 allows ``z`` for ``Z``."""
    assert wire.decode(datetime, "2026-12-03T06:31:35.5z", "at") == datetime(
        2026, 12, 3, 6, 31, 35, 500_000, tzinfo=UTC)


def test_a_duration_with_a_fraction_of_a_second_is_valid_against_its_schema() -> None:
    """The schema of a duration admits what ``encode`` writes (JSON Schema's own ``duration``
    format, RFC 3339's, has no fractions of a second)."""
    validator = _validator(timedelta)
    assert wire.encode(timedelta(seconds=2, microseconds=427_605)) == "PT2.427605S"
    assert validator.is_valid("PT2.427605S")
    assert not validator.is_valid("PT2.4.5S")


@pytest.mark.parametrize("text", ["PT99999999999999999999H", "P100001D", "PT2400001H",
                                  "PT" + "9" * 5000 + "S"])
def test_a_duration_too_long_is_invalid_input(text: str) -> None:
    """However its parts are written, a duration longer than 100000 days is refused naming
    the field (it was an OverflowError: a 500 on the wire)."""
    with pytest.raises(InvalidInputError) as raised:
        wire.decode(timedelta, text, "window")
    assert raised.value.field == "window"


def test_a_limit_no_store_can_take_is_answered_422(memory_world: World) -> None:
    """``GET /v1/events?limit=<beyond 2**31 - 1>`` is invalid input, not a 500."""
    with TestClient(memory_world.app) as client:
        answer = client.get("/v1/events?limit=100000000000000000000", headers=AUTH)
    assert answer.status_code == 422
    assert answer.json()["field"] == "limit"


def test_the_key_check_sees_a_key_in_a_body_or_a_header() -> None:
    """The check the generated requests run would fail an answer that held the key."""
    from schemathesis.core.transport import Response

    def answer(content: bytes, headers: dict[str, list[str]]) -> Response:
        return Response(status_code=200, headers=headers, content=content, request=None,
                        elapsed=0.0, verify=False)

    _no_key_leak(None, answer(b'{"ok": true}', {"x-request-id": ["r1"]}), None)
    with pytest.raises(AssertionError):
        _no_key_leak(None, answer(f'{{"k": "{SECRET}"}}'.encode(), {}), None)
    with pytest.raises(AssertionError):
        _no_key_leak(None, answer(b"{}", {"x-echo": [f"Bearer {SECRET}"]}), None)
