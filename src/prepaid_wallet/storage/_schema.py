"""The one logical schema of the SQL stores and its one migration list (private).

Every SQL backend builds the same tables, columns, indexes and constraints from the DDL declared
here, rendered for its :class:`~prepaid_wallet.storage._dialect.Dialect`:

* the DDL is written once, with a logical type where the dialects differ: ``{id}`` (text that
  is compared and sorted byte by byte: ids, codes, names), ``{int}`` (a 64-bit integer: amounts
  in minor units, versions, sequence numbers), ``{instant}`` (an aware instant), ``{flag}`` and
  its ``{false}`` (a boolean), ``{serial}`` (an integer key the database draws, in insertion
  order); ``{p}`` before a table or index name puts it in the store's schema where the dialect
  has schemas, ``{clustered}`` after a table stores it by its primary key where the dialect
  chooses, ``{no_expiry}`` / ``{expiry_or_grant}`` are the two expressions of the live-lot
  order, and ``{json_object}``, ``{json}`` and ``{sortable_created_at}`` build the JSON and the
  order of the records version 7 moves from older tables;
* :data:`MIGRATIONS` lists, for each schema version, the DDL every dialect runs and the name of
  the dialect *hook* that follows it: the DDL that exists in one dialect only (SQLite's
  triggers, PostgreSQL's functions and sequence, a physical layout of one dialect's own).
  Version 1 creates; each later version migrates the one before;
* :func:`render` gives a dialect's scripts by version, given its hooks. A new database is
  built by version 1 and then every migration, in the one transaction that opens it, so a new
  database and a migrated one have the same schema; :func:`versions_to_run` says which
  migrations an existing one needs.

The column lists the statements read and write by (``WALLET_COLS`` …) live here too: a row
mapper of :mod:`prepaid_wallet.storage._rows` reads the columns in the order given here.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from prepaid_wallet.errors import SchemaVersionError, StorageError
from prepaid_wallet.storage._dialect import Dialect

__all__ = [
    "CHARGE_COLS",
    "ENTRY_COLS",
    "EVENT_COLS",
    "GROUP_COLS",
    "HISTORY_COLS",
    "HOLD_COLS",
    "HOOKS",
    "IDEMPOTENCY_COLS",
    "LOT_COLS",
    "MIGRATIONS",
    "RECORD_COLS",
    "SCHEMA_VERSION",
    "SEAL_VERSION",
    "TRIGGER",
    "WALLET_COLS",
    "Step",
    "live_order",
    "names",
    "render",
    "versions_to_run",
]

#: The schema version this library writes and reads.
SCHEMA_VERSION = 10

#: The version that gave every sealed table its ``seal`` column: a store migrated to it (or
#: past it) from an older one has every such row sealed in the migration's transaction
#: (:func:`prepaid_wallet.storage._sealing.seal_all`).
SEAL_VERSION = 9

#: Every message raised by one of the schema's own triggers or functions starts with this.
TRIGGER = "prepaid_wallet:"

# -- the columns statements read and write by ------------------------------------------------------

WALLET_COLS = (
    "id, tenant_id, owner_id, currency, floor, created_at, open, commerce, held, status,"
    " version, head, metadata, last_at"
)
LOT_COLS = (
    "id, wallet_id, currency, amount, remaining, granted_at, expires_at, priority, reason,"
    " entry_id, expired_entry_id, condition, group_id, group_version, conditioned"
)
GROUP_COLS = "id, tenant_id, name, version, condition, valid_from, valid_until"
HOLD_COLS = (
    "id, wallet_id, currency, amount, allocation, created_at, expires_at, entry_id, status,"
    " captured, resolved_entry_id, resolved_at"
)
CHARGE_COLS = "entry_id, wallet_id, currency, amount, allocation, refunded"
ENTRY_COLS = (
    "seq, id, kind, effective_at, recorded_at, wallet_ids, prev_hashes, idempotency_key, actor,"
    " metadata, refund_of, reverses, hash"
)
IDEMPOTENCY_COLS = "scope, key, operation, request, outcome, payload, created_at"
EVENT_COLS = "id, tenant_id, wallet_id, kind, created_at, payload"
#: What a balance snapshot is read from (``wallet_history``).
HISTORY_COLS = "wallet_id, entry_id, recorded_at, currency, open, commerce, held"
#: The columns of ``records``, in the order of
#: :class:`~prepaid_wallet.storage.base.RecordRow`'s fields.
RECORD_COLS = "kind, key, tenant_id, wallet_id, tag, uniq, sort, data"


def names(cols: str) -> tuple[str, ...]:
    """The column names of a column list."""
    return tuple(c.strip() for c in cols.split(","))


#: Each term of the default spend order (``policies.DEFAULT_ORDER``) as the lots table sorts by
#: it (the columns ``lots_live`` indexes).
_ORDER_COLUMNS = {
    "unconditioned": "conditioned DESC", "priority": "priority", "no_expiry": "{no_expiry}",
    "expiry_or_grant": "{expiry_or_grant}", "granted_at": "granted_at", "id": "id",
}


def live_order(dialect: Dialect) -> str:
    """The ``ORDER BY`` of live lots in default spend order (what ``lots_live`` indexes),
    rendered from the domain's declaration of the order, term by term."""
    from prepaid_wallet.policies import DEFAULT_ORDER

    return ", ".join(_ORDER_COLUMNS[name] for name, _ in DEFAULT_ORDER).format_map(dialect.types)


def first_end_sql(dialect: Dialect, end: str, other: str) -> str:
    """:func:`prepaid_wallet.expiry.first_end` in the dialect's SQL: the first of two ends,
    NULL being no end. When a lot falls due is ``first_end_sql(d, "ends_at", <its group's
    end>)``: its own end or its group's, whichever is first."""
    return dialect.first_end.format(end=end, other=other)


# -- the logical schema, version by version --------------------------------------------------------

#: Version 1, as first released: wallets, lots, holds, charges, the journal (entries, their
#: postings with the balance after each, each wallet's balances after each entry) and
#: idempotency records. Hook ``journal``: what keeps the journal append-only and balanced, and
#: what else the dialect's journal needs.
_V1 = """
CREATE TABLE {p}meta (
    key {id} PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE {p}wallets (
    id {id} PRIMARY KEY,
    tenant_id {id} NOT NULL,
    owner_id {id} NOT NULL,
    currency {id} NOT NULL,
    floor {int} NOT NULL,
    created_at {instant} NOT NULL,
    open {int} NOT NULL,
    commerce {int} NOT NULL,
    held {int} NOT NULL,
    status {id} NOT NULL,
    version {int} NOT NULL CHECK (version >= 0),
    head {id} NOT NULL,
    metadata TEXT NOT NULL,
    UNIQUE (tenant_id, owner_id, currency)
);
CREATE INDEX wallets_by_tenant ON {p}wallets (tenant_id, id);
CREATE TABLE {p}lots (
    id {id} PRIMARY KEY,
    wallet_id {id} NOT NULL REFERENCES {p}wallets (id),
    currency {id} NOT NULL,
    amount {int} NOT NULL,
    remaining {int} NOT NULL CHECK (remaining >= 0),
    granted_at {instant} NOT NULL,
    expires_at {instant},
    priority {int} NOT NULL,
    reason TEXT NOT NULL,
    entry_id {id} NOT NULL,
    expired_entry_id {id}
);
CREATE INDEX lots_by_wallet ON {p}lots (wallet_id, granted_at, id);
CREATE INDEX lots_live ON {p}lots (
    wallet_id, priority, {no_expiry}, {expiry_or_grant}, granted_at, id
) WHERE remaining > 0;
CREATE INDEX lots_due ON {p}lots (expires_at, id)
    WHERE remaining > 0 AND expires_at IS NOT NULL;
CREATE INDEX lots_due_by_wallet ON {p}lots (wallet_id, expires_at, id)
    WHERE remaining > 0 AND expires_at IS NOT NULL;
CREATE TABLE {p}holds (
    id {id} PRIMARY KEY,
    wallet_id {id} NOT NULL REFERENCES {p}wallets (id),
    currency {id} NOT NULL,
    amount {int} NOT NULL,
    allocation TEXT NOT NULL,
    created_at {instant} NOT NULL,
    expires_at {instant} NOT NULL,
    entry_id {id} NOT NULL,
    status {id} NOT NULL,
    captured {int},
    resolved_entry_id {id},
    resolved_at {instant}
);
CREATE INDEX holds_by_wallet ON {p}holds (wallet_id, created_at, id);
CREATE INDEX holds_due ON {p}holds (expires_at, id) WHERE status = 'active';
CREATE TABLE {p}charges (
    entry_id {id} PRIMARY KEY,
    wallet_id {id} NOT NULL REFERENCES {p}wallets (id),
    currency {id} NOT NULL,
    amount {int} NOT NULL,
    allocation TEXT NOT NULL,
    refunded TEXT NOT NULL
);
CREATE TABLE {p}entries (
    seq {int} PRIMARY KEY,
    id {id} NOT NULL UNIQUE,
    kind {id} NOT NULL,
    effective_at {instant} NOT NULL,
    recorded_at {instant} NOT NULL,
    wallet_ids TEXT NOT NULL,
    prev_hashes TEXT NOT NULL,
    idempotency_key TEXT,
    actor TEXT,
    metadata TEXT NOT NULL,
    refund_of {id},
    reverses {id},
    hash TEXT NOT NULL
);
CREATE INDEX entries_by_reverses ON {p}entries (reverses) WHERE reverses IS NOT NULL;
CREATE TABLE {p}postings (
    entry_seq {int} NOT NULL,
    entry_id {id} NOT NULL REFERENCES {p}entries (id) DEFERRABLE INITIALLY DEFERRED,
    position INTEGER NOT NULL,
    account {id} NOT NULL,
    minor {int} NOT NULL CHECK (minor != 0),
    currency {id} NOT NULL,
    recorded_at {instant} NOT NULL,
    balance_after {int},
    PRIMARY KEY (entry_seq, position)
);
CREATE INDEX postings_by_entry ON {p}postings (entry_id);
CREATE INDEX postings_as_of ON {p}postings (account, recorded_at, entry_seq);
CREATE INDEX postings_latest ON {p}postings (account, entry_seq);
CREATE TABLE {p}wallet_history (
    wallet_id {id} NOT NULL REFERENCES {p}wallets (id),
    entry_seq {int} NOT NULL,
    entry_id {id} NOT NULL,
    recorded_at {instant} NOT NULL,
    currency {id} NOT NULL,
    open {int} NOT NULL,
    commerce {int} NOT NULL,
    held {int} NOT NULL,
    PRIMARY KEY (wallet_id, entry_seq)
);
CREATE INDEX wallet_history_as_of ON {p}wallet_history (wallet_id, recorded_at, entry_seq);
CREATE TABLE {p}idempotency (
    scope {id} NOT NULL,
    key {id} NOT NULL,
    operation TEXT NOT NULL,
    request TEXT NOT NULL,
    outcome TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at {instant} NOT NULL,
    PRIMARY KEY (scope, key)
);
"""

#: Version 3: condition groups, and lots that carry spend conditions. A lot records whether it
#: is conditioned (conditioned lots pay first: the live index leads with it), when it ends
#: whatever its group does (``ends_at``: its own expiry or its conditions' end) and when it
#: falls due: that or its group's end, whichever is first (the due indexes read that; a group's
#: live lots are found by ``lots_by_group`` when its end moves).
_V3 = """
CREATE TABLE {p}condition_groups (
    id {id} PRIMARY KEY,
    tenant_id {id} NOT NULL,
    name {id} NOT NULL,
    version {int} NOT NULL CHECK (version >= 1),
    condition TEXT NOT NULL,
    valid_from {instant},
    valid_until {instant}
);
CREATE INDEX condition_groups_by_name ON {p}condition_groups (tenant_id, name, id);
ALTER TABLE {p}lots ADD COLUMN condition TEXT;
ALTER TABLE {p}lots ADD COLUMN group_id {id} REFERENCES {p}condition_groups (id);
ALTER TABLE {p}lots ADD COLUMN group_version {int};
ALTER TABLE {p}lots ADD COLUMN conditioned {flag} NOT NULL DEFAULT {false};
ALTER TABLE {p}lots ADD COLUMN ends_at {instant};
ALTER TABLE {p}lots ADD COLUMN due_at {instant};
UPDATE {p}lots SET ends_at = expires_at, due_at = expires_at WHERE expires_at IS NOT NULL;
DROP INDEX {p}lots_live;
CREATE INDEX lots_live ON {p}lots (
    wallet_id, conditioned DESC, priority, {no_expiry}, {expiry_or_grant},
    granted_at, id
) WHERE remaining > 0;
DROP INDEX {p}lots_due;
CREATE INDEX lots_due ON {p}lots (due_at, id) WHERE remaining > 0 AND due_at IS NOT NULL;
DROP INDEX {p}lots_due_by_wallet;
CREATE INDEX lots_due_by_wallet ON {p}lots (wallet_id, due_at, id)
    WHERE remaining > 0 AND due_at IS NOT NULL;
CREATE INDEX lots_by_group ON {p}lots (group_id, id) WHERE remaining > 0 AND group_id IS NOT NULL;
"""

#: Version 4: wallet settings (limits overrides, owner groups, automatic top-up rules): text
#: values by wallet and name, stored by that key (the way they are read). A setting names a
#: stored wallet.
_V4 = """
CREATE TABLE {p}wallet_settings (
    wallet_id {id} NOT NULL REFERENCES {p}wallets (id),
    name {id} NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (wallet_id, name)
){clustered};
"""

#: Version 5: the events outbox (low-balance reminders and the like), written with the unit
#: that caused them. ``seq`` is the commit order; an acknowledged event stays, with the instant
#: it was acknowledged, and leaves the index of pending events, which is read by tenant in
#: commit order.
_V5 = """
CREATE TABLE {p}events (
    seq {serial} PRIMARY KEY,
    id {id} NOT NULL UNIQUE,
    tenant_id {id} NOT NULL,
    wallet_id {id} NOT NULL,
    kind {id} NOT NULL,
    created_at {instant} NOT NULL,
    payload TEXT NOT NULL,
    acked_at {instant}
);
CREATE INDEX events_pending ON {p}events (tenant_id, seq) WHERE acked_at IS NULL;
"""

#: Version 6: automatic top-up intents, stored as the JSON of ``TopUpIntent.to_data`` next to
#: the columns they are found by. A wallet has at most one pending intent (the database itself
#: refuses a second: the partial unique index); the pending ones of every tenant are read
#: oldest first from an index of their own.
_V6 = """
CREATE TABLE {p}top_up_intents (
    id {id} PRIMARY KEY,
    tenant_id {id} NOT NULL,
    wallet_id {id} NOT NULL REFERENCES {p}wallets (id),
    status {id} NOT NULL,
    created_at {instant} NOT NULL,
    data TEXT NOT NULL
);
CREATE UNIQUE INDEX top_up_intents_one_pending ON {p}top_up_intents (wallet_id)
    WHERE status = 'pending';
CREATE INDEX top_up_intents_pending ON {p}top_up_intents (created_at, id)
    WHERE status = 'pending';
"""

#: Version 7: records, the one table every record type
#: (:class:`~prepaid_wallet.storage.base.RecordType`) is stored in: its kind and key (the
#: primary key), the tenant, the wallet it belongs to (if any, a stored wallet), its tag, its
#: unique value (no two records of a kind share one: the partial unique index), the text it is
#: ordered by and its JSON. Each of tenant, wallet and tag leads an index of the kind, in the
#: records' order. Wallet settings and automatic top-up intents become records (the rows of
#: ``wallet_settings`` and ``top_up_intents`` move, the same data, as the record types
#: ``wallet_setting`` and ``top_up_intent`` of :mod:`prepaid_wallet.app.settings` and
#: :mod:`prepaid_wallet.app.intents` store them) and their tables are dropped: nothing reads
#: them any more, and a copy left behind could only go stale.
_V7 = """
CREATE TABLE {p}records (
    kind {id} NOT NULL,
    key {id} NOT NULL,
    tenant_id {id} NOT NULL,
    wallet_id {id} REFERENCES {p}wallets (id),
    tag {id},
    uniq {id},
    sort {id} NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (kind, key)
){clustered};
CREATE INDEX records_by_tenant ON {p}records (kind, tenant_id, sort, key);
CREATE INDEX records_by_wallet ON {p}records (kind, wallet_id, sort, key)
    WHERE wallet_id IS NOT NULL;
CREATE INDEX records_by_tag ON {p}records (kind, tag, sort, key) WHERE tag IS NOT NULL;
CREATE UNIQUE INDEX records_unique ON {p}records (kind, uniq) WHERE uniq IS NOT NULL;
INSERT INTO {p}records (kind, key, tenant_id, wallet_id, tag, uniq, sort, data)
    SELECT 'wallet_setting', s.wallet_id || '/' || s.name, w.tenant_id, s.wallet_id, s.name,
        NULL, s.wallet_id || '/' || s.name,
        {json_object}('name', s.name, 'tenant_id', w.tenant_id, 'value', s.value,
                      'wallet_id', s.wallet_id)
    FROM {p}wallet_settings s JOIN {p}wallets w ON w.id = s.wallet_id;
INSERT INTO {p}records (kind, key, tenant_id, wallet_id, tag, uniq, sort, data)
    SELECT 'top_up_intent', id, tenant_id, wallet_id, status,
        CASE WHEN status = 'pending' THEN wallet_id END, {sortable_created_at},
        {json_object}('intent', {json}(data), 'tenant_id', tenant_id)
    FROM {p}top_up_intents;
DROP TABLE {p}wallet_settings;
DROP TABLE {p}top_up_intents;
"""

#: Version 8: each wallet keeps the recorded instant of its latest entry (``last_at``, NULL
#: before its first), read with the wallet when it is locked: a unit never records the
#: wallet's next entry before it (recorded time never goes backwards along a wallet's chain).
#: Stored wallets take the latest instant of their balance history.
_V8 = """
ALTER TABLE {p}wallets ADD COLUMN last_at {instant};
UPDATE {p}wallets SET last_at = (
    SELECT max(h.recorded_at) FROM {p}wallet_history h WHERE h.wallet_id = {p}wallets.id
);
"""

#: Version 9: seals. Every row of a table that is not the journal carries a seal
#: (:mod:`prepaid_wallet.seals`) over what it holds; rows written before are sealed by
#: the migration itself, after this DDL, in the same transaction.
_V9 = """
ALTER TABLE {p}wallets ADD COLUMN seal TEXT;
ALTER TABLE {p}lots ADD COLUMN seal TEXT;
ALTER TABLE {p}holds ADD COLUMN seal TEXT;
ALTER TABLE {p}charges ADD COLUMN seal TEXT;
ALTER TABLE {p}idempotency ADD COLUMN seal TEXT;
ALTER TABLE {p}condition_groups ADD COLUMN seal TEXT;
ALTER TABLE {p}events ADD COLUMN seal TEXT;
ALTER TABLE {p}records ADD COLUMN seal TEXT;
"""


@attrs.frozen
class Step:
    """One schema version: the DDL every dialect runs (logical types and tokens, see the
    module docstring), then the DDL of the dialect's ``hook`` of that name, if any."""

    version: int
    ddl: str
    hook: str | None = None


#: The one migration list: version 1 creates, each later step turns the version before into
#: its own. Hooks: ``journal`` -- what keeps the journal append-only and balanced (and, where
#: the dialect needs one, its sequence); ``write_path`` -- version 2, which made a write cheaper
#: in a way of the dialect's own (SQLite: tables stored by the key they are read by; PostgreSQL:
#: the functions a commit and its balance check run); ``write_unit`` -- what writes a unit's
#: changes in the database itself, where the dialect does that (recreated by the last version
#: that changes what a unit writes); ``write_unit_6`` to ``write_unit_9`` -- the same as
#: versions 6 to 9 created it (so that a new database passes through exactly what an older one
#: held). Version 10 changes nothing every dialect has: on PostgreSQL, ``write_unit`` checks
#: what an optimistic unit decided on.
MIGRATIONS: tuple[Step, ...] = (
    Step(1, _V1, hook="journal"),
    Step(2, "", hook="write_path"),
    Step(3, _V3),
    Step(4, _V4),
    Step(5, _V5),
    Step(6, _V6, hook="write_unit_6"),
    Step(7, _V7, hook="write_unit_7"),
    Step(8, _V8, hook="write_unit_8"),
    Step(9, _V9, hook="write_unit_9"),
    Step(10, "", hook="write_unit"),
)

#: The hook names a dialect must give DDL for (an empty text where it has nothing to add).
HOOKS = frozenset(step.hook for step in MIGRATIONS if step.hook is not None)


def render(dialect: Dialect, hooks: Mapping[str, str]) -> dict[int, str]:
    """Each version's script in ``dialect``: its DDL with the logical types and tokens
    replaced, then the DDL ``hooks`` gives for its hook. ``ValueError`` unless ``hooks`` names
    exactly the hooks of :data:`MIGRATIONS` (an empty text where the dialect adds nothing)."""
    if set(hooks) != HOOKS:
        raise ValueError(f"dialect {dialect.name!r} must give the hooks {sorted(HOOKS)}")
    return {
        step.version: step.ddl.format_map(dialect.types)
        + ("" if step.hook is None else hooks[step.hook])
        for step in MIGRATIONS
    }


def versions_to_run(found: int, scripts: Mapping[int, str]) -> range:
    """The migrations that bring a database at schema version ``found`` to
    :data:`SCHEMA_VERSION`. ``SchemaVersionError`` for a newer version (written by a newer
    library); ``StorageError`` for a version no library wrote, or one ``scripts`` cannot
    migrate."""
    if found > SCHEMA_VERSION:
        raise SchemaVersionError(found, SCHEMA_VERSION)
    steps = range(found + 1, SCHEMA_VERSION + 1)
    if found < 1 or any(version not in scripts for version in steps):
        raise StorageError(
            f"the database has no usable schema version ({found}); it was not written by this"
            " library"
        )
    return steps

