//! The engine's promise as a property: whatever the interleaving of source changes, clock
//! steps, failed or lost writes and crashes (a state-store commit that never happens, as when
//! the process is killed), runs until settled leave each source record in the sink exactly
//! once, with its latest values, and nothing pending.
//!
//! `PROPTEST_CASES=5000 cargo test --release -p sync-core --test engine_properties` for a
//! longer search.

mod common;

use std::sync::Arc;

use common::{CrashStore, FLOW, Harness, NowMsExt as _, QUIET, customer};
use proptest::prelude::*;
use sync_core::state::{MemoryStore, StateStore};
use sync_core::testing::CallFault;

#[derive(Debug, Clone)]
enum Op {
    /// A CRM user creates or edits record `k{key}`.
    Change { key: u8, name: u8 },
    /// Time passes.
    Advance { ms: u32 },
    /// The sink's next write call fails: applied with its answer lost, or refused before
    /// anything was sent.
    Fault { applied: bool },
    /// The process dies at the `after`-th state commit from now.
    Crash { after: u8 },
    /// A run.
    Run,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..6, 0u8..3).prop_map(|(key, name)| Op::Change { key, name }),
        2 => (0u32..90_000).prop_map(|ms| Op::Advance { ms }),
        1 => any::<bool>().prop_map(|applied| Op::Fault { applied }),
        1 => (1u8..5).prop_map(|after| Op::Crash { after }),
        3 => Just(Op::Run),
    ]
}

/// Plays `ops`, then runs until settled; returns what is wrong, if anything.
async fn play(ops: &[Op]) -> Result<(), String> {
    let inner: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let store = Arc::new(CrashStore::new(inner.clone(), 0));
    let h = Harness::with_store(store.clone());
    let flow = h.flow();
    let mut latest = std::collections::BTreeMap::new();
    for op in ops {
        match *op {
            Op::Change { key, name } => {
                h.clock.advance(1);
                let key = format!("k{key}");
                let name = format!("name {name}");
                h.source.upsert(customer(&key, h.clock.now_ms_(), &name));
                latest.insert(key, name);
            }
            Op::Advance { ms } => h.clock.advance(i64::from(ms)),
            Op::Fault { applied } => h.sink.fault_next_write(if applied {
                CallFault::TimeoutAfterApply
            } else {
                CallFault::FailBeforeSend
            }),
            Op::Crash { after } => store.crash_after(usize::from(after)),
            Op::Run => {
                let _ = h.engine.run(&flow).await;
            }
        }
    }
    // The network heals, no process dies any more; runs go on as `watch` would run them.
    store.crash_after(0);
    h.sink.heal();
    for _ in 0..12 {
        h.clock.advance(QUIET + 3_600_000);
        h.engine
            .run(&flow)
            .await
            .map_err(|e| format!("a run after healing failed: {e}"))?;
    }
    if h.sink.duplicates() != 0 {
        return Err(format!("duplicates: {:?}", h.sink.documents()));
    }
    for (key, name) in &latest {
        let docs = h.sink.documents_for(key);
        if docs.len() != 1 {
            return Err(format!("{key}: {} documents", docs.len()));
        }
        if docs[0].payload["FName"] != name.as_str() {
            return Err(format!(
                "{key}: holds {} not {name}",
                docs[0].payload["FName"]
            ));
        }
    }
    if h.sink.documents().len() != latest.len() {
        return Err(format!("documents of no record: {:?}", h.sink.documents()));
    }
    let intents = inner.intents(FLOW).await.map_err(|e| e.to_string())?;
    let letters = inner
        .dead_letters(FLOW, None, 100)
        .await
        .map_err(|e| e.to_string())?;
    let deferred = inner
        .deferrals(FLOW, None, 100)
        .await
        .map_err(|e| e.to_string())?;
    if !intents.is_empty() || !letters.is_empty() || !deferred.is_empty() {
        return Err(format!(
            "left pending: intents {intents:?}, dead letters {letters:?}, deferred {deferred:?}"
        ));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_interleaving_settles_with_each_record_once_and_current(
        ops in prop::collection::vec(op(), 1..40)
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        let outcome = runtime.block_on(play(&ops));
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }
}
