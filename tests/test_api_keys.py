"""API keys on every backend: creating, listing, authenticating, rotating with and without a
grace period, revoking; what the store keeps (a digest, never the secret); one error for every
secret that does not work, never naming it; tenant scope; bad input; the ``key`` commands."""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from prepaid_wallet import (
    AccessPolicy,
    Actor,
    FixedClock,
    Money,
    SequentialIds,
    SpendRequest,
    Store,
    TenantMismatchError,
    WalletService,
    open_store,
)
from prepaid_wallet.app.api_keys import API_KEY_CHANGES, API_KEYS, ApiKey, ApiKeyChange
from prepaid_wallet.cli import ExitCode, main
from prepaid_wallet.errors import (
    ApiKeyNotFoundError,
    ApiKeyStateError,
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    PermissionDeniedError,
    PrepaidWalletError,
)
from tests.json_convention import check_json_convention

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def service(store: Store, tenant_id: str | None = None,
            ids: SequentialIds | None = None) -> tuple[WalletService, FixedClock]:
    clock = FixedClock(T0)
    return WalletService(store, clock=clock, ids=ids or SequentialIds(),
                         tenant_id=tenant_id), clock


def random_part(secret: str) -> str:
    return secret.rsplit("_", 1)[-1]


def assert_refused(svc: WalletService, secret: Any) -> AuthenticationError:
    """``secret`` does not authenticate, with the one error that names nothing of it."""
    with pytest.raises(AuthenticationError) as caught:
        svc.authenticate(secret)
    error = caught.value
    assert str(error) == AuthenticationError.MESSAGE
    assert error.__cause__ is None
    assert error.__context__ is None
    if isinstance(secret, str) and secret:
        for text in (str(error), repr(error), repr(error.args)):
            assert secret not in text
            part = random_part(secret)
            assert len(part) < 8 or part not in text
    return error


# -- create, authenticate, list --------------------------------------------------------------


def test_a_new_key_authenticates_with_its_secret_and_acts_with_its_roles(store: Store) -> None:
    svc, _ = service(store)
    key, secret = svc.create_api_key("t1", {"cashier", "refunds"}, "till 3")

    assert key.id.startswith("key_")
    assert key.tenant_id == "t1"
    assert key.name == "till 3"
    assert key.roles == frozenset({"cashier", "refunds"})
    assert key.created_at == T0
    assert key.revoked_at is None
    assert key.rotated_at is None
    assert key.previous_until is None
    assert secret.startswith(f"pwk_{key.id}_")
    assert len(random_part(secret)) == 64  # 256 bits, in hex
    assert svc.authenticate(secret) == key
    assert key.actor() == Actor(key.id, {"cashier", "refunds"})
    assert svc.api_keys("t1") == [key]
    assert svc.api_keys("t2") == []


def test_two_keys_have_different_secrets_and_are_listed_oldest_first(store: Store) -> None:
    svc, clock = service(store)
    first, one = svc.create_api_key("t1", ["cashier"])
    clock.advance(timedelta(minutes=1))
    second, two = svc.create_api_key("t1", ["cashier"], "second")
    assert one != two
    assert first.name is None
    assert [k.id for k in svc.api_keys("t1")] == [first.id, second.id]
    assert svc.authenticate(two) == second
    assert svc.authenticate(one) == first


def test_the_key_runs_commands_through_the_tenants_access_policy(store: Store) -> None:
    svc, _ = service(store)
    wallet = svc.open_wallet(owner_id="ann", tenant_id="t1", currency="EUR").id
    svc.set_access_policy("t1", AccessPolicy({"admin": frozenset({"*"}),
                                              "cashier": frozenset({"top_up"})}),
                          actor=Actor("root", {"admin"}))
    cashier = svc.authenticate(svc.create_api_key("t1", {"cashier"})[1])
    receipt = svc.top_up(wallet, Money.of("5.00", "EUR"), method="cash",
                         actor=cashier.actor())
    with pytest.raises(PermissionDeniedError):
        svc.spend(wallet, SpendRequest(Money.of("1.00", "EUR")), actor=cashier.actor())
    assert svc.balance(wallet).open == Money.of("5.00", "EUR")
    assert svc.entry(receipt.entry_id).actor == cashier.id


def test_the_store_keeps_a_digest_never_the_secret(store: Store) -> None:
    svc, _ = service(store)
    key, secret = svc.create_api_key("t1", {"cashier"})
    rotated = svc.rotate_api_key(key.id, timedelta(hours=1))
    dumped = json.dumps(store.export_state())
    for each in (secret, rotated):
        assert random_part(each) not in dumped
    with store.unit_of_work(read_only=True) as uow:
        stored = uow.get_record(API_KEYS, key.id)
    assert stored is not None

    assert stored.digest == hashlib.sha256(rotated.encode()).hexdigest()
    assert stored.previous == hashlib.sha256(secret.encode()).hexdigest()
    assert stored.digest not in repr(stored)
    assert stored.previous not in repr(stored)
    assert not {"digest", "previous"} & {field.name for field in attrs.fields(ApiKey)}


# -- rotate and revoke -----------------------------------------------------------------------


def test_rotating_without_grace_stops_the_old_secret_at_once(store: Store) -> None:
    svc, clock = service(store)
    key, old = svc.create_api_key("t1", {"cashier"})
    clock.advance(timedelta(minutes=5))
    new = svc.rotate_api_key(key.id)
    assert new != old
    assert new.startswith(f"pwk_{key.id}_")
    assert_refused(svc, old)
    found = svc.authenticate(new)
    assert found.rotated_at == clock.now()
    assert found.previous_until is None


def test_rotating_with_grace_keeps_the_old_secret_working_until_it_ends(store: Store) -> None:
    svc, clock = service(store)
    key, old = svc.create_api_key("t1", {"cashier"})
    new = svc.rotate_api_key(key.id, grace=timedelta(hours=2))
    assert svc.authenticate(new).previous_until == T0 + timedelta(hours=2)
    clock.advance(timedelta(hours=2) - timedelta(microseconds=1))
    assert svc.authenticate(old).id == key.id
    clock.advance(timedelta(microseconds=1))
    assert_refused(svc, old)
    assert svc.authenticate(new).id == key.id


def test_a_second_rotation_ends_the_first_secrets_grace_at_once(store: Store) -> None:
    svc, _ = service(store)
    key, first = svc.create_api_key("t1", {"cashier"})
    second = svc.rotate_api_key(key.id, timedelta(days=1))
    third = svc.rotate_api_key(key.id, timedelta(days=1))
    assert_refused(svc, first)
    assert svc.authenticate(second).id == svc.authenticate(third).id == key.id


def test_a_revoked_key_never_authenticates_and_is_not_rotated(store: Store) -> None:
    svc, clock = service(store)
    key, old = svc.create_api_key("t1", {"cashier"})
    new = svc.rotate_api_key(key.id, timedelta(days=1))
    clock.advance(timedelta(minutes=1))
    revoked = svc.revoke_api_key(key.id)
    assert revoked.revoked_at == clock.now()
    assert revoked.revoked
    assert_refused(svc, new)
    assert_refused(svc, old)
    before = store.export_state()
    with pytest.raises(ApiKeyStateError) as caught:
        svc.rotate_api_key(key.id)
    assert caught.value.status == "revoked"
    clock.advance(timedelta(minutes=1))
    assert svc.revoke_api_key(key.id) == revoked  # again: nothing changes
    assert store.export_state() == before
    assert svc.api_keys("t1") == [revoked]


def test_two_changes_of_one_generation_of_a_key_clash(store: Store) -> None:
    """What a rotation racing a revocation meets on PostgreSQL, where both read the same
    generation: the change the other committed holds the generation it would write."""
    svc, _ = service(store)
    key, secret = svc.create_api_key("t1", {"cashier"})
    with store.unit_of_work() as uow:  # another unit's change of generation 2, committed
        uow.put_record(API_KEY_CHANGES, ApiKeyChange(
            id="kc_other", key_id=key.id, tenant_id="t1", generation=2, action="revoke",
            at=T0))
        uow.commit()
    before = store.export_state()
    with pytest.raises(ConflictError):
        svc.rotate_api_key(key.id)
    assert store.export_state() == before
    assert svc.authenticate(secret).id == key.id


def test_a_new_key_never_replaces_a_stored_one(store: Store) -> None:
    svc, _ = service(store)
    key, secret = svc.create_api_key("t1", {"cashier"})
    again, _ = service(store)  # its ids start again at 1: the same key id
    before = store.export_state()
    with pytest.raises(ConflictError):
        again.create_api_key("t2", {"admin"})
    assert store.export_state() == before
    assert svc.authenticate(secret) == key


# -- secrets that do not work ----------------------------------------------------------------


def test_every_secret_that_does_not_work_raises_the_same_error(store: Store) -> None:
    svc, _ = service(store)
    key, secret = svc.create_api_key("t1", {"cashier"})
    other, _ = svc.create_api_key("t1", {"cashier"})
    wrong = secret[:-1] + ("0" if secret[-1] != "0" else "1")
    bad = [
        wrong,  # the right key, a wrong secret
        secret.replace(key.id, other.id),  # another key's id with this one's random part
        f"pwk_key_999999_{'a' * 64}",  # an unknown key
        secret + "0", secret[:-1], secret.upper(), "pwk_" + secret, secret[4:],  # malformed
        "", "pwk_", "x" * 5000, f"pwk_{key.id}_{'é' * 64}",
    ]
    messages = {(type(assert_refused(svc, each)), str(assert_refused(svc, each)))
                for each in bad}
    assert messages == {(AuthenticationError, AuthenticationError.MESSAGE)}
    for each in (None, 7, b"pwk_", ["pwk_"]):
        assert_refused(svc, each)
    assert issubclass(AuthenticationError, PrepaidWalletError)


# -- tenant scope ----------------------------------------------------------------------------


def test_a_scoped_service_sees_only_its_tenants_keys(store: Store) -> None:
    ids = SequentialIds()
    admin, _ = service(store, ids=ids)
    t1, _ = service(store, tenant_id="t1", ids=ids)
    own, own_secret = t1.create_api_key("t1", {"cashier"})
    foreign, foreign_secret = admin.create_api_key("t2", {"cashier"})

    assert t1.api_keys("t1") == [own]
    assert t1.api_keys("t2") == []
    assert t1.authenticate(own_secret) == own
    assert_refused(t1, foreign_secret)
    assert admin.authenticate(foreign_secret) == foreign
    before = store.export_state()
    for call in (t1.rotate_api_key, t1.revoke_api_key):
        with pytest.raises(ApiKeyNotFoundError) as seen:
            call(foreign.id)
        with pytest.raises(ApiKeyNotFoundError) as unknown:
            call("key_999999")
        assert str(seen.value) == str(unknown.value).replace("key_999999", foreign.id)
        assert type(seen.value) is type(unknown.value)
    with pytest.raises(TenantMismatchError):
        t1.create_api_key("t2", {"cashier"})
    assert store.export_state() == before
    assert admin.authenticate(foreign_secret) == foreign


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(("call", "field"), [
    (lambda s: s.create_api_key("t 1", {"cashier"}), "tenant_id"),
    (lambda s: s.create_api_key("t1", set()), "roles"),
    (lambda s: s.create_api_key("t1", "cashier"), "roles"),
    (lambda s: s.create_api_key("t1", {"cash ier"}), "roles"),
    (lambda s: s.create_api_key("t1", {""}), "roles"),
    (lambda s: s.create_api_key("t1", None), "roles"),
    (lambda s: s.create_api_key("t1", {"cashier"}, "  "), "name"),
    (lambda s: s.create_api_key("t1", {"cashier"}, 7), "name"),
    (lambda s: s.rotate_api_key("key 1"), "key_id"),
    (lambda s: s.rotate_api_key(s.api_keys("t1")[0].id, timedelta(seconds=-1)), "grace"),
    (lambda s: s.rotate_api_key(s.api_keys("t1")[0].id, 60), "grace"),  # type: ignore[arg-type]
    (lambda s: s.rotate_api_key(s.api_keys("t1")[0].id, timedelta.max), "grace"),
    (lambda s: s.revoke_api_key(""), "key_id"),
    (lambda s: s.api_keys("t/1"), "tenant_id"),
])
def test_bad_input_names_the_field_and_changes_nothing(store: Store, call: Any,
                                                       field: str) -> None:
    svc, _ = service(store)
    key, secret = svc.create_api_key("t1", {"cashier"})
    before = store.export_state()
    with pytest.raises(InvalidInputError) as caught:
        call(svc)
    assert caught.value.field == field
    assert store.export_state() == before
    assert svc.authenticate(secret) == key


# -- the command line ------------------------------------------------------------------------


def cli(db: str, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["--db", db, *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_key_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'keys.db'}"
    assert cli(db, "init", capsys=capsys)[0] == ExitCode.OK

    code, out, _ = cli(db, "--json", "key", "create", "--tenant", "t1", "--role", "cashier",
                       "--role", "refunds", "--name", "till 3", capsys=capsys)
    assert code == ExitCode.OK
    created = json.loads(out)
    check_json_convention(created)
    key_id, secret = created["id"], created["secret"]
    assert created["roles"] == ["cashier", "refunds"]
    assert created["name"] == "till 3"
    assert secret.startswith(f"pwk_{key_id}_")

    code, out, _ = cli(db, "key", "create", "--tenant", "t1", "--role", "cashier",
                       capsys=capsys)
    assert code == ExitCode.OK
    assert "secret" in out
    assert "shown this once" in out

    code, out, _ = cli(db, "--json", "key", "list", "--tenant", "t1", capsys=capsys)
    listed = [json.loads(line) for line in out.splitlines()]
    assert next(k["id"] for k in listed) == key_id
    assert len(listed) == 2
    assert "secret" not in listed[0]
    assert random_part(secret) not in out
    code, out, _ = cli(db, "key", "list", "--tenant", "t1", capsys=capsys)
    assert key_id in out
    assert random_part(secret) not in out
    assert cli(db, "key", "list", "--tenant", "t2", capsys=capsys)[1] == "no API keys\n"

    code, out, _ = cli(db, "--json", "key", "rotate", key_id, "--grace", "2h", capsys=capsys)
    assert code == ExitCode.OK
    rotated = json.loads(out)["secret"]
    store = open_store(db)
    try:
        svc = WalletService(store)
        assert svc.authenticate(secret).id == svc.authenticate(rotated).id == key_id
        assert svc.api_keys("t1")[0].previous_until is not None
    finally:
        store.close()

    code, out, _ = cli(db, "key", "rotate", key_id, capsys=capsys)
    assert code == ExitCode.OK
    assert "shown this once" in out
    newest = next(line.split()[-1] for line in out.splitlines() if line.startswith("secret"))
    code, out, _ = cli(db, "--json", "key", "revoke", key_id, capsys=capsys)
    assert code == ExitCode.OK
    assert json.loads(out)["revoked_at"] is not None
    store = open_store(db)
    try:
        svc = WalletService(store)
        for each in (secret, rotated, newest):
            with pytest.raises(AuthenticationError):
                svc.authenticate(each)
    finally:
        store.close()

    assert cli(db, "key", "rotate", key_id, capsys=capsys)[0] == ExitCode.REFUSED
    assert cli(db, "key", "revoke", "key_nope", capsys=capsys)[0] == ExitCode.NOT_FOUND
    code, _, err = cli(db, "key", "create", "--tenant", "t1", "--role", "a b", capsys=capsys)
    assert code == ExitCode.USAGE
    assert "roles" in err
    code, _, err = cli(db, "key", "rotate", key_id, "--grace", "2w", capsys=capsys)
    assert code == ExitCode.USAGE
    assert "--grace" in err


def test_key_create_needs_a_role(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'keys.db'}"
    assert cli(db, "init", capsys=capsys)[0] == ExitCode.OK
    code, _, err = cli(db, "key", "create", "--tenant", "t1", capsys=capsys)
    assert code == ExitCode.USAGE
    assert "--role" in err


def test_the_key_command_in_a_process_of_its_own(tmp_path: Path) -> None:
    import subprocess

    db = f"sqlite:///{tmp_path / 'keys.db'}"
    made = [subprocess.run([sys.executable, "-m", "prepaid_wallet", "--db", db, *args],
                           capture_output=True, text=True, timeout=120, check=False)
            for args in (("init",), ("--json", "key", "create", "--tenant", "t1", "--role",
                                     "cashier"))]
    assert [m.returncode for m in made] == [0, 0], made[-1].stderr
    secret = json.loads(made[-1].stdout)["secret"]
    store = open_store(db)
    try:
        assert WalletService(store).authenticate(secret).roles == frozenset({"cashier"})
    finally:
        store.close()
