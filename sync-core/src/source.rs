//! Reading changes from the system records come from, and writing back to it.

use crate::error::ConnectorError;
use crate::metadata::ObjectDescription;
use crate::record::{Position, Record};
use crate::sink::TargetRef;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex, PoisonError};

/// The half-open time range a run reads: `low <= version < high`, epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Inclusive lower bound (cursor minus lookback).
    pub low: i64,
    /// Exclusive upper bound (run start minus settle), fixed for the whole run.
    pub high: i64,
}

impl Window {
    /// Whether `version` lies in the window.
    pub fn contains(&self, version: i64) -> bool {
        self.low <= version && version < self.high
    }
    /// Whether the window holds no instant at all.
    pub fn is_empty(&self) -> bool {
        self.low >= self.high
    }
}

/// What the engine asks a [`Source`] for: the next page of a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// The window; only records with `window.low <= version < window.high` may be returned.
    pub window: Window,
    /// The last record of the previous page; the page starts strictly after it. `None` for the
    /// first page.
    pub after: Option<Position>,
    /// The continuation token the source returned with the previous page, if any (an offset,
    /// a search-after id…). Sources that page by `after` can ignore it.
    pub token: Option<String>,
    /// The page size the engine wants; a source may return fewer, never more.
    pub limit: usize,
}

impl PageRequest {
    /// Where the next page starts: after the engine's position, or after the place the
    /// source's token names when that is further (a source that hands back the end of a page
    /// as `"<version>:<key>"` moves on even when every record of the page was left out).
    pub(crate) fn resume_after(&self) -> Option<Position> {
        let token = self.token.as_deref().and_then(|t| {
            let (version, key) = t.split_once(':')?;
            Some(Position {
                version: version.parse().ok()?,
                key: key.to_owned(),
            })
        });
        match (self.after.clone(), token) {
            (Some(a), Some(t)) => Some(a.max(t)),
            (a, t) => a.or(t),
        }
    }
}

/// What a source works out once per window and reuses for every page of it (the records whose
/// details changed, the orders whose outbounds changed). Cheap to clone: clones share it.
#[derive(Debug)]
pub(crate) struct PerWindow<T>(Arc<Mutex<Option<Kept<T>>>>);

/// A window and what was worked out for it.
type Kept<T> = (Window, Arc<T>);

impl<T> Clone for PerWindow<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Default for PerWindow<T> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<T> PerWindow<T> {
    /// What was kept for `window`, if anything.
    pub(crate) fn get(&self, window: Window) -> Option<Arc<T>> {
        let kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        kept.as_ref()
            .filter(|(w, _)| *w == window)
            .map(|(_, v)| v.clone())
    }

    /// Keeps `value` for `window` (forgetting the previous window's) and hands it out.
    pub(crate) fn put(&self, window: Window, value: T) -> Arc<T> {
        let value = Arc::new(value);
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some((window, value.clone()));
        value
    }
}

/// The token of a page that ended at `position` (see [`PageRequest::resume_after`]).
pub(crate) fn position_token(position: &Position) -> String {
    format!("{}:{}", position.version, position.key)
}

/// One page of records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// Records ordered by `(version, key)` ascending, all inside the window and after
    /// [`PageRequest::after`].
    pub records: Vec<Record>,
    /// Whether more records may follow. The engine stops at the first page with `false`.
    pub has_more: bool,
    /// An opaque token handed back in the next [`PageRequest`].
    pub token: Option<String>,
}

/// A system records are read from (Fxiaoke `data/query`, K3Cloud `ExecuteBillQuery`).
///
/// A connector implements `read_page` with the vendor's query: filter on the modification
/// time with `>= low` and `< high`, order by modification time then id, and continue after
/// `after` (keyset) or by the token (offset). The engine checks the order and the window and
/// fails the run with [`Error::SourceContract`](crate::Error::SourceContract) if they are broken.
///
/// ```
/// use async_trait::async_trait;
/// use sync_core::{ConnectorError, Page, PageRequest, Record, Source};
///
/// struct Empty;
///
/// #[async_trait]
/// impl Source for Empty {
///     async fn read_page(&self, _req: &PageRequest) -> Result<Page, ConnectorError> {
///         Ok(Page::default())
///     }
///     async fn get(&self, _key: &str) -> Result<Option<Record>, ConnectorError> {
///         Ok(None)
///     }
/// }
/// ```
#[async_trait]
pub trait Source: Send + Sync {
    /// Reads the next page of the window.
    async fn read_page(&self, request: &PageRequest) -> Result<Page, ConnectorError>;

    /// Reads one record by key (for deferred records and dead-letter re-runs). `Ok(None)` when
    /// it no longer exists.
    async fn get(&self, key: &str) -> Result<Option<Record>, ConnectorError>;

    /// Reads several records by key; the default calls [`get`](Source::get) for each. Missing
    /// records are left out.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Record>, ConnectorError> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(r) = self.get(key).await? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// The source server's time now, epoch ms, when it tells it (the `Date` of its answers);
    /// the default does not know. A run measures its window with this clock, so that a machine
    /// whose clock is off from the server's neither skips nor re-reads records.
    async fn server_time_ms(&self) -> Result<Option<i64>, ConnectorError> {
        Ok(None)
    }

    /// Describes the source object's fields (Fxiaoke `object/describe`), for
    /// [`Engine::check`](crate::Engine::check). The default has no description.
    async fn describe(&self) -> Result<Option<ObjectDescription>, ConnectorError> {
        Ok(None)
    }
}

/// One write-back: tell the source record which target it became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteBackItem {
    /// The source record's key.
    pub source_key: String,
    /// The target that was created for it.
    pub target: TargetRef,
}

/// The outcome of one write-back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteBackOutcome {
    /// The source record now holds the target's number or id.
    Done,
    /// It failed; the reason goes to the dead-letter list.
    Failed {
        /// The vendor's message.
        reason: String,
    },
}

/// Writes the target's number (or id) back into the source record after a create, for example
/// the K3Cloud customer number into a custom field of the Fxiaoke account. This is what lets
/// people see the link in the CRM, and what lets the ID map be rebuilt from either side.
#[async_trait]
pub trait SourceWriteBack: Send + Sync {
    /// Writes back a batch; one outcome per item, in order.
    async fn write_back(
        &self,
        items: &[WriteBackItem],
    ) -> Result<Vec<WriteBackOutcome>, ConnectorError>;

    /// The target number (or id) `record` holds from an earlier write-back, if any. When the
    /// state is lost and the record's key was edited since it was synced, this is how
    /// [`Engine::rebuild_id_map`](crate::Engine::rebuild_id_map) still finds its target
    /// instead of leaving it to be created a second time. The default knows none.
    fn written_back(&self, record: &crate::Record) -> Option<String> {
        let _ = record;
        None
    }
}
