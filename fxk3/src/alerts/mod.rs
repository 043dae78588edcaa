//! Alerts: each problem of [`health`](crate::health) told once when it appears, again every
//! `remind_every` while it lasts, and once more when it clears — to webhooks, group robots
//! (企业微信, 钉钉, 飞书) and CRM users (`channels`).
//!
//! What to tell is [`Ledger::step`], a pure function of the open problems, the problems now
//! and the time. The [`Alerter`] queues what it returns per channel ([`Outbox`]) and sends
//! each channel's queue in order, stopping at its first failure: a channel that is down gets
//! the rest at the next check, in the order things happened, without stale reminders.

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

/// How long a notice a channel did not take is offered again before it is given up.
const KEEP_UNDELIVERED_MS: i64 = 24 * 3600 * 1000;

/// One channel's notices not delivered yet, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outbox {
    queue: Vec<Notice>,
}

impl Outbox {
    /// Queues `n`, folding it into what waits for the same problem: a reminder behind a
    /// waiting alert or reminder says nothing new (it replaces a reminder); a resolution of a
    /// problem whose alert never went out cancels both (the channel never heard of it).
    pub fn push(&mut self, n: Notice) {
        let key = n.problem.key();
        let waiting = |e: Event| {
            self.queue
                .iter()
                .position(|q| q.event == e && q.problem.key() == key)
        };
        match n.event {
            Event::Alert => self.queue.push(n),
            Event::Reminder => match (waiting(Event::Alert), waiting(Event::Reminder)) {
                (Some(_), _) => {}
                (None, Some(i)) => self.queue[i] = n,
                (None, None) => self.queue.push(n),
            },
            Event::Resolved => {
                if waiting(Event::Alert).is_some() {
                    self.queue.retain(|q| q.problem.key() != key);
                } else {
                    self.queue
                        .retain(|q| !(q.event == Event::Reminder && q.problem.key() == key));
                    self.queue.push(n);
                }
            }
        }
    }

    /// The notices waiting, oldest first.
    pub fn waiting(&self) -> &[Notice] {
        &self.queue
    }
}

/// Sends alerts to the configured channels.
#[derive(Debug)]
pub struct Alerter {
    channels: Vec<Channel>,
    remind_every: Duration,
    lang: Lang,
    zone: chrono::FixedOffset,
    ledger: Ledger,
    /// Per channel, what it has not taken yet.
    outboxes: Vec<Outbox>,
}

/// What one check sent.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Checked {
    /// The notices made by this check.
    pub notices: Vec<Notice>,
    /// Deliveries that failed (channel, error). The notice is offered again at the next
    /// check, unless it may have gone out or the channel refused it for good.
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
        let outboxes = vec![Outbox::default(); channels.len()];
        Alerter {
            channels,
            remind_every,
            lang,
            zone,
            ledger: Ledger::default(),
            outboxes,
        }
    }

    /// Compares `problems` with the open ones at `now` and tells every channel what changed,
    /// after what it did not take before. A channel's sending stops at its first failure
    /// (one timeout per channel and check, at most); the rest waits for the next check.
    pub async fn check(&mut self, problems: &[Problem], now: i64) -> Checked {
        let notices = self.ledger.step(problems, now, self.remind_every);
        let mut failed = Vec::new();
        for (channel, outbox) in self.channels.iter().zip(&mut self.outboxes) {
            outbox
                .queue
                .retain(|n| now.saturating_sub(n.at) < KEEP_UNDELIVERED_MS);
            for notice in &notices {
                outbox.push(notice.clone());
            }
            while let Some(notice) = outbox.queue.first() {
                let message = text::render(notice, self.lang, self.zone);
                match channel.send(notice, &message).await {
                    Ok(()) => {
                        outbox.queue.remove(0);
                    }
                    Err(e) if e.may_retry() => {
                        tracing::warn!(channel = channel.kind().as_str(), error = %e, "alert not delivered; offered again at the next check");
                        failed.push((channel.kind(), e));
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(channel = channel.kind().as_str(), error = %e, "alert not delivered and not offered again");
                        failed.push((channel.kind(), e));
                        outbox.queue.remove(0);
                    }
                }
            }
        }
        Checked { notices, failed }
    }

    /// Each channel's notices not delivered yet.
    pub fn outboxes(&self) -> impl Iterator<Item = (ChannelKind, &Outbox)> {
        self.channels
            .iter()
            .map(Channel::kind)
            .zip(self.outboxes.iter())
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

    fn notice(event: Event, kind: ProblemKind, at: i64) -> Notice {
        Notice {
            event,
            problem: problem(kind, "orders", 1),
            since: 0,
            at,
        }
    }

    #[test]
    fn a_channel_that_is_down_gets_what_it_missed_in_order_without_stale_reminders() {
        use Event::{Alert, Reminder, Resolved};
        let (dead, failed) = (ProblemKind::DeadLetters, ProblemKind::FlowFailed);
        let of = |o: &Outbox| -> Vec<(Event, ProblemKind, i64)> {
            o.waiting()
                .iter()
                .map(|n| (n.event, n.problem.kind, n.at))
                .collect()
        };
        // Reminders behind a waiting alert add nothing.
        let mut o = Outbox::default();
        for n in [
            notice(Alert, dead, 1),
            notice(Reminder, dead, 2),
            notice(Reminder, dead, 3),
        ] {
            o.push(n);
        }
        assert_eq!(of(&o), [(Alert, dead, 1)]);
        // A problem that cleared before its alert went out: nothing to tell.
        o.push(notice(Resolved, dead, 4));
        assert!(o.waiting().is_empty());
        // Told, then the channel went down: the newest reminder, then the resolution, which
        // makes the reminder moot; another problem's notices keep their place.
        o.push(notice(Reminder, dead, 5));
        o.push(notice(Alert, failed, 6));
        o.push(notice(Reminder, dead, 7));
        assert_eq!(of(&o), [(Reminder, dead, 7), (Alert, failed, 6)]);
        o.push(notice(Resolved, dead, 8));
        assert_eq!(of(&o), [(Alert, failed, 6), (Resolved, dead, 8)]);
        // Back again before the resolution went out: resolution, then the new alert.
        o.push(notice(Alert, dead, 9));
        assert_eq!(
            of(&o),
            [(Alert, failed, 6), (Resolved, dead, 8), (Alert, dead, 9)]
        );
    }

    #[tokio::test]
    async fn sending_to_a_channel_stops_at_its_first_failure_and_resumes_in_order() {
        use wiremock::matchers::method;
        use wiremock::{Mock, MockServer, ResponseTemplate};

        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(502))
            .up_to_n_times(2)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&server)
            .await;
        let channel = Channel::url(
            ChannelKind::Webhook,
            reqwest::Client::new(),
            secrecy::SecretString::from(format!("{}/hook", server.uri())),
            None,
        );
        let hour = Duration::from_secs(3600);
        let zone = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
        let mut alerter = Alerter::new(vec![channel], hour, Lang::En, zone);
        let dead = problem(ProblemKind::DeadLetters, "orders", 1);
        let failed = problem(ProblemKind::FlowFailed, "orders", 1);
        // Two alerts: the first meets the failure, the second is not tried.
        let c = alerter.check(&[dead.clone(), failed.clone()], 0).await;
        assert_eq!((c.notices.len(), c.failed.len()), (2, 1));
        let sent = || async { server.received_requests().await.unwrap().len() };
        assert_eq!(sent().await, 1);
        // Still down: one try again, of the oldest.
        let c = alerter.check(&[dead.clone(), failed.clone()], 60_000).await;
        assert_eq!((c.notices.len(), c.failed.len()), (0, 1));
        assert_eq!(sent().await, 2);
        // Up: what waited, in order, then what happened since.
        let c = alerter.check(&[dead.clone(), failed], 120_000).await;
        assert!(c.failed.is_empty());
        let c = alerter.check(&[dead], 180_000).await;
        assert!(c.failed.is_empty());
        let bodies: Vec<String> = server.received_requests().await.unwrap()[2..]
            .iter()
            .map(|r| {
                let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
                format!("{} {}", v["event"], v["problem"])
            })
            .collect();
        assert_eq!(
            bodies,
            [
                r#""alert" "dead_letters""#,
                r#""alert" "flow_failed""#,
                r#""resolved" "flow_failed""#
            ]
        );
        assert!(alerter.outboxes().all(|(_, o)| o.waiting().is_empty()));
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
