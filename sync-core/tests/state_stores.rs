//! The same contract for every StateStore, plus what only SQLite does.

mod common;

use common::{FLOW, Harness, T0};
use serde_json::json;
use std::sync::Arc;
use sync_core::state::{
    Changes, Cursor, DeadLetter, Deferral, IdMapEntry, Intent, IntentOp, MemoryStore, PendingSend,
    SqliteStore, Stage, StateStore, WRITE_BACK,
};
use sync_core::{Error, TargetRef};

fn entry(key: &str, id: &str) -> IdMapEntry {
    IdMapEntry {
        source_key: key.into(),
        target: TargetRef::new(id, Some(format!("N{id}"))),
        payload_hash: Some("h".into()),
        updated_at: 1,
    }
}

async fn contract(store: &dyn StateStore) {
    let _first = store.acquire_lease(FLOW, "a", 0, 1_000).await.unwrap();
    // Another owner is refused until the lease expires; the holder may renew.
    assert!(matches!(
        store.acquire_lease(FLOW, "b", 500, 1_000).await,
        Err(Error::FlowLocked { ref owner, expires_at_ms: 1_000, .. }) if owner == "a"
    ));
    let renewed = store.acquire_lease(FLOW, "a", 500, 1_000).await.unwrap();
    assert_eq!(renewed.expires_at, 1_500);
    let lease = renewed;

    let intent = Intent {
        source_key: "k1".into(),
        natural_key: "nk1".into(),
        op: IntentOp::Create,
        target: None,
        payload_hash: "h".into(),
        created_at: 7,
    };
    store
        .apply(
            &lease,
            &Changes {
                intents_put: vec![intent.clone()],
                ..Changes::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(store.intents(FLOW).await.unwrap(), vec![intent]);

    // One transaction: the entry in, the intent out, the cursor forward.
    let dead = DeadLetter {
        source_key: "k2".into(),
        stage: Stage::Action("Audit".into()),
        reason: "审核失败".into(),
        payload: Some(json!({"FName": "x"})),
        attempts: 2,
        retryable: true,
        first_at: 1,
        last_at: 2,
    };
    let deferral = Deferral {
        source_key: "k3".into(),
        missing_flow: "customers".into(),
        missing_key: "c9".into(),
        attempts: 1,
        first_at: 3,
        last_at: 3,
    };
    store
        .apply(
            &lease,
            &Changes {
                id_map: vec![entry("k1", "100")],
                intents_clear: vec!["k1".into()],
                dead_letters_put: vec![dead.clone()],
                deferrals_put: vec![deferral.clone()],
                cursor: Some(Cursor {
                    version: 42,
                    key: Some("k1".into()),
                }),
                ..Changes::default()
            },
        )
        .await
        .unwrap();
    assert!(store.intents(FLOW).await.unwrap().is_empty());
    assert_eq!(
        store.cursor(FLOW).await.unwrap(),
        Some(Cursor {
            version: 42,
            key: Some("k1".into())
        })
    );
    assert_eq!(
        store.dead_letters(FLOW, None, 10).await.unwrap(),
        vec![dead.clone()]
    );
    assert!(
        store
            .dead_letters(FLOW, Some("k2"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.deferrals(FLOW, None, 10).await.unwrap(),
        vec![deferral.clone()]
    );
    assert_eq!(
        store.id_map_by_target(FLOW, "100").await.unwrap(),
        Some(entry("k1", "100"))
    );
    let number = entry("k1", "100").target.number.unwrap();
    let by_number = store
        .id_map_by_target_numbers(FLOW, &[number.clone(), "NO-SUCH".into()])
        .await
        .unwrap();
    assert_eq!(by_number.len(), 1);
    assert_eq!(by_number[&number], entry("k1", "100"));
    assert!(
        store
            .id_map_by_target_numbers("other-flow", &[number])
            .await
            .unwrap()
            .is_empty()
    );

    let keys: Vec<String> = ["k1", "k2", "k3", "zz"].map(String::from).to_vec();
    let states = store.lookup(FLOW, &keys).await.unwrap();
    assert_eq!(states[0].id_map, Some(entry("k1", "100")));
    assert_eq!(states[1].dead_letters, vec![dead.clone()]);
    assert_eq!(states[2].deferral, Some(deferral));
    assert_eq!(states[3], sync_core::state::KeyState::default());
    assert!(
        store.lookup("other-flow", &keys).await.unwrap()[0]
            .id_map
            .is_none(),
        "flows are separate"
    );

    // One dead letter per key and stage: a failed Audit does not replace a failed write, a
    // page never splits the stages of a key, and clearing one stage keeps the others.
    let write = DeadLetter {
        stage: Stage::Write,
        reason: "违反字段唯一性要求".into(),
        ..dead.clone()
    };
    let other = DeadLetter {
        source_key: "k4".into(),
        ..dead.clone()
    };
    store
        .apply(
            &lease,
            &Changes {
                dead_letters_put: vec![write.clone(), other.clone()],
                ..Changes::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store.dead_letters(FLOW, None, 1).await.unwrap(),
        vec![dead.clone(), write.clone()]
    );
    assert_eq!(
        store.dead_letters(FLOW, Some("k2"), 1).await.unwrap(),
        vec![other.clone()]
    );
    store
        .apply(
            &lease,
            &Changes {
                dead_letter_stages_clear: vec![
                    ("k2".into(), Stage::Write),
                    ("k4".into(), other.stage.clone()),
                ],
                ..Changes::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store.lookup(FLOW, &keys).await.unwrap()[1].dead_letters,
        vec![dead.clone()]
    );
    assert_eq!(
        store.dead_letters(FLOW, None, 10).await.unwrap(),
        vec![dead.clone()]
    );

    // Removals run before insertions in one change set.
    store
        .apply(
            &lease,
            &Changes {
                dead_letters_clear: vec!["k2".into()],
                deferrals_clear: vec!["k3".into()],
                id_map: vec![entry("k1", "101")],
                ..Changes::default()
            },
        )
        .await
        .unwrap();
    assert!(store.dead_letters(FLOW, None, 10).await.unwrap().is_empty());
    assert!(store.deferrals(FLOW, None, 10).await.unwrap().is_empty());
    assert_eq!(
        store.id_map_get_many(FLOW, &keys).await.unwrap()["k1"]
            .target
            .id,
        "101"
    );

    // The ID map a page at a time, in key order (a sweep walks it).
    store
        .apply(
            &lease,
            &Changes {
                id_map: vec![entry("k3", "103"), entry("k0", "100")],
                ..Changes::default()
            },
        )
        .await
        .unwrap();
    let page = |after: Option<&'static str>| async move {
        store
            .id_map_page(FLOW, after, 2)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.source_key)
            .collect::<Vec<_>>()
    };
    assert_eq!(page(None).await, ["k0", "k1"]);
    assert_eq!(page(Some("k1")).await, ["k3"]);
    assert!(page(Some("k3")).await.is_empty());

    // The write-back queue: by source key, apart from the sends of actions.
    let send = |key: &str, action: &str| PendingSend {
        source_key: key.into(),
        action: action.into(),
        target: TargetRef::new(format!("id-{key}"), Some(format!("N-{key}"))),
        queued_at: 1_500,
        started_at: None,
    };
    store
        .apply(
            &lease,
            &Changes {
                sends_put: vec![
                    send("q3", WRITE_BACK),
                    send("q1", WRITE_BACK),
                    send("q2", WRITE_BACK),
                    send("q1", "notify"),
                ],
                ..Changes::default()
            },
        )
        .await
        .unwrap();
    let first: Vec<String> = store
        .queued(FLOW, WRITE_BACK, 2)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.source_key)
        .collect();
    assert_eq!(first, ["q1", "q2"]);
    assert_eq!(
        store.queued(FLOW, WRITE_BACK, 9).await.unwrap()[2],
        send("q3", WRITE_BACK)
    );
    assert_eq!(store.queued_count(FLOW, WRITE_BACK).await.unwrap(), 3);
    assert_eq!(store.sends(FLOW).await.unwrap(), [send("q1", "notify")]);
    store
        .apply(
            &lease,
            &Changes {
                sends_clear: vec![
                    ("q1".into(), WRITE_BACK.into()),
                    ("q2".into(), WRITE_BACK.into()),
                    ("q3".into(), WRITE_BACK.into()),
                    ("q1".into(), "notify".into()),
                ],
                ..Changes::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(store.queued_count(FLOW, WRITE_BACK).await.unwrap(), 0);

    // A message queued again while the first is being sent: the first one's start and
    // settle leave the second waiting.
    let first = send("m1", "notify");
    let second = PendingSend {
        queued_at: 1_600,
        ..send("m1", "notify")
    };
    let started = PendingSend {
        started_at: Some(1_550),
        ..first.clone()
    };
    for changes in [
        Changes {
            sends_put: vec![first.clone()],
            ..Changes::default()
        },
        Changes {
            sends_start: vec![started.clone()],
            ..Changes::default()
        },
    ] {
        store.apply(&lease, &changes).await.unwrap();
    }
    assert_eq!(
        store.sends(FLOW).await.unwrap(),
        std::slice::from_ref(&started)
    );
    for changes in [
        Changes {
            sends_put: vec![second.clone()],
            ..Changes::default()
        },
        Changes {
            sends_start: vec![started.clone()],
            sends_done: vec![started],
            ..Changes::default()
        },
    ] {
        store.apply(&lease, &changes).await.unwrap();
    }
    assert_eq!(
        store.sends(FLOW).await.unwrap(),
        std::slice::from_ref(&second)
    );
    store
        .apply(
            &lease,
            &Changes {
                sends_done: vec![second],
                ..Changes::default()
            },
        )
        .await
        .unwrap();
    assert!(store.sends(FLOW).await.unwrap().is_empty());

    // A lease taken over after expiry fences the old holder out.
    let taken = store.acquire_lease(FLOW, "b", 2_000, 1_000).await.unwrap();
    let stale = store
        .apply(
            &lease,
            &Changes {
                cursor: Some(Cursor {
                    version: 1,
                    key: None,
                }),
                ..Changes::default()
            },
        )
        .await;
    assert!(matches!(stale, Err(Error::LeaseLost { .. })));
    assert_eq!(store.cursor(FLOW).await.unwrap().unwrap().version, 42);
    store.release_lease(&lease).await.unwrap(); // not the holder: no effect
    assert!(store.acquire_lease(FLOW, "c", 2_100, 1_000).await.is_err());
    store.release_lease(&taken).await.unwrap();
    store.acquire_lease(FLOW, "c", 2_100, 1_000).await.unwrap();
}

#[tokio::test]
async fn memory_store_meets_the_contract() {
    contract(&MemoryStore::new()).await;
}

#[tokio::test]
async fn sqlite_store_meets_the_contract() {
    contract(&SqliteStore::open_in_memory().unwrap()).await;
}

#[tokio::test]
async fn sqlite_state_survives_reopening_and_uses_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite3");
    {
        let h = Harness::with_store(Arc::new(SqliteStore::open(&path).unwrap()));
        h.seed(3);
        h.engine.run(&h.flow()).await.unwrap();
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    drop(conn);
    let h = Harness::with_store(Arc::new(SqliteStore::open(&path).unwrap()));
    h.seed(3);
    let flow = h.builder().lookback_ms(120_000).build().unwrap();
    let r = h.engine.run(&flow).await.unwrap();
    // Same records (re-read through the lookback), new sink: the ID map says they exist, the hash says nothing changed.
    assert_eq!((r.counts.unchanged, r.counts.created), (3, 0));
    let runs = h.store.runs(FLOW, 10).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1].counts.created, 3);
    assert_eq!(runs[1].window.unwrap().high, T0 - 1_000);
}

#[tokio::test]
async fn two_processes_on_one_sqlite_file_cannot_run_the_same_flow() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite3");
    let a = Harness::with_store(Arc::new(SqliteStore::open(&path).unwrap()));
    let b_store: Arc<dyn StateStore> = Arc::new(SqliteStore::open(&path).unwrap());
    a.store
        .acquire_lease(FLOW, "process-a", T0, 60_000)
        .await
        .unwrap();
    let b = Harness::with_store(b_store);
    b.seed(1);
    let e = b.engine.run(&b.flow()).await.unwrap_err();
    assert!(e.to_string().contains("locked by `process-a`"), "{e}");
    assert!(e.is_retryable());
}

#[test]
fn sqlite_schema_is_versioned_and_newer_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite3");
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SqliteStore::SCHEMA_VERSION);
    drop(store);
    // Opening again applies nothing twice.
    assert_eq!(
        SqliteStore::open(&path).unwrap().schema_version().unwrap(),
        SqliteStore::SCHEMA_VERSION
    );
    // A file written by the first release (schema 1) is brought up to date.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP INDEX id_map_by_number; DROP TABLE tokens; DROP TABLE sends;
         UPDATE schema_version SET version = 1;",
    )
    .unwrap();
    drop(conn);
    assert_eq!(
        SqliteStore::open(&path).unwrap().schema_version().unwrap(),
        SqliteStore::SCHEMA_VERSION
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    let indexes: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'id_map_by_number'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexes, 1, "migration 2 ran");
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'tokens'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1, "migration 3 ran");
    drop(conn);
    // A file from a future build.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE schema_version SET version = 99", [])
        .unwrap();
    drop(conn);
    let e = SqliteStore::open(&path).unwrap_err();
    assert!(e.to_string().contains("newer than this build"), "{e}");
}
