"""PostgreSQL's own DDL (private): the hooks of the one migration list
(:mod:`prepaid_wallet.storage._schema`) that exist in PostgreSQL only -- the entry sequence and
the journal's triggers (version 1), the functions a commit and its balance check run (version
2), and ``write_unit``, which writes a unit's changes in one call
(:meth:`~prepaid_wallet.storage.postgres.PostgresUnitOfWork._flush`) -- and the SQLSTATEs its
functions raise, which :mod:`prepaid_wallet.storage.postgres` translates.

Every script is sent as one simple query (no parameters, so ``%`` is passed through to
PL/pgSQL); ``{s}`` in it is the quoted schema name.
"""

from __future__ import annotations

import prepaid_wallet.storage._schema as _schema
from prepaid_wallet.storage._dialect import POSTGRES
from prepaid_wallet.storage._postgres_history import WRITE_UNIT_6, WRITE_UNIT_7, WRITE_UNIT_8

__all__ = ["HOOKS", "NO_WALLET", "RECORD_MOVED", "STALE"]

_TRIGGER = _schema.TRIGGER
#: Raised by ``wallet_moved()``: a wallet's stored version is not the one a unit built on (the
#: wallet, the expected and the found version in the detail, as JSON).
STALE = "PW001"
#: Raised by ``write_unit`` for a record (before version 7: a setting or a top-up intent) of a
#: wallet that is not stored (the wallet id in the detail).
NO_WALLET = "PW002"
#: Raised by ``write_unit`` (version 10) when a record an optimistic unit decided on is no
#: longer stored as it saw it (the kind and key in the detail).
RECORD_MOVED = "PW003"

#: Hook ``journal`` (version 1): the sequence entries draw their numbers from; triggers keep
#: the journal append-only, and a deferred constraint trigger checks, at commit, that each
#: entry's postings are at least two and sum to zero per currency.
_JOURNAL = f"""CREATE SEQUENCE {{s}}.entry_seq;
CREATE FUNCTION {{s}}.append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{_TRIGGER} the journal is append-only (%)', TG_TABLE_NAME;
END
$$;
CREATE FUNCTION {{s}}.entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    eid TEXT;
BEGIN
    IF TG_TABLE_NAME = 'entries' THEN
        eid := NEW.id;
    ELSE
        eid := NEW.entry_id;
    END IF;
    IF (SELECT count(*) FROM {{s}}.postings WHERE entry_id = eid) < 2 THEN
        RAISE EXCEPTION '{_TRIGGER} entry % needs at least two non-zero postings', eid;
    END IF;
    IF EXISTS (
        SELECT 1 FROM {{s}}.postings WHERE entry_id = eid GROUP BY currency HAVING sum(minor) <> 0
    ) THEN
        RAISE EXCEPTION
            '{_TRIGGER} unbalanced entry %: postings must sum to zero per currency', eid;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON {{s}}.entries
    FOR EACH ROW EXECUTE FUNCTION {{s}}.append_only();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON {{s}}.entries
    FOR EACH STATEMENT EXECUTE FUNCTION {{s}}.append_only();
CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON {{s}}.postings
    FOR EACH ROW EXECUTE FUNCTION {{s}}.append_only();
CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON {{s}}.postings
    FOR EACH STATEMENT EXECUTE FUNCTION {{s}}.append_only();
CREATE TRIGGER wallet_history_append_only BEFORE UPDATE OR DELETE ON {{s}}.wallet_history
    FOR EACH ROW EXECUTE FUNCTION {{s}}.append_only();
CREATE TRIGGER wallet_history_no_truncate BEFORE TRUNCATE ON {{s}}.wallet_history
    FOR EACH STATEMENT EXECUTE FUNCTION {{s}}.append_only();
CREATE CONSTRAINT TRIGGER entries_balanced AFTER INSERT ON {{s}}.entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {{s}}.entry_balanced();
CREATE CONSTRAINT TRIGGER postings_balanced AFTER INSERT ON {{s}}.postings
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {{s}}.entry_balanced();
"""

#: Hook ``write_path`` (version 2): a unit's writes are applied by one function call, sent with
#: its COMMIT; the balance check at commit reads an entry's postings once, not twice; the
#: balance after a posting no longer reads the account's last posting, so the index that served
#: that read goes.
_WRITE_PATH = f"""
CREATE FUNCTION {{s}}.wallet_moved(p_wallet TEXT, p_expected BIGINT) RETURNS VOID
LANGUAGE plpgsql AS $$
DECLARE
    actual BIGINT;
BEGIN
    SELECT version INTO actual FROM {{s}}.wallets WHERE id = p_wallet;
    actual := coalesce(actual, 0);
    RAISE EXCEPTION '{_TRIGGER} wallet % is at version %, not %', p_wallet, actual, p_expected
        USING ERRCODE = '{STALE}',
              DETAIL = json_build_array(p_wallet, p_expected, actual)::text;
END
$$;
CREATE OR REPLACE FUNCTION {{s}}.entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    eid TEXT;
    n BIGINT;
    unbalanced BOOLEAN;
BEGIN
    IF TG_TABLE_NAME = 'entries' THEN
        eid := NEW.id;
    ELSE
        eid := NEW.entry_id;
    END IF;
    SELECT coalesce(sum(per.n), 0), coalesce(bool_or(per.total <> 0), false)
        INTO n, unbalanced
        FROM (
            SELECT count(*) AS n, sum(minor) AS total FROM {{s}}.postings
            WHERE entry_id = eid GROUP BY currency
        ) AS per;
    IF n < 2 THEN
        RAISE EXCEPTION '{_TRIGGER} entry % needs at least two non-zero postings', eid;
    END IF;
    IF unbalanced THEN
        RAISE EXCEPTION
            '{_TRIGGER} unbalanced entry %: postings must sum to zero per currency', eid;
    END IF;
    RETURN NULL;
END
$$;
DROP INDEX {{s}}.postings_latest;
"""

_LOT_COLS = _schema.LOT_COLS
_GROUP_COLS = _schema.GROUP_COLS
_EVENT_COLS = _schema.EVENT_COLS
_LOT_NAMES = _schema.names(_LOT_COLS)


def _first_end(end: str, other: str) -> str:
    """When a lot falls due: the domain's rule (``expiry.first_end``) in PostgreSQL's SQL."""
    return _schema.first_end_sql(POSTGRES, end, other)


#: The end of the group of lot ``v`` (laid out as the function's source has always had it).
_GROUP_END = """(SELECT c.valid_until FROM {s}.condition_groups c
                                            WHERE c.id = v.group_id)"""
_ENTRY_COLS = _schema.ENTRY_COLS
_ENTRY_NAMES = _schema.names(_ENTRY_COLS)[1:]  # but seq, drawn by write_unit
_RECORD_COLS = _schema.RECORD_COLS
#: The columns of ``entries`` but ``seq``, as ``v.<name>``.
_NO_SEQ = ", ".join(f"v.{name}" for name in _ENTRY_NAMES)
_POSTING_COLS = (
    "entry_seq, entry_id, position, account, minor, currency, recorded_at, balance_after"
)
_HISTORY_ROW_COLS = (
    "wallet_id, entry_seq, entry_id, recorded_at, currency, open, commerce, held"
)


#: ``write_unit(p JSONB)``: every write of a unit in one call (see
#: :meth:`prepaid_wallet.storage.postgres.PostgresUnitOfWork._flush`), built from its parts.
#: Migrations always run to the latest version, in one transaction, so only the last migration
#: that changes what a unit writes (re)creates it (hook ``write_unit``); what versions 6, 7
#: and 8 created (hooks ``write_unit_6``, ``write_unit_7``, ``write_unit_8``) is kept as it
#: was, in :mod:`prepaid_wallet.storage._postgres_history`, and replaced before anything
#: calls it.
_UNIT_HEAD = """
CREATE OR REPLACE FUNCTION {s}.write_unit(p JSONB) RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    w RECORD;
    g RECORD;
    old_until TIMESTAMPTZ;
    missing TEXT;
BEGIN
"""
#: Condition groups first (a group whose end moved moves its live lots), then new and changed
#: wallets.
_UNIT_WALLETS = f"""    IF p ? 'groups' THEN
        FOR g IN
            SELECT * FROM jsonb_populate_recordset(NULL::{{s}}.condition_groups, p -> 'groups')
        LOOP
            SELECT c.valid_until INTO old_until FROM {{s}}.condition_groups c
                WHERE c.id = g.id FOR UPDATE;
            IF FOUND AND old_until IS DISTINCT FROM g.valid_until THEN
                UPDATE {{s}}.lots SET due_at = {_first_end('ends_at', 'g.valid_until')}
                    WHERE group_id = g.id AND remaining > 0;
            END IF;
            INSERT INTO {{s}}.condition_groups ({_GROUP_COLS}, seal)
                VALUES (g.id, g.tenant_id, g.name, g.version, g.condition, g.valid_from,
                        g.valid_until, g.seal)
                ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id,
                    name = excluded.name, version = excluded.version,
                    condition = excluded.condition, valid_from = excluded.valid_from,
                    valid_until = excluded.valid_until, seal = excluded.seal;
        END LOOP;
    END IF;
    IF p ? 'new_wallets' THEN
        INSERT INTO {{s}}.wallets
            SELECT * FROM jsonb_populate_recordset(NULL::{{s}}.wallets, p -> 'new_wallets');
    END IF;
    IF p ? 'wallets' THEN
        FOR w IN
            SELECT * FROM jsonb_to_recordset(p -> 'wallets') AS v (
                id TEXT, base BIGINT, open BIGINT, commerce BIGINT, held BIGINT, status TEXT,
                version BIGINT, head TEXT, last_at TIMESTAMPTZ, seal TEXT
            )
        LOOP
            UPDATE {{s}}.wallets SET open = w.open, commerce = w.commerce, held = w.held,
                status = w.status, version = w.version, head = w.head, last_at = w.last_at,
                seal = w.seal
                WHERE id = w.id AND version = w.base;
            IF NOT FOUND THEN
                PERFORM {{s}}.wallet_moved(w.id, w.base);
            END IF;
        END LOOP;
    END IF;
"""
#: Version 7: records, after the wallets they name (``PW002`` for the first one of an unknown
#: wallet): removals, then the unique value of each record rewritten is let go (records may
#: trade values within a unit), then every record is upserted; a unique value another record
#: holds violates ``records_unique``.
_UNIT_RECORDS = f"""    IF p ? 'records' OR p ? 'record_deletes' THEN
        SELECT v.wallet_id INTO missing
            FROM jsonb_populate_recordset(NULL::{{s}}.records, p -> 'records')
                WITH ORDINALITY AS v
            WHERE v.wallet_id IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM {{s}}.wallets x WHERE x.id = v.wallet_id)
            ORDER BY v.ordinality LIMIT 1;
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION '{_TRIGGER} a record refers to an unknown wallet (%)', missing
                USING ERRCODE = '{NO_WALLET}', DETAIL = missing;
        END IF;
        DELETE FROM {{s}}.records t
            USING jsonb_to_recordset(p -> 'record_deletes') AS v (kind TEXT, key TEXT)
            WHERE t.kind = v.kind AND t.key = v.key;
        UPDATE {{s}}.records t SET uniq = NULL
            FROM jsonb_populate_recordset(NULL::{{s}}.records, p -> 'records') AS v
            WHERE t.kind = v.kind AND t.key = v.key AND t.uniq IS NOT NULL
                AND t.uniq IS DISTINCT FROM v.uniq;
        INSERT INTO {{s}}.records ({_RECORD_COLS}, seal)
            SELECT {", ".join(f"v.{name}" for name in _schema.names(_RECORD_COLS))}, v.seal
            FROM jsonb_populate_recordset(NULL::{{s}}.records, p -> 'records')
                WITH ORDINALITY AS v
            ORDER BY v.ordinality
            ON CONFLICT (kind, key) DO UPDATE SET tenant_id = excluded.tenant_id,
                wallet_id = excluded.wallet_id, tag = excluded.tag, uniq = excluded.uniq,
                sort = excluded.sort, data = excluded.data, seal = excluded.seal;
    END IF;
"""
#: The journal, events, lots, holds, charges and idempotency records.
_UNIT_REST = f"""    IF p ? 'entries' THEN
        WITH e AS (
            INSERT INTO {{s}}.entries ({_ENTRY_COLS})
                SELECT nextval('{{s}}.entry_seq'), {_NO_SEQ}
                FROM jsonb_populate_recordset(NULL::{{s}}.entries, p -> 'entries') AS v
                RETURNING seq, id
        ), posted AS (
            INSERT INTO {{s}}.postings ({_POSTING_COLS})
                SELECT e.seq, v.entry_id, v.position, v.account, v.minor, v.currency,
                    v.recorded_at, v.balance_after
                FROM jsonb_populate_recordset(NULL::{{s}}.postings, p -> 'postings') AS v
                JOIN e ON e.id = v.entry_id
        )
        INSERT INTO {{s}}.wallet_history ({_HISTORY_ROW_COLS})
            SELECT v.wallet_id, e.seq, v.entry_id, v.recorded_at, v.currency, v.open,
                v.commerce, v.held
            FROM jsonb_populate_recordset(NULL::{{s}}.wallet_history, p -> 'history') AS v
            JOIN e ON e.id = v.entry_id;
    END IF;
    IF p ? 'events' THEN
        INSERT INTO {{s}}.events ({_EVENT_COLS}, seal)
            SELECT v.id, v.tenant_id, v.wallet_id, v.kind, v.created_at, v.payload, v.seal
            FROM jsonb_populate_recordset(NULL::{{s}}.events, p -> 'events')
                WITH ORDINALITY AS v
            ORDER BY v.ordinality;
    END IF;
    IF p ? 'acks' THEN
        UPDATE {{s}}.events t SET acked_at = now()
            FROM jsonb_to_recordset(p -> 'acks') AS v (tenant_id TEXT, id TEXT)
            WHERE t.id = v.id AND t.tenant_id = v.tenant_id AND t.acked_at IS NULL;
    END IF;
    IF p ? 'lot_groups' THEN
        PERFORM 1 FROM {{s}}.condition_groups c
            WHERE c.id IN (SELECT jsonb_array_elements_text(p -> 'lot_groups'))
            ORDER BY c.id FOR SHARE;
        SELECT string_agg(x.id, ', ' ORDER BY x.id) INTO missing
            FROM jsonb_array_elements_text(p -> 'lot_groups') AS x (id)
            WHERE NOT EXISTS (SELECT 1 FROM {{s}}.condition_groups c WHERE c.id = x.id);
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION '{_TRIGGER} a lot refers to an unknown condition group (%)', missing;
        END IF;
    END IF;
    IF p ? 'lots' THEN
        INSERT INTO {{s}}.lots ({_LOT_COLS}, ends_at, due_at, seal)
            SELECT {", ".join(f"v.{name}" for name in _LOT_NAMES)}, v.ends_at,
                CASE WHEN v.group_id IS NULL THEN v.ends_at
                     ELSE {_first_end("v.ends_at", _GROUP_END)}
                END, v.seal
            FROM jsonb_populate_recordset(NULL::{{s}}.lots, p -> 'lots') AS v
            ON CONFLICT (id) DO UPDATE SET remaining = excluded.remaining,
                expired_entry_id = excluded.expired_entry_id, due_at = excluded.due_at,
                seal = excluded.seal;
    END IF;
    IF p ? 'holds' THEN
        INSERT INTO {{s}}.holds
            SELECT * FROM jsonb_populate_recordset(NULL::{{s}}.holds, p -> 'holds')
            ON CONFLICT (id) DO UPDATE SET status = excluded.status,
                captured = excluded.captured, resolved_entry_id = excluded.resolved_entry_id,
                resolved_at = excluded.resolved_at, seal = excluded.seal;
    END IF;
    IF p ? 'charges' THEN
        INSERT INTO {{s}}.charges
            SELECT * FROM jsonb_populate_recordset(NULL::{{s}}.charges, p -> 'charges')
            ON CONFLICT (entry_id) DO UPDATE SET refunded = excluded.refunded,
                seal = excluded.seal;
    END IF;
    IF p ? 'idempotency' THEN
        INSERT INTO {{s}}.idempotency
            SELECT * FROM jsonb_populate_recordset(NULL::{{s}}.idempotency, p -> 'idempotency');
    END IF;
END
$$;
"""
#: ``write_unit`` as version 9 created it (hook ``write_unit_9``).
_WRITE_UNIT_9 = _UNIT_HEAD + _UNIT_WALLETS + _UNIT_RECORDS + _UNIT_REST
#: Version 10: an optimistic unit (one that decided on the wallets and tenant records its store
#: last saw, without locking them first: see :mod:`prepaid_wallet.storage.postgres`) sends what
#: it decided on. A wallet it changes carries the floor it saw (``floor``): its update matches
#: only the version and the floor it decided on. If it decided on a wallet it does not change,
#: every wallet it decided on is in ``guess`` (id, version, floor): each is locked, in id order
#: (the order every unit locks in), and compared, before anything is written. Each record it
#: decided on is in ``guess_records`` (kind, key, JSON; NULL for none) and compared. A moved
#: wallet raises ``wallet_moved`` (``PW001``), a record stored otherwise ``PW003``; either
#: ends the query before its ``COMMIT``, and nothing is written.
_UNIT_GUESS = f"""    IF p ? 'guess' THEN
        FOR w IN
            SELECT * FROM jsonb_to_recordset(p -> 'guess')
                AS v (id TEXT, version BIGINT, floor BIGINT)
            ORDER BY v.id
        LOOP
            SELECT x.version, x.floor INTO found_version, found_floor
                FROM {{s}}.wallets x WHERE x.id = w.id FOR UPDATE;
            IF found_version IS DISTINCT FROM w.version OR found_floor <> w.floor THEN
                PERFORM {{s}}.wallet_moved(w.id, w.version);
            END IF;
        END LOOP;
    END IF;
    IF p ? 'guess_records' THEN
        SELECT v.kind || '/' || v.key INTO missing
            FROM jsonb_to_recordset(p -> 'guess_records') AS v (kind TEXT, key TEXT, data TEXT)
            WHERE v.data IS DISTINCT FROM (
                SELECT r.data FROM {{s}}.records r WHERE r.kind = v.kind AND r.key = v.key)
            LIMIT 1;
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION '{_TRIGGER} record % moved', missing
                USING ERRCODE = '{RECORD_MOVED}', DETAIL = missing;
        END IF;
    END IF;
"""
_UNIT_HEAD_10 = _UNIT_HEAD.replace("""    missing TEXT;
""", """    missing TEXT;
    found_version BIGINT;
    found_floor BIGINT;
""")
_UNIT_WALLETS_10 = _UNIT_WALLETS.replace(
    "id TEXT, base BIGINT, open BIGINT,", "id TEXT, base BIGINT, floor BIGINT, open BIGINT,"
).replace(
    "WHERE id = w.id AND version = w.base;",
    "WHERE id = w.id AND version = w.base\n"
    "                    AND (w.floor IS NULL OR floor = w.floor);",
)
_WRITE_UNIT = _UNIT_HEAD_10 + _UNIT_GUESS + _UNIT_WALLETS_10 + _UNIT_RECORDS + _UNIT_REST


#: The DDL of each hook of the migration list, as :func:`prepaid_wallet.storage._schema.render`
#: takes it.
HOOKS = {"journal": _JOURNAL, "write_path": _WRITE_PATH, "write_unit_6": WRITE_UNIT_6,
         "write_unit_7": WRITE_UNIT_7, "write_unit_8": WRITE_UNIT_8,
         "write_unit_9": _WRITE_UNIT_9, "write_unit": _WRITE_UNIT}
