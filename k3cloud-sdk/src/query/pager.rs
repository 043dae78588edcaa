//! Walking every row of a query, page by page.

use serde::de::DeserializeOwned;

use super::Query;
use crate::error::Result;

/// Walks all rows of a [`Query`], advancing `StartRow` by the rows received.
///
/// The end is found without trusting the page size: a server may cap pages below the `Limit`
/// asked for (2000 rows before patch 23.11, or whatever `WebAPIMaxQueryLimit` says), so a short
/// page only ends the walk once a cap is known — the first short page is followed by one more
/// call, which either comes back empty (the end) or shows the cap. Tell the pager the server's
/// cap with [`Pager::known_row_cap`] to save that call.
///
/// Rows that change while the walk runs can shift between pages; order by a unique key and, for
/// incremental reads, filter on a fixed time window.
#[derive(Debug)]
#[must_use = "a pager does nothing until you call .next_page()"]
pub struct Pager<'c, T> {
    query: Query<'c>,
    next_start: u64,
    page_size: u32,
    /// The largest short page seen: the server's cap, once confirmed.
    cap: Option<usize>,
    known_cap: Option<usize>,
    max_rows: Option<u64>,
    fetched: u64,
    done: bool,
    marker: std::marker::PhantomData<fn() -> T>,
}

impl<'c, T: DeserializeOwned> Pager<'c, T> {
    pub(super) fn new(query: Query<'c>) -> Self {
        if query.order.trim().is_empty() {
            tracing::warn!(
                form_id = %query.form_id,
                "paging without an order: rows may repeat or be skipped between pages"
            );
        }
        Pager {
            next_start: query.start_row,
            page_size: query.limit,
            query: query.top_row_count(0),
            cap: None,
            known_cap: None,
            max_rows: None,
            fetched: 0,
            done: false,
            marker: std::marker::PhantomData,
        }
    }

    /// The server's row cap per call, when known (for example 2000 on servers before 23.11):
    /// a page shorter than both it and the page size then ends the walk at once.
    pub fn known_row_cap(mut self, cap: usize) -> Self {
        self.known_cap = Some(cap.max(1));
        self
    }

    /// Stops after this many rows in total.
    pub fn max_rows(mut self, rows: u64) -> Self {
        self.max_rows = Some(rows);
        self
    }

    /// The `StartRow` of the next call.
    pub fn next_start_row(&self) -> u64 {
        self.next_start
    }

    /// The next page, or `None` when every row has been read.
    pub async fn next_page(&mut self) -> Result<Option<Vec<T>>> {
        if self.done {
            return Ok(None);
        }
        let mut limit = self.page_size;
        if let Some(max) = self.max_rows {
            let left = max.saturating_sub(self.fetched);
            if left == 0 {
                self.done = true;
                return Ok(None);
            }
            limit = limit.min(u32::try_from(left).unwrap_or(u32::MAX));
        }
        let page: Vec<T> = self
            .query
            .clone()
            .start_row(self.next_start)
            .limit(limit)
            .send()
            .await?;
        let n = page.len();
        if n == 0 {
            self.done = true;
            return Ok(None);
        }
        self.next_start += n as u64;
        self.fetched += n as u64;
        if n < limit as usize {
            let cap = self.known_cap.or(self.cap);
            match cap {
                // Shorter than the server's known cap: nothing is left.
                Some(cap) if n < cap => self.done = true,
                _ => self.cap = Some(self.cap.map_or(n, |c| c.max(n))),
            }
        }
        Ok(Some(page))
    }

    /// Reads every remaining row.
    pub async fn collect_all(mut self) -> Result<Vec<T>> {
        let mut all = Vec::new();
        while let Some(page) = self.next_page().await? {
            all.extend(page);
        }
        Ok(all)
    }
}
