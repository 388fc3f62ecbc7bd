//! Sample events: one [`EventContext`] for every event × action variant the built-in templates
//! word differently. [`super::TemplateSet::load`] renders every template against them, so a
//! misspelt field (strict mode), invalid JSON or an over-limit body is reported when the
//! templates are loaded (`check`, startup), not when the first real event arrives.
//!
//! Every optional part is filled in at least one sample (assignees, testers, labels, bodies,
//! milestone...). `raw` holds a small Gitee-like payload; templates that read `raw.*` should
//! guard such fields with `{{#if raw.x}}`, since only these samples are checked.

use serde_json::json;

use crate::gitee::EventKind;
use crate::gitee::context::{
    Commit, EventContext, Issue, Note, NoteTarget, PullRequest, Push, Repo, Tag, User,
};

const REPO_URL: &str = "https://gitee.com/acme/app";

fn user(login: &str, name: &str) -> User {
    User {
        login: login.into(),
        name: name.into(),
        url: format!("https://gitee.com/{login}"),
        email: format!("{login}@example.com"),
    }
}

/// The repository of the samples.
pub fn repo() -> Repo {
    Repo {
        full_name: "acme/app".into(),
        name: "app".into(),
        namespace: "acme".into(),
        display_name: "Acme/App".into(),
        url: REPO_URL.into(),
        private: false,
    }
}

/// A context with the common fields set and every event-specific part `None`.
pub fn base(event: EventKind, action: &str) -> EventContext {
    let actor = user("alice", "Alice");
    EventContext {
        event,
        action: action.into(),
        is_test: false,
        source: "gitee".into(),
        summary: format!("Alice {action} {event} in acme/app"),
        url: REPO_URL.into(),
        repo: repo(),
        raw: json!({
            "hook_name": format!("{event}_hooks"),
            "repository": {"full_name": "acme/app", "html_url": REPO_URL, "name": "app", "path": "app"},
            "sender": {"login": actor.login, "name": actor.name, "html_url": actor.url},
        }),
        actor,
        enterprise: None,
        push: None,
        tag: None,
        issue: None,
        pull_request: None,
        note: None,
        timestamp_ms: 1_700_000_000_000,
        mentioned_logins: Vec::new(),
    }
}

/// A commit numbered `i`.
pub fn commit(i: usize) -> Commit {
    let sha = format!("{:07x}{}", 0xabc_0000 + i, "f".repeat(33));
    Commit {
        short_sha: sha[..7].to_owned(),
        url: format!("{REPO_URL}/commit/{sha}"),
        sha,
        title: format!("Fix bug number {i}"),
        message: format!("Fix bug number {i}\n\nLonger description of the change."),
        author: user("bob", "Bob"),
        time: "2023-11-15T06:13:20+08:00".into(),
    }
}

/// A push of `listed` commits (of `total`) to `main`.
pub fn push(action: &str, listed: usize, total: u64) -> EventContext {
    let mut ctx = base(EventKind::Push, action);
    let created = action == "create";
    let deleted = action == "delete";
    let before = if created {
        "0".repeat(40)
    } else {
        format!("{:040x}", 1)
    };
    let after = if deleted {
        "0".repeat(40)
    } else {
        format!("{:040x}", 2)
    };
    let compare_url = format!("{REPO_URL}/compare/{}...{}", &before[..7], &after[..7]);
    ctx.url = compare_url.clone();
    ctx.push = Some(Push {
        r#ref: "refs/heads/main".into(),
        branch: "main".into(),
        short_before: before[..7].to_owned(),
        short_after: after[..7].to_owned(),
        before,
        after,
        created,
        deleted,
        compare_url,
        commits: (1..=listed).map(commit).collect(),
        total_commits: total,
        more_commits: total.saturating_sub(listed as u64),
    });
    ctx
}

/// A tag `v1.2.0` created or deleted.
pub fn tag(action: &str) -> EventContext {
    let mut ctx = base(EventKind::TagPush, action);
    let deleted = action == "delete";
    let sha = format!("1a2b3c4{}", "d".repeat(33));
    ctx.url = format!("{REPO_URL}/tree/v1.2.0");
    ctx.tag = Some(Tag {
        name: "v1.2.0".into(),
        r#ref: "refs/tags/v1.2.0".into(),
        short_sha: if deleted {
            String::new()
        } else {
            sha[..7].to_owned()
        },
        sha: if deleted { String::new() } else { sha },
        created: !deleted,
        deleted,
        url: ctx.url.clone(),
    });
    ctx
}

/// Pull request #42 with `action` (and Gitee's `action_desc` hint).
pub fn pull_request(action: &str, action_desc: &str) -> EventContext {
    let mut ctx = base(EventKind::MergeRequest, action);
    let url = format!("{REPO_URL}/pulls/42");
    ctx.url = url.clone();
    let (state, merged) = match action {
        "merge" => ("merged", true),
        "close" => ("closed", false),
        _ => ("open", false),
    };
    ctx.pull_request = Some(PullRequest {
        number: 42,
        title: "Fix signature encoding".into(),
        body: "Encode the signature once.\n\nCloses #I4CYEO".into(),
        state: state.into(),
        merged,
        url,
        source_branch: "fix-sign".into(),
        target_branch: "main".into(),
        source_repo: "bob/app".into(),
        target_repo: "acme/app".into(),
        author: user("bob", "Bob"),
        assignees: vec![user("carol", "Carol"), user("dave", "Dave")],
        reviewers: vec![user("carol", "Carol"), user("dave", "Dave")],
        testers: vec![user("erin", "Erin")],
        labels: vec!["bug".into(), "security".into()],
        action_desc: action_desc.into(),
        commits: 3,
        additions: 10,
        deletions: 2,
        changed_files: 4,
    });
    ctx
}

/// Issue `I4CYEO` with `action`, in `state`.
pub fn issue(action: &str, state: &str) -> EventContext {
    let mut ctx = base(EventKind::Issue, action);
    let url = format!("{REPO_URL}/issues/I4CYEO");
    ctx.url = url.clone();
    let state_name = match state {
        "open" => "待办的",
        "progressing" => "进行中",
        "closed" => "已完成",
        "rejected" => "已拒绝",
        other => other,
    };
    ctx.issue = Some(Issue {
        number: "I4CYEO".into(),
        title: "Login fails with 500".into(),
        body: "Steps:\n1. open /login\n2. submit".into(),
        state: state.into(),
        state_name: state_name.into(),
        type_name: "任务".into(),
        url,
        labels: vec!["bug".into()],
        author: user("bob", "Bob"),
        assignee: (action == "assign").then(|| user("carol", "Carol")),
        milestone: "v1.3".into(),
    });
    ctx
}

/// A comment on `on` (`issue`, `pull_request`, `commit` or `repository`).
pub fn note(action: &str, on: &str) -> EventContext {
    let mut ctx = base(EventKind::Note, action);
    let (noteable_type, target) = match on {
        "issue" => (
            "Issue",
            NoteTarget {
                reference: "I4CYEO".into(),
                title: "Login fails with 500".into(),
                url: format!("{REPO_URL}/issues/I4CYEO"),
            },
        ),
        "pull_request" => (
            "PullRequest",
            NoteTarget {
                reference: "42".into(),
                title: "Fix signature encoding".into(),
                url: format!("{REPO_URL}/pulls/42"),
            },
        ),
        "commit" => {
            let c = commit(1);
            (
                "Commit",
                NoteTarget {
                    reference: c.short_sha,
                    title: c.title,
                    url: c.url,
                },
            )
        }
        _ => (
            "Comment",
            NoteTarget {
                reference: String::new(),
                title: String::new(),
                url: REPO_URL.into(),
            },
        ),
    };
    let url = format!("{}#note_1234", target.url);
    ctx.url = url.clone();
    if action == "comment" {
        ctx.mentioned_logins = vec!["erin".into()];
    }
    ctx.note = Some(Note {
        body: "Looks good to me, @erin please test.\n\nOne nit: rename `x`.".into(),
        url,
        noteable_type: noteable_type.into(),
        on: on.into(),
        target,
        author: ctx.actor.clone(),
    });
    ctx
}

/// A `people:` map for the samples: carol and erin mapped on every platform (erin by mobile
/// number on DingTalk and WeCom), dave on Slack only; bob is not mapped.
pub fn people() -> super::People {
    use crate::config::Person;
    let mut p = super::People::new();
    p.insert(
        "carol".into(),
        Person {
            dingtalk: Some("carol.ding".into()),
            wecom: Some("carol".into()),
            feishu: Some("ou_carol".into()),
            slack: Some("U0CAROL".into()),
        },
    );
    p.insert(
        "erin".into(),
        Person {
            dingtalk: Some("13800000005".into()),
            wecom: Some("13800000005".into()),
            feishu: Some("ou_erin".into()),
            slack: Some("U0ERIN".into()),
        },
    );
    p.insert(
        "dave".into(),
        Person {
            slack: Some("U0DAVE".into()),
            ..Person::default()
        },
    );
    p
}

/// Every sample, labelled `event/variant`.
pub fn contexts() -> Vec<(String, EventContext)> {
    let mut test_push = push("push", 3, 3);
    test_push.is_test = true;
    let mut created_no_commits = push("create", 0, 0);
    if let Some(p) = created_no_commits.push.as_mut() {
        p.compare_url = String::new();
    }
    let samples = vec![
        ("push/push", push("push", 3, 3)),
        ("push/create", push("create", 1, 1)),
        ("push/create-empty", created_no_commits),
        ("push/delete", push("delete", 0, 0)),
        ("push/many", push("push", 20, 25)),
        ("push/test", test_push),
        ("tag_push/create", tag("create")),
        ("tag_push/delete", tag("delete")),
        ("merge_request/open", pull_request("open", "open")),
        ("merge_request/update", pull_request("update", "")),
        (
            "merge_request/update-source",
            pull_request("update", "source_branch_changed"),
        ),
        (
            "merge_request/update-target",
            pull_request("update", "target_branch_changed"),
        ),
        (
            "merge_request/update-label",
            pull_request("update", "update_label"),
        ),
        ("merge_request/merge", pull_request("merge", "merge")),
        ("merge_request/close", pull_request("close", "open")),
        ("merge_request/approved", pull_request("approved", "")),
        ("merge_request/tested", pull_request("tested", "")),
        ("merge_request/assign", pull_request("assign", "assign")),
        ("merge_request/other", pull_request("reopen", "")),
        ("issue/open", issue("open", "open")),
        ("issue/state_change", issue("state_change", "closed")),
        (
            "issue/state_change-progressing",
            issue("state_change", "progressing"),
        ),
        (
            "issue/state_change-rejected",
            issue("state_change", "rejected"),
        ),
        ("issue/state_change-reopen", issue("state_change", "open")),
        ("issue/assign", issue("assign", "open")),
        ("issue/delete", issue("delete", "open")),
        ("issue/other", issue("update", "open")),
        ("note/issue", note("comment", "issue")),
        ("note/pull_request", note("comment", "pull_request")),
        ("note/commit", note("comment", "commit")),
        ("note/repository", note("comment", "repository")),
        ("note/edited", note("edited", "issue")),
        ("note/deleted", note("deleted", "pull_request")),
    ];
    samples
        .into_iter()
        .map(|(label, ctx)| (label.to_owned(), ctx))
        .collect()
}

/// The samples of one event.
pub fn contexts_for(event: EventKind) -> Vec<(String, EventContext)> {
    contexts()
        .into_iter()
        .filter(|(_, ctx)| ctx.event == event)
        .collect()
}
