//! Rule 1: the read window, and the checks that keep a source honest about it.

use crate::error::{Error, Result};
use crate::record::{Position, Record};
use crate::source::{Page, PageRequest, Window};
use std::cmp::Ordering;

/// The window of a run: `[cursor - lookback, now - settle)`. The first run (no cursor) starts
/// at `start_from`.
pub(crate) fn window(
    cursor: Option<i64>,
    now: i64,
    lookback: i64,
    settle: i64,
    start_from: i64,
) -> Window {
    let low = match cursor {
        Some(c) => c.saturating_sub(lookback),
        None => start_from,
    };
    Window {
        low,
        high: now.saturating_sub(settle),
    }
}

/// Keeps the records of a page that come after `after`, checking that they are inside the
/// window and strictly ordered by `(version, key)`. Records at or before `after` are an
/// overlap with the previous page (offset paging while rows shift) and are dropped: they were
/// processed already.
pub(crate) fn check_page(
    flow: &str,
    window: &Window,
    after: Option<&Position>,
    records: Vec<Record>,
) -> Result<Vec<Record>> {
    let mut out: Vec<Record> = Vec::with_capacity(records.len());
    for r in records {
        if !window.contains(r.version) {
            return Err(Error::SourceContract {
                flow: flow.to_owned(),
                reason: format!(
                    "record `{}` has version {} outside the window [{}, {})",
                    r.key, r.version, window.low, window.high
                ),
            });
        }
        if after.is_some_and(|a| r.cmp_position(a) != Ordering::Greater) {
            continue;
        }
        if let Some(prev) = out.last()
            && (prev.version, prev.key.as_str()) >= (r.version, r.key.as_str())
        {
            return Err(Error::SourceContract {
                flow: flow.to_owned(),
                reason: format!(
                    "records out of (modified_time, id) order: `{}`@{} after `{}`@{}",
                    r.key, r.version, prev.key, prev.version
                ),
            });
        }
        out.push(r);
    }
    Ok(out)
}

/// The pages of one window, read in turn: the keyset position and the source's token carried
/// from each page to the next, every page checked ([`check_page`]), and a page that brings
/// nothing new yet claims more follow refused — a source that would loop forever. Runs and
/// ID-map rebuilds walk pages with it alike.
#[derive(Debug)]
pub(crate) struct Pages {
    window: Window,
    after: Option<Position>,
    token: Option<String>,
    done: bool,
}

impl Pages {
    pub(crate) fn new(window: Window) -> Self {
        Pages {
            window,
            after: None,
            token: None,
            done: false,
        }
    }

    /// The request for the next page of `limit` records, or `None` after the last page.
    pub(crate) fn next_request(&self, limit: usize) -> Option<PageRequest> {
        (!self.done).then(|| PageRequest {
            window: self.window,
            after: self.after.clone(),
            token: self.token.clone(),
            limit,
        })
    }

    /// Takes the page read for the last request: its new records, checked.
    pub(crate) fn accept(&mut self, flow: &str, page: Page) -> Result<Vec<Record>> {
        let records = check_page(flow, &self.window, self.after.as_ref(), page.records)?;
        if records.is_empty() && page.has_more && page.token == self.token {
            return Err(Error::SourceContract {
                flow: flow.to_owned(),
                reason: "a page brought nothing new but claims more follow".into(),
            });
        }
        if let Some(last) = records.last() {
            self.after = Some(last.position());
        }
        self.token = page.token;
        self.done = !page.has_more;
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn r(key: &str, v: i64) -> Record {
        Record::new(key, v, Value::Null)
    }

    #[test]
    fn window_is_cursor_minus_lookback_to_now_minus_settle() {
        assert_eq!(
            window(Some(10_000), 50_000, 3_000, 1_000, 0),
            Window {
                low: 7_000,
                high: 49_000
            }
        );
        assert_eq!(
            window(None, 50_000, 3_000, 1_000, 5),
            Window {
                low: 5,
                high: 49_000
            }
        );
    }

    #[test]
    fn window_is_closed_low_open_high() {
        let w = Window { low: 10, high: 20 };
        assert!(w.contains(10));
        assert!(!w.contains(20));
        assert!(check_page("f", &w, None, vec![r("a", 20)]).is_err());
        assert_eq!(
            check_page("f", &w, None, vec![r("a", 10)]).unwrap().len(),
            1
        );
    }

    #[test]
    fn page_must_be_ordered_and_overlap_is_dropped() {
        let w = Window { low: 0, high: 100 };
        assert!(check_page("f", &w, None, vec![r("b", 5), r("a", 5)]).is_err());
        let after = Position {
            version: 5,
            key: "a".into(),
        };
        let kept =
            check_page("f", &w, Some(&after), vec![r("a", 5), r("b", 5), r("a", 6)]).unwrap();
        let keys: Vec<_> = kept.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["b", "a"]);
    }

    #[test]
    fn pages_carry_the_position_and_token_and_refuse_a_page_that_brings_nothing() {
        let w = Window { low: 0, high: 100 };
        let mut pages = Pages::new(w);
        let first = pages.next_request(2).unwrap();
        assert_eq!((first.after, first.token, first.limit), (None, None, 2));
        let page = |records, has_more, token: Option<&str>| Page {
            records,
            has_more,
            token: token.map(str::to_owned),
        };
        let got = pages
            .accept("f", page(vec![r("a", 1), r("b", 2)], true, Some("t1")))
            .unwrap();
        assert_eq!(got.len(), 2);
        let second = pages.next_request(2).unwrap();
        assert_eq!(second.after.map(|p| p.key), Some("b".to_owned()));
        assert_eq!(second.token.as_deref(), Some("t1"));
        // The overlap is dropped; nothing new, the same token, and more claimed: refused.
        let e = pages
            .accept("f", page(vec![r("b", 2)], true, Some("t1")))
            .unwrap_err();
        assert!(e.to_string().contains("brought nothing new"), "{e}");
        // A new token is progress of its own (a server-side cursor).
        let mut pages = Pages::new(w);
        pages.accept("f", page(vec![], true, Some("t2"))).unwrap();
        pages
            .accept("f", page(vec![r("c", 3)], false, None))
            .unwrap();
        assert!(pages.next_request(2).is_none());
    }
}
