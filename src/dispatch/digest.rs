//! Digests: when a channel's backlog cannot drain within `digest_after` at its pace, the
//! waiting events are merged, oldest first, into one message (template `digest`) instead of
//! being dropped or trickling out for hours. Every event still ends up in exactly one
//! delivered message.

use serde::Serialize;
use std::time::Duration;

use super::Quota;
use crate::gitee::{EventContext, EventKind};

/// The most events one digest takes from the queue; the template's size limit may take fewer.
pub const MAX_ITEMS: usize = 100;

/// What the `digest` template renders.
#[derive(Debug, Clone, Serialize)]
pub struct DigestContext {
    pub count: usize,
    /// Counts by event kind, in a fixed order, only kinds present.
    pub kinds: Vec<KindCount>,
    /// The repositories named, in order of first appearance.
    pub repos: Vec<String>,
    pub items: Vec<DigestItem>,
    pub first_ms: i64,
    pub last_ms: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct KindCount {
    pub event: EventKind,
    /// "pushes", "pull requests"... (singular when count is 1).
    pub label: &'static str,
    pub count: usize,
}

/// One line of a digest.
#[derive(Debug, Clone, Serialize)]
pub struct DigestItem {
    pub event: EventKind,
    pub action: String,
    pub summary: String,
    pub url: String,
    pub repo: String,
    pub actor: String,
    pub timestamp_ms: i64,
    pub is_test: bool,
}

impl DigestItem {
    pub fn from_context(ctx: &EventContext) -> DigestItem {
        DigestItem {
            event: ctx.event,
            action: ctx.action.clone(),
            summary: ctx.summary.clone(),
            url: if ctx.url.is_empty() {
                ctx.repo.url.clone()
            } else {
                ctx.url.clone()
            },
            repo: ctx.repo.full_name.clone(),
            actor: ctx.actor.name.clone(),
            timestamp_ms: ctx.timestamp_ms,
            is_test: ctx.is_test,
        }
    }
}

fn label(kind: EventKind, count: usize) -> &'static str {
    let one = count == 1;
    match kind {
        EventKind::Push => {
            if one {
                "push"
            } else {
                "pushes"
            }
        }
        EventKind::TagPush => {
            if one {
                "tag push"
            } else {
                "tag pushes"
            }
        }
        EventKind::Issue => {
            if one {
                "issue event"
            } else {
                "issue events"
            }
        }
        EventKind::MergeRequest => {
            if one {
                "pull request event"
            } else {
                "pull request events"
            }
        }
        EventKind::Note => {
            if one {
                "comment"
            } else {
                "comments"
            }
        }
    }
}

pub fn build(items: &[DigestItem]) -> DigestContext {
    let kinds = EventKind::ALL
        .iter()
        .filter_map(|k| {
            let count = items.iter().filter(|i| i.event == *k).count();
            (count > 0).then(|| KindCount {
                event: *k,
                label: label(*k, count),
                count,
            })
        })
        .collect();
    let mut repos: Vec<String> = Vec::new();
    for item in items {
        if !repos.contains(&item.repo) {
            repos.push(item.repo.clone());
        }
    }
    DigestContext {
        count: items.len(),
        kinds,
        repos,
        items: items.to_vec(),
        first_ms: items.iter().map(|i| i.timestamp_ms).min().unwrap_or(0),
        last_ms: items.iter().map(|i| i.timestamp_ms).max().unwrap_or(0),
    }
}

/// How many messages the quotas let through in `within`: a backlog above this cannot drain in
/// time. No quota at all means digests are never needed.
pub fn capacity(quotas: &[Quota], within: Duration) -> u64 {
    quotas
        .iter()
        .map(|q| {
            let windows = (within.as_secs_f64() / q.per.as_secs_f64())
                .floor()
                .max(1.0);
            (windows as u64).saturating_mul(u64::from(q.max))
        })
        .min()
        .unwrap_or(u64::MAX)
}

/// A digest of a few sample items, for `check` and template tests.
pub fn sample() -> DigestContext {
    let item = |event, summary: &str, n: i64| DigestItem {
        event,
        action: "open".into(),
        summary: summary.into(),
        url: format!("https://gitee.com/acme/app/pulls/{n}"),
        repo: "acme/app".into(),
        actor: "张爱丽".into(),
        timestamp_ms: 1_700_000_000_000 + n * 1000,
        is_test: false,
    };
    build(&[
        item(
            EventKind::Push,
            "alice pushed 3 commits to acme/app:main",
            1,
        ),
        item(
            EventKind::MergeRequest,
            "alice opened pull request #7 \"Fix <login> & \\\"quotes\\\"\" in acme/app",
            2,
        ),
        item(
            EventKind::Issue,
            "bob closed issue I4CYEO \"登录失败 🐛\" in acme/app",
            3,
        ),
        item(
            EventKind::Note,
            "carol commented on pull request #7 in acme/app",
            4,
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::PlatformKind;
    use crate::render::TemplateSet;

    fn q(max: u32, secs: u64) -> Quota {
        Quota {
            max,
            per: Duration::from_secs(secs),
        }
    }

    #[test]
    fn capacity_is_what_the_tightest_quota_allows() {
        let minute = Duration::from_secs(60);
        assert_eq!(capacity(&[q(20, 60)], minute), 20);
        assert_eq!(capacity(&[q(5, 1), q(100, 60)], minute), 100);
        assert_eq!(capacity(&[q(1, 1)], minute), 60);
        assert_eq!(capacity(&[q(20, 60)], Duration::from_secs(10)), 20);
        assert_eq!(capacity(&[], minute), u64::MAX);
    }

    #[test]
    fn counts_by_kind_and_order_are_kept() {
        let d = sample();
        assert_eq!(d.count, 4);
        let kinds: Vec<(EventKind, usize, &str)> = d
            .kinds
            .iter()
            .map(|k| (k.event, k.count, k.label))
            .collect();
        assert_eq!(kinds[0], (EventKind::Push, 1, "push"));
        assert_eq!(d.items[0].event, EventKind::Push);
        assert_eq!(d.repos, vec!["acme/app"]);
        assert!(d.first_ms < d.last_ms);
    }

    #[test]
    fn every_platform_renders_a_digest_naming_every_event() {
        for p in PlatformKind::ALL {
            let body = TemplateSet::builtin(p)
                .render_named("digest", &sample())
                .unwrap_or_else(|e| panic!("{p}: {e}"));
            let text = body.to_string();
            for n in 1..=4 {
                assert!(
                    text.contains(&format!("pulls/{n}")),
                    "{p} digest lacks item {n}: {text}"
                );
            }
            assert!(text.contains("4 events"), "{p}: {text}");
        }
    }
}
