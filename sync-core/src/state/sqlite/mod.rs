//! The embedded default [`StateStore`]: one SQLite file (bundled SQLite, WAL).

mod migrations;
#[cfg(feature = "fxiaoke")]
mod token_cache;

use super::{
    Changes, Cursor, DeadLetter, Deferral, IdMapEntry, Intent, IntentOp, KeyState, Lease,
    PendingSend, RunKind, RunRecord, Stage, StateStore, WRITE_BACK,
};
use crate::error::{Error, Result};
use crate::sink::TargetRef;
use crate::source::Window;
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// A [`StateStore`] in a SQLite file.
///
/// - WAL journal with `synchronous = FULL`: every commit is on disk before `apply` returns,
///   against a process crash and a power cut alike. The engine sends nothing until the intents
///   of a batch are committed (rule 3), so an intent whose write went out is never lost; with
///   `NORMAL` a power cut could drop the last commits of the WAL and with them such an intent.
///   It costs one fsync per transaction, and the engine commits twice per batch.
/// - The schema is versioned (`schema_version` table) and migrated on open; a file written by
///   a newer build is refused.
/// - A lease row per flow keeps two processes from running the same flow; the second gets
///   [`Error::FlowLocked`].
///
/// Calls run on the calling task: each is a short transaction on a local file.
///
/// ```
/// use sync_core::state::SqliteStore;
///
/// let dir = std::env::temp_dir().join(format!("sync-core-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let store = SqliteStore::open(dir.join("state.sqlite3"))?;
/// assert_eq!(store.schema_version()?, SqliteStore::SCHEMA_VERSION);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// The schema version this build writes.
    pub const SCHEMA_VERSION: i64 = migrations::LATEST;

    /// Opens (creating if needed) the state file at `path` and migrates it.
    ///
    /// On Unix the file is made readable and writable by its owner only (mode `0600`; SQLite
    /// gives its `-wal` and `-shm` files the same mode): it holds customer data from both
    /// systems and the cached Fxiaoke token.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        owner_only(path)?;
        Self::setup(Connection::open(path)?)
    }

    /// A private in-memory database (tests).
    pub fn open_in_memory() -> Result<Self> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(mut conn: Connection) -> Result<Self> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // `journal_mode` returns a row, so it is read rather than executed.
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        // FULL, not NORMAL: in WAL mode NORMAL does not sync the log at commit, so a power cut can
        // lose a committed intent whose write was then sent (see the type's doc).
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF;")?;
        conn.set_prepared_statement_cache_capacity(64);
        migrations::migrate(&mut conn).map_err(Error::State)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .lock()
            .query_row("SELECT version FROM schema_version", [], |r| r.get(0))?)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // SQLite rolls back an unfinished transaction when its guard is dropped during a panic,
        // so the connection behind a poisoned lock is still consistent.
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Creates the file with mode `0600`, or takes group and other permissions off an existing one.
#[cfg(unix)]
fn owner_only(path: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let failed = |e: std::io::Error| Error::State(format!("state file {}: {e}", path.display()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(failed(e)),
    }
    let mode = std::fs::metadata(path)
        .map_err(failed)?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format_args!("{mode:o}"),
            "the state file was readable by others; it is now readable by its owner only");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))
            .map_err(failed)?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn owner_only(_path: &Path) -> Result<()> {
    Ok(())
}

fn in_list(n: usize) -> String {
    let mut s = String::with_capacity(n * 4);
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "?{}", i + 2);
    }
    s
}

fn keyed_query<T>(
    conn: &Connection,
    select: &str,
    flow: &str,
    keys: &[String],
    read: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<HashMap<String, T>> {
    let mut out = HashMap::new();
    keyed_rows(conn, select, flow, keys, |key, row| {
        out.insert(key, read(row)?);
        Ok(())
    })?;
    Ok(out)
}

/// Calls `each` with the key (column 0) and the row, for every row of `select` whose source
/// key is one of `keys`.
fn keyed_rows(
    conn: &Connection,
    select: &str,
    flow: &str,
    keys: &[String],
    mut each: impl FnMut(String, &Row<'_>) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    // Bounded IN lists: SQLite caps the number of parameters per statement.
    for chunk in keys.chunks(500) {
        let sql = format!(
            "{select} WHERE flow = ?1 AND source_key IN ({})",
            in_list(chunk.len())
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut params: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(chunk.len() + 1);
        params.push(&flow);
        for k in chunk {
            params.push(k);
        }
        let mut rows = stmt.query(params.as_slice())?;
        while let Some(row) = rows.next()? {
            each(row.get(0)?, row)?;
        }
    }
    Ok(())
}

const ID_MAP_COLS: &str =
    "SELECT source_key, target_id, target_number, payload_hash, updated_at FROM id_map";

fn read_id_map(r: &Row<'_>) -> rusqlite::Result<IdMapEntry> {
    Ok(IdMapEntry {
        source_key: r.get(0)?,
        target: TargetRef {
            id: r.get(1)?,
            number: r.get(2)?,
        },
        payload_hash: r.get(3)?,
        updated_at: r.get(4)?,
    })
}

const INTENT_COLS: &str = "SELECT source_key, natural_key, op, target_id, target_number, \
                           payload_hash, created_at FROM intents";

fn read_intent(r: &Row<'_>) -> rusqlite::Result<Intent> {
    let target_id: Option<String> = r.get(3)?;
    Ok(Intent {
        source_key: r.get(0)?,
        natural_key: r.get(1)?,
        op: IntentOp::parse(&r.get::<_, String>(2)?),
        target: target_id.map(|id| TargetRef {
            id,
            number: r.get(4).ok().flatten(),
        }),
        payload_hash: r.get(5)?,
        created_at: r.get(6)?,
    })
}

const DEAD_COLS: &str = "SELECT source_key, stage, reason, payload, attempts, retryable, \
                         first_at, last_at FROM dead_letters";

fn read_dead(r: &Row<'_>) -> rusqlite::Result<DeadLetter> {
    let payload: Option<String> = r.get(3)?;
    Ok(DeadLetter {
        source_key: r.get(0)?,
        stage: Stage::parse(&r.get::<_, String>(1)?),
        reason: r.get(2)?,
        payload: payload.and_then(|p| serde_json::from_str(&p).ok()),
        attempts: r.get(4)?,
        retryable: r.get(5)?,
        first_at: r.get(6)?,
        last_at: r.get(7)?,
    })
}

const DEFERRAL_COLS: &str = "SELECT source_key, missing_flow, missing_key, attempts, first_at, \
                             last_at FROM deferrals";

fn read_deferral(r: &Row<'_>) -> rusqlite::Result<Deferral> {
    Ok(Deferral {
        source_key: r.get(0)?,
        missing_flow: r.get(1)?,
        missing_key: r.get(2)?,
        attempts: r.get(3)?,
        first_at: r.get(4)?,
        last_at: r.get(5)?,
    })
}

fn read_send(r: &Row<'_>) -> rusqlite::Result<PendingSend> {
    Ok(PendingSend {
        source_key: r.get(0)?,
        action: r.get(1)?,
        target: TargetRef {
            id: r.get(2)?,
            number: r.get(3)?,
        },
        queued_at: r.get(4)?,
        started_at: r.get(5)?,
    })
}

fn paged<T>(
    conn: &Connection,
    select: &str,
    flow: &str,
    after: Option<&str>,
    limit: usize,
    read: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let sql = format!(
        "{select} WHERE flow = ?1 AND (?2 IS NULL OR source_key > ?2) ORDER BY source_key LIMIT ?3"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![flow, after, limit], read)?;
    rows.collect()
}

#[async_trait]
impl StateStore for SqliteStore {
    async fn acquire_lease(
        &self,
        flow: &str,
        owner: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Lease> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let held: Option<(String, i64)> = tx
            .query_row(
                "SELECT owner, expires_at FROM leases WHERE flow = ?1",
                [flow],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((holder, expires)) = held
            && holder != owner
            && expires > now_ms
        {
            return Err(Error::FlowLocked {
                flow: flow.to_owned(),
                owner: holder,
                expires_at_ms: expires,
            });
        }
        let expires_at = now_ms.saturating_add(ttl_ms);
        tx.execute(
            "INSERT INTO leases (flow, owner, expires_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (flow) DO UPDATE SET owner = excluded.owner,
                                             expires_at = excluded.expires_at",
            params![flow, owner, expires_at],
        )?;
        tx.commit()?;
        Ok(Lease {
            flow: flow.to_owned(),
            owner: owner.to_owned(),
            expires_at,
        })
    }

    async fn release_lease(&self, lease: &Lease) -> Result<()> {
        self.lock().execute(
            "DELETE FROM leases WHERE flow = ?1 AND owner = ?2",
            params![lease.flow, lease.owner],
        )?;
        Ok(())
    }

    async fn cursor(&self, flow: &str) -> Result<Option<Cursor>> {
        Ok(self
            .lock()
            .query_row(
                "SELECT version, key FROM cursors WHERE flow = ?1",
                [flow],
                |r| {
                    Ok(Cursor {
                        version: r.get(0)?,
                        key: r.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    async fn lookup(&self, flow: &str, keys: &[String]) -> Result<Vec<KeyState>> {
        let conn = self.lock();
        let mut ids = keyed_query(&conn, ID_MAP_COLS, flow, keys, read_id_map)?;
        let mut intents = keyed_query(&conn, INTENT_COLS, flow, keys, read_intent)?;
        let mut dead: HashMap<String, Vec<DeadLetter>> = HashMap::new();
        keyed_rows(&conn, DEAD_COLS, flow, keys, |key, row| {
            dead.entry(key).or_default().push(read_dead(row)?);
            Ok(())
        })?;
        let mut deferred = keyed_query(&conn, DEFERRAL_COLS, flow, keys, read_deferral)?;
        Ok(keys
            .iter()
            .map(|k| KeyState {
                id_map: ids.remove(k),
                intent: intents.remove(k),
                dead_letters: {
                    let mut letters = dead.remove(k).unwrap_or_default();
                    letters.sort_by_key(|d| d.stage.to_string());
                    letters
                },
                deferral: deferred.remove(k),
            })
            .collect())
    }

    async fn id_map_get_many(
        &self,
        flow: &str,
        keys: &[String],
    ) -> Result<HashMap<String, IdMapEntry>> {
        Ok(keyed_query(
            &self.lock(),
            ID_MAP_COLS,
            flow,
            keys,
            read_id_map,
        )?)
    }

    async fn id_map_page(
        &self,
        flow: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<IdMapEntry>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&format!(
            "{ID_MAP_COLS} WHERE flow = ?1 AND source_key > ?2 ORDER BY source_key LIMIT ?3"
        ))?;
        let rows = stmt.query_map(
            params![
                flow,
                after.unwrap_or(""),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            read_id_map,
        )?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    async fn id_map_by_target(&self, flow: &str, target_id: &str) -> Result<Option<IdMapEntry>> {
        let conn = self.lock();
        let mut stmt =
            conn.prepare_cached(&format!("{ID_MAP_COLS} WHERE flow = ?1 AND target_id = ?2"))?;
        Ok(stmt
            .query_row(params![flow, target_id], read_id_map)
            .optional()?)
    }

    async fn id_map_by_target_numbers(
        &self,
        flow: &str,
        numbers: &[String],
    ) -> Result<HashMap<String, IdMapEntry>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&format!(
            "{ID_MAP_COLS} WHERE flow = ?1 AND target_number = ?2"
        ))?;
        let mut out = HashMap::new();
        for number in numbers {
            if let Some(entry) = stmt
                .query_row(params![flow, number], read_id_map)
                .optional()?
            {
                out.insert(number.clone(), entry);
            }
        }
        Ok(out)
    }

    async fn apply(&self, lease: &Lease, changes: &Changes) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let holder: Option<String> = tx
            .query_row(
                "SELECT owner FROM leases WHERE flow = ?1",
                [&lease.flow],
                |r| r.get(0),
            )
            .optional()?;
        if holder.as_deref() != Some(lease.owner.as_str()) {
            return Err(Error::LeaseLost {
                flow: lease.flow.clone(),
            });
        }
        let flow = lease.flow.as_str();
        if !changes.dead_letter_stages_clear.is_empty() {
            let mut stmt = tx.prepare_cached(
                "DELETE FROM dead_letters WHERE flow = ?1 AND source_key = ?2 AND stage = ?3",
            )?;
            for (k, stage) in &changes.dead_letter_stages_clear {
                stmt.execute(params![flow, k, stage.to_string()])?;
            }
        }
        for (table, keys) in [
            ("intents", &changes.intents_clear),
            ("dead_letters", &changes.dead_letters_clear),
            ("deferrals", &changes.deferrals_clear),
            ("id_map", &changes.id_map_remove),
        ] {
            if keys.is_empty() {
                continue;
            }
            let mut stmt = tx.prepare_cached(&format!(
                "DELETE FROM {table} WHERE flow = ?1 AND source_key = ?2"
            ))?;
            for k in keys {
                stmt.execute(params![flow, k])?;
            }
        }
        if !changes.id_map.is_empty() {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO id_map
                 (flow, source_key, target_id, target_number, payload_hash, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for e in &changes.id_map {
                stmt.execute(params![
                    flow,
                    e.source_key,
                    e.target.id,
                    e.target.number,
                    e.payload_hash,
                    e.updated_at
                ])?;
            }
        }
        if !changes.intents_put.is_empty() {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO intents (flow, source_key, natural_key, op, target_id,
                 target_number, payload_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for i in &changes.intents_put {
                stmt.execute(params![
                    flow,
                    i.source_key,
                    i.natural_key,
                    i.op.as_str(),
                    i.target.as_ref().map(|t| &t.id),
                    i.target.as_ref().and_then(|t| t.number.as_ref()),
                    i.payload_hash,
                    i.created_at
                ])?;
            }
        }
        if !changes.dead_letters_put.is_empty() {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO dead_letters (flow, source_key, stage, reason, payload,
                 attempts, retryable, first_at, last_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for d in &changes.dead_letters_put {
                let payload = d.payload.as_ref().map(serde_json::Value::to_string);
                stmt.execute(params![
                    flow,
                    d.source_key,
                    d.stage.to_string(),
                    d.reason,
                    payload,
                    d.attempts,
                    d.retryable,
                    d.first_at,
                    d.last_at
                ])?;
            }
        }
        if !changes.deferrals_put.is_empty() {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO deferrals (flow, source_key, missing_flow, missing_key,
                 attempts, first_at, last_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for d in &changes.deferrals_put {
                stmt.execute(params![
                    flow,
                    d.source_key,
                    d.missing_flow,
                    d.missing_key,
                    d.attempts,
                    d.first_at,
                    d.last_at
                ])?;
            }
        }
        if !changes.sends_clear.is_empty() {
            let mut stmt = tx.prepare_cached(
                "DELETE FROM sends WHERE flow = ?1 AND source_key = ?2 AND action = ?3",
            )?;
            for (k, action) in &changes.sends_clear {
                stmt.execute(params![flow, k, action])?;
            }
        }
        if !changes.sends_put.is_empty() {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO sends (flow, source_key, action, target_id, target_number,
                 queued_at, started_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for s in &changes.sends_put {
                stmt.execute(params![
                    flow,
                    s.source_key,
                    s.action,
                    s.target.id,
                    s.target.number,
                    s.queued_at,
                    s.started_at
                ])?;
            }
        }
        if !changes.sends_start.is_empty() {
            let mut stmt = tx.prepare_cached(
                "UPDATE sends SET started_at = ?5
                 WHERE flow = ?1 AND source_key = ?2 AND action = ?3 AND queued_at = ?4",
            )?;
            for s in &changes.sends_start {
                stmt.execute(params![
                    flow,
                    s.source_key,
                    s.action,
                    s.queued_at,
                    s.started_at
                ])?;
            }
        }
        if !changes.sends_done.is_empty() {
            let mut stmt = tx.prepare_cached(
                "DELETE FROM sends
                 WHERE flow = ?1 AND source_key = ?2 AND action = ?3 AND queued_at = ?4",
            )?;
            for s in &changes.sends_done {
                stmt.execute(params![flow, s.source_key, s.action, s.queued_at])?;
            }
        }
        if let Some(c) = &changes.cursor {
            tx.execute(
                "INSERT INTO cursors (flow, version, key, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (flow) DO UPDATE SET version = excluded.version,
                     key = excluded.key, updated_at = excluded.updated_at",
                params![
                    flow,
                    c.version,
                    c.key,
                    chrono::Utc::now().timestamp_millis()
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    async fn intents(&self, flow: &str) -> Result<Vec<Intent>> {
        Ok(paged(
            &self.lock(),
            INTENT_COLS,
            flow,
            None,
            usize::MAX,
            read_intent,
        )?)
    }

    async fn sends(&self, flow: &str) -> Result<Vec<PendingSend>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT source_key, action, target_id, target_number, queued_at, started_at
             FROM sends WHERE flow = ?1 AND action != ?2 ORDER BY source_key, action",
        )?;
        let rows = stmt.query_map([flow, WRITE_BACK], read_send)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    async fn queued(&self, flow: &str, action: &str, limit: usize) -> Result<Vec<PendingSend>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT source_key, action, target_id, target_number, queued_at, started_at
             FROM sends WHERE flow = ?1 AND action = ?2 ORDER BY source_key LIMIT ?3",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![flow, action, limit], read_send)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    async fn queued_count(&self, flow: &str, action: &str) -> Result<u64> {
        let count: i64 = self.lock().query_row(
            "SELECT COUNT(*) FROM sends WHERE flow = ?1 AND action = ?2",
            params![flow, action],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn dead_letters(
        &self,
        flow: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>> {
        // The limit counts keys, so that a page never splits the stages of one key.
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&format!(
            "{DEAD_COLS} WHERE flow = ?1 AND source_key IN (
                 SELECT DISTINCT source_key FROM dead_letters
                 WHERE flow = ?1 AND (?2 IS NULL OR source_key > ?2)
                 ORDER BY source_key LIMIT ?3)
             ORDER BY source_key, stage"
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![flow, after, limit], read_dead)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    async fn deferrals(
        &self,
        flow: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Deferral>> {
        Ok(paged(
            &self.lock(),
            DEFERRAL_COLS,
            flow,
            after,
            limit,
            read_deferral,
        )?)
    }

    async fn record_run(&self, run: &RunRecord) -> Result<()> {
        let counts = serde_json::to_string(&run.counts).map_err(|e| Error::State(e.to_string()))?;
        self.lock().execute(
            "INSERT INTO runs (flow, kind, started_at, finished_at, window_low, window_high,
             counts, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                run.flow,
                run.kind.as_str(),
                run.started_at,
                run.finished_at,
                run.window.map(|w| w.low),
                run.window.map(|w| w.high),
                counts,
                run.error
            ],
        )?;
        Ok(())
    }

    async fn runs(&self, flow: &str, limit: usize) -> Result<Vec<RunRecord>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT flow, kind, started_at, finished_at, window_low, window_high, counts, error
             FROM runs WHERE flow = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![flow, limit], |r| {
            let low: Option<i64> = r.get(4)?;
            let high: Option<i64> = r.get(5)?;
            let counts: String = r.get(6)?;
            Ok(RunRecord {
                flow: r.get(0)?,
                kind: RunKind::parse(&r.get::<_, String>(1)?),
                started_at: r.get(2)?,
                finished_at: r.get(3)?,
                window: low.zip(high).map(|(low, high)| Window { low, high }),
                counts: serde_json::from_str(&counts).unwrap_or_default(),
                error: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod durability_tests {
    use super::SqliteStore;

    #[cfg(unix)]
    #[test]
    fn the_state_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let mode = |name: &str| {
            std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        let path = dir.path().join("state.sqlite3");
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(
            (mode("state.sqlite3"), mode("state.sqlite3-wal")),
            (0o600, 0o600)
        );
        drop(store);
        // A file someone made readable by all is closed again on the next open.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        SqliteStore::open(&path).unwrap();
        assert_eq!(mode("state.sqlite3"), 0o600);
    }

    #[test]
    fn commits_are_synced_to_disk() {
        let dir = std::env::temp_dir().join(format!("sync-core-sync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = SqliteStore::open(dir.join("state.sqlite3")).unwrap();
        let conn = store.lock();
        let journal: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        // 2 = FULL: the WAL is synced at every commit.
        let synchronous: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        drop(conn);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!((journal.as_str(), synchronous), ("wal", 2));
    }
}
