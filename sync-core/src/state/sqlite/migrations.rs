//! The SQLite schema, one migration per version. Never edit a released migration: add one.

use rusqlite::{Connection, OptionalExtension, Transaction};

/// Migrations in order; migration `i` brings the schema to version `i + 1`.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r"
    CREATE TABLE cursors (
        flow        TEXT PRIMARY KEY,
        version     INTEGER NOT NULL,
        key         TEXT,
        updated_at  INTEGER NOT NULL
    );
    CREATE TABLE id_map (
        flow          TEXT NOT NULL,
        source_key    TEXT NOT NULL,
        target_id     TEXT NOT NULL,
        target_number TEXT,
        payload_hash  TEXT,
        updated_at    INTEGER NOT NULL,
        PRIMARY KEY (flow, source_key)
    ) WITHOUT ROWID;
    CREATE INDEX id_map_by_target ON id_map (flow, target_id);
    CREATE TABLE intents (
        flow          TEXT NOT NULL,
        source_key    TEXT NOT NULL,
        natural_key   TEXT NOT NULL,
        op            TEXT NOT NULL,
        target_id     TEXT,
        target_number TEXT,
        payload_hash  TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        PRIMARY KEY (flow, source_key)
    ) WITHOUT ROWID;
    CREATE TABLE dead_letters (
        flow        TEXT NOT NULL,
        source_key  TEXT NOT NULL,
        stage       TEXT NOT NULL,
        reason      TEXT NOT NULL,
        payload     TEXT,
        attempts    INTEGER NOT NULL,
        retryable   INTEGER NOT NULL,
        first_at    INTEGER NOT NULL,
        last_at     INTEGER NOT NULL,
        PRIMARY KEY (flow, source_key)
    ) WITHOUT ROWID;
    CREATE TABLE deferrals (
        flow          TEXT NOT NULL,
        source_key    TEXT NOT NULL,
        missing_flow  TEXT NOT NULL,
        missing_key   TEXT NOT NULL,
        attempts      INTEGER NOT NULL,
        first_at      INTEGER NOT NULL,
        last_at       INTEGER NOT NULL,
        PRIMARY KEY (flow, source_key)
    ) WITHOUT ROWID;
    CREATE TABLE runs (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        flow         TEXT NOT NULL,
        kind         TEXT NOT NULL,
        started_at   INTEGER NOT NULL,
        finished_at  INTEGER NOT NULL,
        window_low   INTEGER,
        window_high  INTEGER,
        counts       TEXT NOT NULL,
        error        TEXT
    );
    CREATE INDEX runs_by_flow ON runs (flow, id);
    CREATE TABLE leases (
        flow        TEXT PRIMARY KEY,
        owner       TEXT NOT NULL,
        expires_at  INTEGER NOT NULL
    );
    ",
    // 2: reverse lookups by target number (ERP order number → CRM order).
    r"
    CREATE INDEX id_map_by_number ON id_map (flow, target_number);
    ",
    // 3: API tokens kept across process starts (the Fxiaoke corp access token).
    r"
    CREATE TABLE tokens (
        key         TEXT PRIMARY KEY,
        token       TEXT NOT NULL,
        corp_id     TEXT NOT NULL,
        issued_at   INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL
    );
    ",
    // 4: one dead letter per key and stage: a failed write no longer replaces a failed Audit.
    r"
    CREATE TABLE dead_letters_by_stage (
        flow        TEXT NOT NULL,
        source_key  TEXT NOT NULL,
        stage       TEXT NOT NULL,
        reason      TEXT NOT NULL,
        payload     TEXT,
        attempts    INTEGER NOT NULL,
        retryable   INTEGER NOT NULL,
        first_at    INTEGER NOT NULL,
        last_at     INTEGER NOT NULL,
        PRIMARY KEY (flow, source_key, stage)
    ) WITHOUT ROWID;
    INSERT INTO dead_letters_by_stage SELECT flow, source_key, stage, reason, payload, attempts,
        retryable, first_at, last_at FROM dead_letters;
    DROP TABLE dead_letters;
    ALTER TABLE dead_letters_by_stage RENAME TO dead_letters;
    ",
    // 5: sends of actions that must not be repeated (CRM messages), recorded before they go out.
    r"
    CREATE TABLE sends (
        flow          TEXT NOT NULL,
        source_key    TEXT NOT NULL,
        action        TEXT NOT NULL,
        target_id     TEXT NOT NULL,
        target_number TEXT,
        queued_at     INTEGER NOT NULL,
        started_at    INTEGER,
        PRIMARY KEY (flow, source_key, action)
    ) WITHOUT ROWID;
    ",
];

/// The schema version this build writes.
#[allow(clippy::cast_possible_wrap)] // a handful of migrations
pub(super) const LATEST: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`LATEST`], each step in its own transaction. Fails on a database
/// written by a newer build rather than guessing.
pub(super) fn migrate(conn: &mut Connection) -> Result<i64, String> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .map_err(|e| e.to_string())?;
    loop {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| e.to_string())?;
        let current = current_version(&tx).map_err(|e| e.to_string())?;
        if current > LATEST {
            return Err(format!(
                "state database has schema version {current}, newer than this build knows \
                 ({LATEST}); upgrade sync-core"
            ));
        }
        if current == LATEST {
            return Ok(current);
        }
        let Some(sql) = usize::try_from(current)
            .ok()
            .and_then(|i| MIGRATIONS.get(i))
        else {
            return Err(format!("no migration from schema version {current}"));
        };
        tx.execute_batch(sql)
            .map_err(|e| format!("migration to {}: {e}", current + 1))?;
        tx.execute("DELETE FROM schema_version", [])
            .map_err(|e| e.to_string())?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [current + 1],
        )
        .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())?;
    }
}

fn current_version(tx: &Transaction<'_>) -> rusqlite::Result<i64> {
    Ok(tx
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}
