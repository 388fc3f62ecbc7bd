//! Built-in sample deliveries: hand-written payloads in Gitee's real shape for an invented
//! repository (`acme/app`), one per interesting variant of each event. The `check` command
//! and the template playground render them.
//!
//! The files live in the top-level `samples/` folder and are compiled in. Their `sign` /
//! `timestamp` fields are consistent with the signing key [`SAMPLE_SECRET`].

use crate::gitee::EventKind;

/// The signing key the samples' body `sign` was computed with (signature-key mode).
pub const SAMPLE_SECRET: &str = "acme-sample-secret";

/// One built-in sample delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Unique, e.g. `push_new_branch`; also the file name under `samples/`.
    pub name: &'static str,
    pub kind: EventKind,
    /// Sent by the "Test" button (`X-Gitee-Ping: true`).
    pub is_test: bool,
    /// The JSON body in Gitee's shape (pretty-printed; Gitee sends it compact).
    pub body: &'static str,
    /// One line saying what the sample shows.
    pub description: &'static str,
}

impl Sample {
    /// The `X-Gitee-Event` header Gitee sends with this body.
    pub fn event_header(&self) -> &'static str {
        crate::gitee::payload::hook_title(self.kind)
    }
}

macro_rules! sample {
    ($name:literal, $kind:ident, $is_test:literal, $description:literal) => {
        Sample {
            name: $name,
            kind: EventKind::$kind,
            is_test: $is_test,
            body: include_str!(concat!("../samples/", $name, ".json")),
            description: $description,
        }
    };
}

static ALL: &[Sample] = &[
    sample!("push", Push, false, "3 commits pushed to main"),
    sample!(
        "push_new_branch",
        Push,
        false,
        "new branch: commits null, total_commits_count 13"
    ),
    sample!(
        "push_delete_branch",
        Push,
        false,
        "branch deleted: after is 40 zeros, no head commit"
    ),
    sample!(
        "push_many_commits",
        Push,
        false,
        "12 commits pushed, 10 listed, commits_more_than_ten"
    ),
    sample!(
        "ping",
        Push,
        true,
        "the hook settings' Test button: canned push for oschina/git-osc"
    ),
    sample!(
        "tag_push_create",
        TagPush,
        false,
        "tag created (2020-style 8-zero before, commits null)"
    ),
    sample!("tag_push_delete", TagPush, false, "tag deleted"),
    sample!("issue_open", Issue, false, "issue opened"),
    sample!("issue_close", Issue, false, "state_change to closed"),
    sample!(
        "issue_rejected",
        Issue,
        false,
        "state_change to the enterprise state rejected (已拒绝)"
    ),
    sample!("issue_assign", Issue, false, "issue assigned"),
    sample!("issue_delete", Issue, false, "issue deleted"),
    sample!(
        "merge_request_open",
        MergeRequest,
        false,
        "pull request opened"
    ),
    sample!(
        "merge_request_update",
        MergeRequest,
        false,
        "update: new commits (source_branch_changed)"
    ),
    sample!(
        "merge_request_update_label",
        MergeRequest,
        false,
        "update: labels changed (update_label)"
    ),
    sample!(
        "merge_request_merge",
        MergeRequest,
        false,
        "pull request merged"
    ),
    sample!(
        "merge_request_close",
        MergeRequest,
        false,
        "pull request closed without merging"
    ),
    sample!(
        "merge_request_approved",
        MergeRequest,
        false,
        "review passed (approved)"
    ),
    sample!(
        "merge_request_tested",
        MergeRequest,
        false,
        "test passed (tested)"
    ),
    sample!(
        "merge_request_assign",
        MergeRequest,
        false,
        "reviewers assigned"
    ),
    sample!("note_issue", Note, false, "comment on an issue"),
    sample!(
        "note_pull_request",
        Note,
        false,
        "comment on a pull request"
    ),
    sample!("note_commit", Note, false, "comment on a commit"),
    sample!("note_repository", Note, false, "comment on the repository"),
];

/// Every built-in sample, grouped by kind.
pub fn all() -> &'static [Sample] {
    ALL
}

/// The sample with this name.
pub fn find(name: &str) -> Option<&'static Sample> {
    ALL.iter().find(|s| s.name == name)
}

/// The samples of one kind, in [`all`] order.
pub fn for_kind(kind: EventKind) -> impl Iterator<Item = &'static Sample> {
    ALL.iter().filter(move |s| s.kind == kind)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::gitee::auth::{SourceAuth, verify};
    use crate::gitee::payload::{self, Payload};

    fn ctx(s: &Sample) -> crate::gitee::EventContext {
        let raw =
            payload::parse_json(s.body.as_bytes()).unwrap_or_else(|e| panic!("{}: {e}", s.name));
        let d = payload::parse_value(s.kind, &raw).unwrap_or_else(|e| panic!("{}: {e}", s.name));
        d.context("samples", s.is_test, 1, raw)
    }

    #[test]
    fn names_unique_and_every_kind_covered() {
        let names: HashSet<_> = all().iter().map(|s| s.name).collect();
        assert_eq!(names.len(), all().len());
        for kind in EventKind::ALL {
            assert!(for_kind(kind).count() >= 2, "{kind}");
            assert!(for_kind(kind).all(|s| s.kind == kind));
        }
        assert_eq!(find("push_new_branch").unwrap().kind, EventKind::Push);
        assert!(find("nope").is_none());
        assert_eq!(all().iter().filter(|s| s.is_test).count(), 1);
        assert_eq!(find("ping").unwrap().event_header(), "Push Hook");
    }

    #[test]
    fn every_sample_parses_and_maps() {
        for s in all() {
            let raw: serde_json::Value = serde_json::from_str(s.body).unwrap();
            assert_eq!(
                payload::detect_kind(None, s.body.as_bytes()),
                Some(s.kind),
                "{}: hook_name",
                s.name
            );
            assert_eq!(
                payload::detect_kind(Some(s.event_header()), b"{}"),
                Some(s.kind)
            );
            let c = ctx(s);
            assert!(!c.repo.full_name.is_empty(), "{}: repo", s.name);
            assert!(!c.repo.url.is_empty(), "{}: repo url", s.name);
            assert!(!c.actor.login.is_empty(), "{}: actor login", s.name);
            assert!(!c.actor.name.is_empty(), "{}: actor name", s.name);
            assert!(
                c.url.starts_with("https://gitee.com/"),
                "{}: url {}",
                s.name,
                c.url
            );
            assert!(
                !c.summary.is_empty() && !c.summary.contains('\n'),
                "{}",
                s.name
            );
            assert!(!c.action.is_empty(), "{}: action", s.name);
            assert_eq!(c.is_test, s.is_test);
            assert_eq!(
                c.timestamp_ms,
                raw["timestamp"].as_str().unwrap().parse::<i64>().unwrap()
            );
            assert!(c.raw.get("password").is_none() && c.raw.get("sign").is_none());
            assert_eq!(c.raw["hook_name"], raw["hook_name"]);
            match s.kind {
                EventKind::Push => assert!(c.push.is_some()),
                EventKind::TagPush => assert!(c.tag.is_some()),
                EventKind::Issue => assert!(c.issue.is_some()),
                EventKind::MergeRequest => assert!(c.pull_request.is_some()),
                EventKind::Note => assert!(c.note.is_some()),
            }
        }
    }

    #[test]
    fn samples_are_signed_with_the_sample_secret() {
        let auth = SourceAuth::Signature {
            secret: SAMPLE_SECRET.to_owned(),
        };
        for s in all() {
            let raw: serde_json::Value = serde_json::from_str(s.body).unwrap();
            let ts = raw["timestamp"].as_str().unwrap();
            let now: i64 = ts.parse().unwrap();
            let sign = raw["sign"].as_str().unwrap();
            assert_eq!(
                verify(&auth, Some(sign), Some(ts), now, 1000),
                Ok(()),
                "{}",
                s.name
            );
            assert_eq!(raw["password"], "", "{}", s.name);
        }
    }

    #[test]
    fn sample_text_variety() {
        let all_text: String = all().iter().map(|s| s.body).collect();
        assert!(
            all_text
                .chars()
                .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
            "Chinese"
        );
        assert!(all_text.chars().any(|c| c as u32 >= 0x1F300), "emoji");
    }

    #[test]
    fn expected_actions_and_details() {
        let action = |name: &str| ctx(find(name).unwrap()).action;
        let expected = [
            ("push", "push"),
            ("push_new_branch", "create"),
            ("push_delete_branch", "delete"),
            ("push_many_commits", "push"),
            ("ping", "push"),
            ("tag_push_create", "create"),
            ("tag_push_delete", "delete"),
            ("issue_open", "open"),
            ("issue_close", "state_change"),
            ("issue_rejected", "state_change"),
            ("issue_assign", "assign"),
            ("issue_delete", "delete"),
            ("merge_request_open", "open"),
            ("merge_request_update", "update"),
            ("merge_request_update_label", "update"),
            ("merge_request_merge", "merge"),
            ("merge_request_close", "close"),
            ("merge_request_approved", "approved"),
            ("merge_request_tested", "tested"),
            ("merge_request_assign", "assign"),
            ("note_issue", "comment"),
            ("note_pull_request", "comment"),
            ("note_commit", "comment"),
            ("note_repository", "comment"),
        ];
        assert_eq!(expected.len(), all().len());
        for (name, a) in expected {
            assert_eq!(action(name), a, "{name}");
        }

        let c = ctx(find("push").unwrap());
        let p = c.push.as_ref().unwrap();
        assert_eq!(
            (p.branch.as_str(), p.commits.len(), p.more_commits),
            ("main", 3, 0)
        );
        assert_eq!(c.summary, "张爱丽 pushed 3 commits to acme/app:main");
        assert_eq!(c.url, p.compare_url);

        let c = ctx(find("push_new_branch").unwrap());
        let p = c.push.as_ref().unwrap();
        assert!(p.created && p.total_commits == 13 && p.commits.len() == 1 && p.more_commits == 12);

        let c = ctx(find("push_many_commits").unwrap());
        let p = c.push.as_ref().unwrap();
        assert_eq!(
            (p.commits.len(), p.total_commits, p.more_commits),
            (10, 12, 2)
        );

        let c = ctx(find("push_delete_branch").unwrap());
        assert!(c.push.as_ref().unwrap().deleted && c.push.as_ref().unwrap().commits.is_empty());

        let c = ctx(find("tag_push_create").unwrap());
        let t = c.tag.as_ref().unwrap();
        assert_eq!(t.url, "https://gitee.com/acme/app/tree/v1.2.0");
        assert_eq!(c.url, t.url);

        let c = ctx(find("issue_rejected").unwrap());
        let i = c.issue.as_ref().unwrap();
        assert_eq!(
            (i.state.as_str(), i.state_name.as_str()),
            ("rejected", "已拒绝")
        );

        let c = ctx(find("merge_request_open").unwrap());
        let pr = c.pull_request.as_ref().unwrap();
        assert_eq!(
            (pr.source_branch.as_str(), pr.target_branch.as_str()),
            ("feature/login-sms", "main")
        );
        let d = payload::parse(
            EventKind::MergeRequest,
            find("merge_request_open").unwrap().body.as_bytes(),
        )
        .unwrap();
        assert_eq!(d.branch.as_deref(), Some("main"));

        let c = ctx(find("merge_request_update").unwrap());
        assert_eq!(c.pull_request.unwrap().action_desc, "source_branch_changed");

        for (name, on) in [
            ("note_issue", "issue"),
            ("note_pull_request", "pull_request"),
            ("note_commit", "commit"),
            ("note_repository", "repository"),
        ] {
            let c = ctx(find(name).unwrap());
            let n = c.note.as_ref().unwrap();
            assert_eq!(n.on, on, "{name}");
            assert!(
                !n.body.is_empty() && !n.url.is_empty() && !n.target.url.is_empty(),
                "{name}"
            );
        }

        let d = payload::parse(
            EventKind::Note,
            find("note_pull_request").unwrap().body.as_bytes(),
        )
        .unwrap();
        assert_eq!(d.branch.as_deref(), Some("main"));
        assert!(matches!(d.payload, Payload::Note(_)));

        let c = ctx(find("ping").unwrap());
        assert!(c.is_test);
        assert_eq!(c.repo.full_name, "oschina/git-osc");
    }
}
