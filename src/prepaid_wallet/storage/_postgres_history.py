"""PostgreSQL's ``write_unit`` functions as schema versions 6, 7 and 8 created them (private).

Migrations run to the latest version in one transaction, and the latest version that changes
what a unit writes replaces ``write_unit`` before anything calls it; these texts are kept so
that every version builds exactly what it built when it was current (the schema snapshots are
checked against them). They are history: never edited.
"""

from __future__ import annotations

import prepaid_wallet.storage._schema as _schema
from prepaid_wallet.storage._dialect import POSTGRES

__all__ = ["WRITE_UNIT_6", "WRITE_UNIT_7", "WRITE_UNIT_8"]

_TRIGGER = _schema.TRIGGER
NO_WALLET = "PW002"

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
#: that changes what a unit writes (re)creates it (hook ``write_unit``); the one version 6
#: created (hook ``write_unit_6``) is kept so a new schema passes through exactly what a
#: version-6 one held, and is never used.
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
            INSERT INTO {{s}}.condition_groups ({_GROUP_COLS})
                VALUES (g.id, g.tenant_id, g.name, g.version, g.condition, g.valid_from,
                        g.valid_until)
                ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id,
                    name = excluded.name, version = excluded.version,
                    condition = excluded.condition, valid_from = excluded.valid_from,
                    valid_until = excluded.valid_until;
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
                version BIGINT, head TEXT
            )
        LOOP
            UPDATE {{s}}.wallets SET open = w.open, commerce = w.commerce, held = w.held,
                status = w.status, version = w.version, head = w.head
                WHERE id = w.id AND version = w.base;
            IF NOT FOUND THEN
                PERFORM {{s}}.wallet_moved(w.id, w.base);
            END IF;
        END LOOP;
    END IF;
"""
#: Version 6 only: wallet settings and top-up intents (records since version 7), after the
#: wallets they name.
_UNIT_SETTINGS_6 = f"""    IF p ? 'settings' THEN
        SELECT min(v.wallet_id COLLATE "C") INTO missing
            FROM jsonb_to_recordset(p -> 'settings') AS v (wallet_id TEXT, name TEXT, value TEXT)
            WHERE NOT EXISTS (SELECT 1 FROM {{s}}.wallets x WHERE x.id = v.wallet_id);
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION '{_TRIGGER} a setting refers to an unknown wallet (%)', missing
                USING ERRCODE = '{NO_WALLET}', DETAIL = missing;
        END IF;
        DELETE FROM {{s}}.wallet_settings t
            USING jsonb_to_recordset(p -> 'settings') AS v (wallet_id TEXT, name TEXT, value TEXT)
            WHERE v.value IS NULL AND t.wallet_id = v.wallet_id AND t.name = v.name;
        INSERT INTO {{s}}.wallet_settings (wallet_id, name, value)
            SELECT v.wallet_id, v.name, v.value
            FROM jsonb_to_recordset(p -> 'settings') AS v (wallet_id TEXT, name TEXT, value TEXT)
            WHERE v.value IS NOT NULL
            ON CONFLICT (wallet_id, name) DO UPDATE SET value = excluded.value;
    END IF;
    IF p ? 'intents' THEN
        SELECT v.wallet_id INTO missing
            FROM jsonb_populate_recordset(NULL::{{s}}.top_up_intents, p -> 'intents')
                WITH ORDINALITY AS v
            WHERE NOT EXISTS (SELECT 1 FROM {{s}}.wallets x WHERE x.id = v.wallet_id)
            ORDER BY v.ordinality LIMIT 1;
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION '{_TRIGGER} a top-up intent refers to an unknown wallet (%)', missing
                USING ERRCODE = '{NO_WALLET}', DETAIL = missing;
        END IF;
        INSERT INTO {{s}}.top_up_intents (id, tenant_id, wallet_id, status, created_at, data)
            SELECT v.id, v.tenant_id, v.wallet_id, v.status, v.created_at, v.data
            FROM jsonb_populate_recordset(NULL::{{s}}.top_up_intents, p -> 'intents')
                WITH ORDINALITY AS v
            ORDER BY v.status = 'pending', v.ordinality
            ON CONFLICT (id) DO UPDATE SET status = excluded.status, data = excluded.data;
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
        INSERT INTO {{s}}.records ({_RECORD_COLS})
            SELECT {", ".join(f"v.{name}" for name in _schema.names(_RECORD_COLS))}
            FROM jsonb_populate_recordset(NULL::{{s}}.records, p -> 'records')
                WITH ORDINALITY AS v
            ORDER BY v.ordinality
            ON CONFLICT (kind, key) DO UPDATE SET tenant_id = excluded.tenant_id,
                wallet_id = excluded.wallet_id, tag = excluded.tag, uniq = excluded.uniq,
                sort = excluded.sort, data = excluded.data;
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
        INSERT INTO {{s}}.events ({_EVENT_COLS})
            SELECT v.id, v.tenant_id, v.wallet_id, v.kind, v.created_at, v.payload
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
        INSERT INTO {{s}}.lots ({_LOT_COLS}, ends_at, due_at)
            SELECT {", ".join(f"v.{name}" for name in _LOT_NAMES)}, v.ends_at,
                CASE WHEN v.group_id IS NULL THEN v.ends_at
                     ELSE {_first_end("v.ends_at", _GROUP_END)}
                END
            FROM jsonb_populate_recordset(NULL::{{s}}.lots, p -> 'lots') AS v
            ON CONFLICT (id) DO UPDATE SET remaining = excluded.remaining,
                expired_entry_id = excluded.expired_entry_id, due_at = excluded.due_at;
    END IF;
    IF p ? 'holds' THEN
        INSERT INTO {{s}}.holds
            SELECT * FROM jsonb_populate_recordset(NULL::{{s}}.holds, p -> 'holds')
            ON CONFLICT (id) DO UPDATE SET status = excluded.status,
                captured = excluded.captured, resolved_entry_id = excluded.resolved_entry_id,
                resolved_at = excluded.resolved_at;
    END IF;
    IF p ? 'charges' THEN
        INSERT INTO {{s}}.charges
            SELECT * FROM jsonb_populate_recordset(NULL::{{s}}.charges, p -> 'charges')
            ON CONFLICT (entry_id) DO UPDATE SET refunded = excluded.refunded;
    END IF;
    IF p ? 'idempotency' THEN
        INSERT INTO {{s}}.idempotency
            SELECT * FROM jsonb_populate_recordset(NULL::{{s}}.idempotency, p -> 'idempotency');
    END IF;
END
$$;
"""
#: Version 8: a wallet's update also writes the recorded instant of its latest entry.
_UNIT_WALLETS_8 = _UNIT_WALLETS.replace(
    "version BIGINT, head TEXT\n", "version BIGINT, head TEXT, last_at TIMESTAMPTZ\n"
).replace("head = w.head\n", "head = w.head, last_at = w.last_at\n")
WRITE_UNIT_6 = _UNIT_HEAD + _UNIT_WALLETS + _UNIT_SETTINGS_6 + _UNIT_REST
WRITE_UNIT_7 = _UNIT_HEAD + _UNIT_WALLETS + _UNIT_RECORDS + _UNIT_REST
WRITE_UNIT_8 = _UNIT_HEAD + _UNIT_WALLETS_8 + _UNIT_RECORDS + _UNIT_REST
