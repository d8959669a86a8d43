"""The audit trail's tables and its append function, as SQL for the services'
migrations (lancamentos and consolidado each keep their trail in their own
database, so a record commits or rolls back with its mutation).

Frozen once released: a change is a new constant and a new migration, since
records already chained with one canonical form must verify with it forever.

Each merchant's records form a chain: record n's hash is
sha256(hash of record n-1, or 64 zeros, || canonical(record n)), where the
canonical form is each field in a fixed order as `<octet length>:<value>`.
`caixa.client.audit_chain` recomputes it from the records alone.
"""

from __future__ import annotations

# Serializes appends: a record's position and hash follow its merchant's head.
AUDIT_LOCK_KEY = 0x61756469  # "audi"

AUDIT_SCHEMA_V1 = [
    """
    CREATE TABLE audit_records (
        merchant_id text NOT NULL,
        position bigint NOT NULL,
        recorded_at timestamptz NOT NULL,
        subject text NOT NULL,
        rpc text NOT NULL,
        request_id text NOT NULL,
        entry_ids uuid[] NOT NULL,
        outcome text NOT NULL,
        trace_id text NOT NULL,
        hash text NOT NULL,
        PRIMARY KEY (merchant_id, position)
    )
    """,
    # The newest record of each merchant: what the next one chains to, and
    # what tells a verifier that records at the end were not cut off.
    """
    CREATE TABLE audit_heads (
        merchant_id text PRIMARY KEY,
        position bigint NOT NULL,
        hash text NOT NULL
    )
    """,
    """
    CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'the audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END $$
    """,
    """
    CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records
        FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()
    """,
    """
    CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
        FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()
    """,
    # A head only moves forward.
    """
    CREATE FUNCTION audit_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'UPDATE' OR NEW.position <= OLD.position
           OR NEW.merchant_id <> OLD.merchant_id THEN
            RAISE EXCEPTION 'an audit head only moves forward: % on audit_heads refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END $$
    """,
    """
    CREATE TRIGGER audit_heads_forward_only BEFORE UPDATE OR DELETE ON audit_heads
        FOR EACH ROW EXECUTE FUNCTION audit_head_forward()
    """,
    """
    CREATE TRIGGER audit_heads_no_truncate BEFORE TRUNCATE ON audit_heads
        FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()
    """,
    """
    CREATE FUNCTION audit_canonical(fields text[]) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$
        SELECT string_agg(octet_length(f)::text || ':' || f, '' ORDER BY n)
        FROM unnest(fields) WITH ORDINALITY AS u(f, n)
    $$
    """,
    # One call appends a batch of records, record i made of the i-th element
    # of each array; `entry_ids` holds each record's ids separated by spaces.
    # In the caller's transaction: a mutation that rolls back takes its records.
    f"""
    CREATE FUNCTION audit_append(
        merchants text[], subjects text[], rpcs text[], request_ids text[],
        entry_ids text[], outcomes text[], trace_ids text[]
    ) RETURNS integer LANGUAGE plpgsql AS $$
    DECLARE
        n integer := coalesce(array_length(merchants, 1), 0);
        at timestamptz := date_trunc('microseconds', clock_timestamp());
        at_text text;
        heads jsonb;
        head jsonb;
        ids uuid[];
        positions bigint[] := '{{}}';
        hashes text[] := '{{}}';
        pos bigint;
        digest text;
    BEGIN
        IF n = 0 THEN
            RETURN 0;
        END IF;
        at_text := to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
        PERFORM pg_advisory_xact_lock({AUDIT_LOCK_KEY});
        SELECT coalesce(jsonb_object_agg(h.merchant_id, jsonb_build_array(h.position, h.hash)),
                        '{{}}')
        INTO heads FROM audit_heads h WHERE h.merchant_id = ANY(merchants);
        FOR i IN 1..n LOOP
            head := heads -> merchants[i];
            pos := coalesce((head ->> 0)::bigint, 0) + 1;
            ids := string_to_array(entry_ids[i], ' ')::uuid[];
            digest := encode(sha256(convert_to(
                coalesce(head ->> 1, repeat('0', 64)) || audit_canonical(ARRAY[
                    pos::text, merchants[i], at_text, subjects[i], rpcs[i], request_ids[i],
                    array_to_string(ids, ' '), outcomes[i], trace_ids[i]
                ]), 'UTF8')), 'hex');
            positions[i] := pos;
            hashes[i] := digest;
            heads := jsonb_set(heads, ARRAY[merchants[i]], jsonb_build_array(pos, digest));
        END LOOP;
        INSERT INTO audit_records (merchant_id, position, recorded_at, subject, rpc,
                                   request_id, entry_ids, outcome, trace_id, hash)
        SELECT u.m, u.p, at, u.s, u.r, u.q, string_to_array(u.e, ' ')::uuid[], u.o, u.t, u.h
        FROM unnest(merchants, positions, subjects, rpcs, request_ids, entry_ids, outcomes,
                    trace_ids, hashes) AS u(m, p, s, r, q, e, o, t, h);
        INSERT INTO audit_heads (merchant_id, position, hash)
        SELECT key, (value ->> 0)::bigint, value ->> 1 FROM jsonb_each(heads)
        ON CONFLICT (merchant_id)
        DO UPDATE SET position = EXCLUDED.position, hash = EXCLUDED.hash
        WHERE audit_heads.position < EXCLUDED.position;
        RETURN n;
    END $$
    """,
]

AUDIT_DROP_V1 = [
    "DROP FUNCTION audit_append",
    "DROP FUNCTION audit_canonical",
    "DROP TABLE audit_heads",
    "DROP TABLE audit_records",
    "DROP FUNCTION audit_head_forward",
    "DROP FUNCTION audit_refuse_change",
]
