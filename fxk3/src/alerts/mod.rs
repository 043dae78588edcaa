//! Alerts: each problem of [`health`](crate::health) told once when it appears, again every
//! `remind_every` while it lasts, and once more when it clears — to webhooks, group robots
//! (企业微信, 钉钉, 飞书) and CRM users (`channels`).
//!
//! What to tell is [`Ledger::step`], a pure function of the open problems, the problems now
//! and the time; the [`Alerter`] sends what it returns and keeps a notice a channel did not
//! take, to offer it again at the next check.

mod channels;
mod text;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

pub use channels::{Channel, ChannelKind, DeliveryError};
pub use text::Lang;

use crate::health::Problem;

/// Why a notice is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A problem appeared.
    Alert,
    /// It is still there after `remind_every`.
    Reminder,
    /// It cleared.
    Resolved,
}

impl Event {
    /// The name used in JSON and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Alert => "alert",
            Event::Reminder => "reminder",
            Event::Resolved => "resolved",
        }
    }
}

/// One thing to tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Notice {
    /// Alert, reminder or resolution.
    pub event: Event,
    /// The problem (for a resolution: as last seen).
    pub problem: Problem,
    /// When the problem was first seen, epoch ms.
    pub since: i64,
    /// When this notice was made, epoch ms.
    pub at: i64,
}

/// A problem that was told and has not cleared.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Open {
    problem: Problem,
    since: i64,
    last_told: i64,
}

/// The problems told and not yet resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    open: BTreeMap<String, Open>,
}

impl Ledger {
    /// What to tell at `now` (epoch ms) given the problems seen now: an alert for each new
    /// one, a reminder for one told `remind_every` ago or more, a resolution for each open
    /// one that is gone. A problem whose count changes is the same problem (no new alert).
    pub fn step(&mut self, problems: &[Problem], now: i64, remind_every: Duration) -> Vec<Notice> {
        let remind_ms = i64::try_from(remind_every.as_millis()).unwrap_or(i64::MAX);
        let mut out = Vec::new();
        let current: BTreeMap<String, &Problem> = problems.iter().map(|p| (p.key(), p)).collect();
        self.open.retain(|key, open| {
            if current.contains_key(key) {
                return true;
            }
            out.push(Notice {
                event: Event::Resolved,
                problem: open.problem.clone(),
                since: open.since,
                at: now,
            });
            false
        });
        for (key, problem) in current {
            match self.open.get_mut(&key) {
                None => {
                    out.push(Notice {
                        event: Event::Alert,
                        problem: problem.clone(),
                        since: now,
                        at: now,
                    });
                    self.open.insert(
                        key,
                        Open {
                            problem: problem.clone(),
                            since: now,
                            last_told: now,
                        },
                    );
                }
                Some(open) => {
                    open.problem = problem.clone();
                    if now.saturating_sub(open.last_told) >= remind_ms {
                        open.last_told = now;
                        out.push(Notice {
                            event: Event::Reminder,
                            problem: problem.clone(),
                            since: open.since,
                            at: now,
                        });
                    }
                }
            }
        }
        out
    }

    /// The open problems, by key.
    pub fn open(&self) -> impl Iterator<Item = &Problem> {
        self.open.values().map(|o| &o.problem)
    }
}

/// How long a notice a channel refused is offered again before it is given up.
const KEEP_UNDELIVERED_MS: i64 = 24 * 3600 * 1000;

/// Sends alerts to the configured channels.
#[derive(Debug)]
pub struct Alerter {
    channels: Vec<Channel>,
    remind_every: Duration,
    lang: Lang,
    zone: chrono::FixedOffset,
    ledger: Ledger,
    /// `(channel index, notice)` not delivered yet.
    undelivered: Vec<(usize, Notice)>,
}

/// What one check sent.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Checked {
    /// The notices made by this check.
    pub notices: Vec<Notice>,
    /// Deliveries that failed (channel, error); they are tried again at the next check,
    /// unless the message may have gone out.
    pub failed: Vec<(ChannelKind, DeliveryError)>,
}

impl Alerter {
    /// An alerter telling `channels` in `lang`, times shown in `zone`.
    pub fn new(
        channels: Vec<Channel>,
        remind_every: Duration,
        lang: Lang,
        zone: chrono::FixedOffset,
    ) -> Self {
        Alerter {
            channels,
            remind_every,
            lang,
            zone,
            ledger: Ledger::default(),
            undelivered: Vec::new(),
        }
    }

    /// The problems told and not yet resolved.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Compares `problems` with the open ones at `now` and tells every channel what changed;
    /// notices a channel did not take before are offered to it again first.
    pub async fn check(&mut self, problems: &[Problem], now: i64) -> Checked {
        let notices = self.ledger.step(problems, now, self.remind_every);
        let mut queue = std::mem::take(&mut self.undelivered);
        queue.retain(|(_, n)| now.saturating_sub(n.at) < KEEP_UNDELIVERED_MS);
        for notice in &notices {
            queue.extend((0..self.channels.len()).map(|i| (i, notice.clone())));
        }
        let mut failed = Vec::new();
        for (i, notice) in queue {
            let channel = &self.channels[i];
            let message = text::render(&notice, self.lang, self.zone);
            match channel.send(&notice, &message).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(channel = channel.kind().as_str(), error = %e, "alert not delivered; tried again at the next check");
                    if e.may_retry() {
                        self.undelivered.push((i, notice));
                    }
                    failed.push((channel.kind(), e));
                }
            }
        }
        Checked { notices, failed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::ProblemKind;

    fn problem(kind: ProblemKind, flow: &str, count: u64) -> Problem {
        Problem {
            kind,
            flow: flow.into(),
            count,
            detail: "x".into(),
        }
    }

    fn events(notices: &[Notice]) -> Vec<(Event, String)> {
        notices.iter().map(|n| (n.event, n.problem.key())).collect()
    }

    /// At a time, the problems seen, and the notices expected.
    type Step = (i64, Vec<Problem>, Vec<(Event, &'static str)>);

    #[test]
    fn a_problem_is_told_once_reminded_after_the_interval_and_resolved_once() {
        let hour = Duration::from_secs(3600);
        let dead = |n| problem(ProblemKind::DeadLetters, "orders", n);
        let failed = problem(ProblemKind::FlowFailed, "customers", 1);
        let mut ledger = Ledger::default();
        let table: Vec<Step> = vec![
            (0, vec![], vec![]),
            (
                1_000,
                vec![dead(1)],
                vec![(Event::Alert, "dead_letters:orders")],
            ),
            // More records of the same problem: no new alert.
            (2_000, vec![dead(3)], vec![]),
            (
                3_000,
                vec![dead(3), failed.clone()],
                vec![(Event::Alert, "flow_failed:customers")],
            ),
            (3_601_000 - 1, vec![dead(3), failed.clone()], vec![]),
            (
                3_601_000,
                vec![dead(2), failed.clone()],
                vec![(Event::Reminder, "dead_letters:orders")],
            ),
            (
                3_603_000,
                vec![dead(2)],
                vec![(Event::Resolved, "flow_failed:customers")],
            ),
            (
                3_604_000,
                vec![],
                vec![(Event::Resolved, "dead_letters:orders")],
            ),
            (3_605_000, vec![], vec![]),
            // Back again: a new alert.
            (
                3_606_000,
                vec![dead(1)],
                vec![(Event::Alert, "dead_letters:orders")],
            ),
        ];
        for (now, problems, want) in table {
            let got = ledger.step(&problems, now, hour);
            let want: Vec<(Event, String)> =
                want.into_iter().map(|(e, k)| (e, k.to_owned())).collect();
            assert_eq!(events(&got), want, "at {now}");
        }
    }

    #[test]
    fn a_resolution_carries_the_problem_as_last_seen_and_when_it_began() {
        let mut ledger = Ledger::default();
        let hour = Duration::from_secs(3600);
        ledger.step(&[problem(ProblemKind::DeadLetters, "orders", 1)], 10, hour);
        ledger.step(&[problem(ProblemKind::DeadLetters, "orders", 4)], 20, hour);
        let got = ledger.step(&[], 30, hour);
        assert_eq!(
            got,
            vec![Notice {
                event: Event::Resolved,
                problem: problem(ProblemKind::DeadLetters, "orders", 4),
                since: 10,
                at: 30,
            }]
        );
        assert_eq!(ledger.open().count(), 0);
    }
}
