//! The words of a notice, in Chinese or English.

use serde::Deserialize;

use super::{Event, Notice};
use crate::health::ProblemKind;

/// The language of alerts and of the web page's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Lang {
    /// 中文 (the default: the people told are at Chinese companies).
    #[default]
    Zh,
    /// English.
    En,
}

/// A notice as text: a one-line title and the lines under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rendered {
    pub(crate) title: String,
    pub(crate) body: String,
}

impl Rendered {
    /// Title and body in one text, for channels with a single text field.
    pub(crate) fn full(&self) -> String {
        format!("{}\n{}", self.title, self.body)
    }
}

pub(crate) fn render(n: &Notice, lang: Lang, zone: chrono::FixedOffset) -> Rendered {
    let p = &n.problem;
    let detail = short(&p.detail);
    let flow = &p.flow;
    let count = p.count;
    let since = crate::report::local_time(n.since, zone);
    let minutes = (n.at.saturating_sub(n.since) / 60_000).max(0);
    match lang {
        Lang::Zh => {
            let tag = match n.event {
                Event::Alert => "【fxk3 告警】",
                Event::Reminder => "【fxk3 仍未解决】",
                Event::Resolved => "【fxk3 已恢复】",
            };
            let what = match p.kind {
                ProblemKind::FlowFailed => "同步失败".to_owned(),
                ProblemKind::DeadLetters => format!("{count} 条记录进入死信"),
                ProblemKind::UnknownOutcomes => format!("{count} 条写入或消息结果未知"),
                ProblemKind::FollowUpsStalled => format!("{count} 条回写或消息积压未发"),
            };
            let title = format!("{tag}{flow}：{what}");
            let body = match n.event {
                Event::Resolved => format!("已恢复，持续 {minutes} 分钟（自 {since} 起）"),
                _ => format!(
                    "原因：{detail}\n自 {since} 起\n处理：{}",
                    action(p.kind, flow, lang)
                ),
            };
            Rendered { title, body }
        }
        Lang::En => {
            let tag = match n.event {
                Event::Alert => "[fxk3 alert]",
                Event::Reminder => "[fxk3 still failing]",
                Event::Resolved => "[fxk3 resolved]",
            };
            let what = match p.kind {
                ProblemKind::FlowFailed => "the flow failed".to_owned(),
                ProblemKind::DeadLetters => format!("{count} records dead-lettered"),
                ProblemKind::UnknownOutcomes => {
                    format!("{count} writes or messages of unknown outcome")
                }
                ProblemKind::FollowUpsStalled => {
                    format!("{count} write-backs or messages waiting too long")
                }
            };
            let title = format!("{tag} {flow}: {what}");
            let body = match n.event {
                Event::Resolved => format!("cleared after {minutes} min (since {since})"),
                _ => format!(
                    "reason: {detail}\nsince {since}\nwhat to do: {}",
                    action(p.kind, flow, lang)
                ),
            };
            Rendered { title, body }
        }
    }
}

/// At most this many characters of a reason: robots cap a text (企业微信 at 2,048 bytes, and a
/// Chinese character is 3), and the full reason is on the page and in `fxk3 dead-letters`.
const DETAIL_CHARS: usize = 300;

fn short(detail: &str) -> String {
    match detail.char_indices().nth(DETAIL_CHARS) {
        Some((cut, _)) => format!("{}…", &detail[..cut]),
        None => detail.to_owned(),
    }
}

fn action(kind: ProblemKind, flow: &str, lang: Lang) -> String {
    match (kind, lang) {
        (ProblemKind::FlowFailed, Lang::Zh) => format!("查看日志与 `fxk3 status {flow}`"),
        (ProblemKind::FlowFailed, Lang::En) => format!("see the log and `fxk3 status {flow}`"),
        (ProblemKind::DeadLetters, Lang::Zh) => {
            format!("修正原因后 `fxk3 dead-letters retry {flow}`，或在运维页面点“重试”")
        }
        (ProblemKind::DeadLetters, Lang::En) => {
            format!("fix the cause, then `fxk3 dead-letters retry {flow}` or Retry on the page")
        }
        (ProblemKind::UnknownOutcomes, Lang::Zh) => {
            format!("向对方系统核实后 `fxk3 dead-letters drop {flow} KEY`")
        }
        (ProblemKind::UnknownOutcomes, Lang::En) => {
            format!("check with the other system, then `fxk3 dead-letters drop {flow} KEY`")
        }
        (ProblemKind::FollowUpsStalled, Lang::Zh) => {
            "检查纷享销客是否可达、`fxk3 watch` 是否在运行".to_owned()
        }
        (ProblemKind::FollowUpsStalled, Lang::En) => {
            "check that Fxiaoke is reachable and `fxk3 watch` is running".to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Problem;

    #[test]
    fn a_long_reason_is_cut_so_that_the_text_fits_a_robot() {
        let n = Notice {
            event: Event::Reminder,
            problem: Problem {
                kind: ProblemKind::FlowFailed,
                flow: "orders".into(),
                count: 1,
                detail: "金蝶拒绝：".repeat(200),
            },
            since: 0,
            at: 0,
        };
        let zone = chrono::FixedOffset::east_opt(0).unwrap();
        let text = render(&n, Lang::Zh, zone).full();
        assert!(text.len() < 2_048, "{} bytes", text.len());
        assert!(
            text.contains(&format!("原因：{}…\n", "金蝶拒绝：".repeat(60))),
            "{text}"
        );
    }

    #[test]
    fn notices_read_in_both_languages() {
        let n = Notice {
            event: Event::Alert,
            problem: Problem {
                kind: ProblemKind::DeadLetters,
                flow: "orders".into(),
                count: 3,
                detail: "SO-1: 客户不存在".into(),
            },
            since: 1_764_806_400_000,
            at: 1_764_806_400_000,
        };
        let zone = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
        assert_eq!(
            render(&n, Lang::Zh, zone).full(),
            "【fxk3 告警】orders：3 条记录进入死信\n原因：SO-1: 客户不存在\n自 2025-12-04 08:00:00+08:00 \
             起\n处理：修正原因后 `fxk3 dead-letters retry orders`，或在运维页面点“重试”"
        );
        let resolved = Notice {
            event: Event::Resolved,
            at: n.at + 35 * 60_000,
            ..n
        };
        assert_eq!(
            render(&resolved, Lang::En, zone).full(),
            "[fxk3 resolved] orders: 3 records dead-lettered\ncleared after 35 min (since \
             2025-12-04 08:00:00+08:00)"
        );
    }
}
