use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::*;
use crate::gitee::auth::{SourceAuth, verify};
use crate::gitee::context::EventContext;

const RECEIVED: i64 = 1_700_000_000_000;

fn ctx_of(kind: EventKind, body: &[u8]) -> (Delivery, EventContext) {
    let raw = parse_json(body).unwrap();
    let d = parse_value(kind, &raw).unwrap();
    let c = d.context("test", false, RECEIVED, raw);
    (d, c)
}

fn parse_str(kind: EventKind, body: &str) -> Result<Delivery, PayloadError> {
    parse(kind, body.as_bytes())
}

fn err(kind: EventKind, body: &str) -> PayloadError {
    parse_str(kind, body).expect_err("should be rejected")
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(json_files(&p));
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------
// Kind detection, redaction
// ---------------------------------------------------------------------------------------

#[test]
fn detect_kind_header_then_hook_name() {
    let body = br#"{"hook_name":"note_hooks"}"#;
    assert_eq!(detect_kind(Some("Push Hook"), body), Some(EventKind::Push));
    assert_eq!(detect_kind(Some("push_hooks"), body), Some(EventKind::Push));
    assert_eq!(
        detect_kind(Some("Tag Push Hook"), b""),
        Some(EventKind::TagPush)
    );
    assert_eq!(
        detect_kind(Some("Merge Request Hook"), b""),
        Some(EventKind::MergeRequest)
    );
    assert_eq!(detect_kind(None, body), Some(EventKind::Note));
    assert_eq!(detect_kind(Some("Repo Hook"), body), Some(EventKind::Note));
    assert_eq!(detect_kind(Some(""), body), Some(EventKind::Note));
    assert_eq!(
        detect_kind(Some("Repo Hook"), br#"{"hook_name":"repo_hooks"}"#),
        None
    );
    assert_eq!(detect_kind(None, b"not json"), None);
    assert_eq!(detect_kind(None, b"[]"), None);
    assert_eq!(detect_kind(None, br#"{"hook_name":5}"#), None);
    assert_eq!(detect_kind(None, br#"{"hook_name":{"x":1}}"#), None);
    let v = json!({"hook_name": "merge_request_hooks"});
    assert_eq!(
        detect_kind_in_value(None, &v),
        Some(EventKind::MergeRequest)
    );
    assert_eq!(
        detect_kind_in_value(Some("Issue Hook"), &v),
        Some(EventKind::Issue)
    );
}

#[test]
fn redact_strips_top_level_secrets_only() {
    let mut v = json!({"password": "pw", "sign": "s", "x": {"password": "kept"}, "timestamp": "1"});
    redact(&mut v);
    assert_eq!(v, json!({"x": {"password": "kept"}, "timestamp": "1"}));
    let mut not_obj = json!([1]);
    redact(&mut not_obj);
    assert_eq!(not_obj, json!([1]));
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

#[test]
fn structural_errors_have_paths() {
    let e = err(EventKind::Push, r#"{"repository": "x"}"#);
    assert_eq!(
        (e.path.as_str(), e.reason.as_str()),
        ("repository", "expected an object, found a string")
    );
    let e = err(EventKind::Push, r#"{"commits": {}}"#);
    assert_eq!(
        (e.path.as_str(), e.reason.as_str()),
        ("commits", "expected a list, found an object")
    );
    let e = err(
        EventKind::Push,
        r#"{"commits": [{"author": {}}, {"author": "x"}]}"#,
    );
    assert_eq!(e.path, "commits[1].author");
    assert_eq!(
        e.to_string(),
        "invalid Push Hook payload at `commits[1].author`: expected an object, found a string"
    );
    let e = err(
        EventKind::MergeRequest,
        r#"{"pull_request": {"head": {"repo": [1]}}}"#,
    );
    assert_eq!(
        (e.path.as_str(), e.reason.as_str()),
        ("pull_request.head.repo", "expected an object, found a list")
    );
    let e = err(
        EventKind::Issue,
        r#"{"issue": {"labels": [{"name": "a"}, "b"]}}"#,
    );
    assert_eq!(e.path, "issue.labels[1]");
    let e = err(EventKind::Note, r#"{"comment": {"body": ["a"]}}"#);
    assert_eq!(
        (e.path.as_str(), e.reason.as_str()),
        ("comment.body", "expected a string, found a list")
    );
    let e = err(
        EventKind::TagPush,
        r#"{"head_commit": {"parent_ids": "abc"}}"#,
    );
    assert_eq!(e.path, "head_commit.parent_ids");
    let e = err(EventKind::Push, r#"{"total_commits_count": true}"#);
    assert_eq!(
        (e.path.as_str(), e.reason.as_str()),
        ("total_commits_count", "expected a number, found a boolean")
    );
    let e = err(EventKind::Push, r#"{"created": "maybe"}"#);
    assert_eq!(e.path, "created");
    let e = err(EventKind::Push, r#"{"total_commits_count": -1}"#);
    assert_eq!(
        (e.path.as_str(), e.reason.as_str()),
        ("total_commits_count", "number out of range")
    );
    let e = err(EventKind::MergeRequest, r#"{"number": 1.5}"#);
    assert_eq!(e.path, "number");
}

#[test]
fn body_must_be_a_json_object() {
    for (body, reason) in [
        ("[]", "expected an object, found a list"),
        ("\"x\"", "expected an object, found a string"),
        ("null", "expected an object, found null"),
        ("42", "expected an object, found a number"),
    ] {
        let e = err(EventKind::Issue, body);
        assert_eq!(
            (e.path.as_str(), e.reason.as_str()),
            (".", reason),
            "{body}"
        );
        assert_eq!(e.kind, Some(EventKind::Issue));
        assert!(
            e.to_string()
                .starts_with("invalid Issue Hook payload at `.`: "),
            "{e}"
        );
    }
    for body in ["", "{", "{\"a\":1} x", "{\"a\":}", "\u{feff}{}"] {
        let e = err(EventKind::Push, body);
        assert_eq!(e.path, ".", "{body:?}");
        assert!(
            e.reason.starts_with("invalid JSON"),
            "{body:?}: {}",
            e.reason
        );
    }
    let e = parse(EventKind::Push, b"{\"ref\": \"\xff\xfe\"}").unwrap_err();
    assert_eq!(
        (e.path.as_str(), e.reason.as_str()),
        (".", "body is not valid UTF-8")
    );
    // also in fields the typed model ignores
    assert!(parse(EventKind::Push, b"{\"unknown\": \"\xc3\x28\"}").is_err());
    assert!(parse_value(EventKind::Note, &json!([1])).is_err());
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let depth = 100_000;
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let in_unknown = format!(r#"{{"hook_name":"push_hooks","x":{arrays}}}"#);
    let in_known = format!(r#"{{"commits":{arrays}}}"#);
    let objects = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    for body in [&arrays, &in_unknown, &in_known, &objects] {
        for kind in EventKind::ALL {
            let e = parse(kind, body.as_bytes()).unwrap_err();
            assert_eq!(e.path, ".");
        }
        assert!(parse_json(body.as_bytes()).is_err());
        // detection only skips over the value, it does not recurse
        let _ = detect_kind(None, body.as_bytes());
    }
    assert_eq!(
        detect_kind(None, in_unknown.as_bytes()),
        Some(EventKind::Push)
    );
    // 100 levels are fine
    let ok = format!(r#"{{"x":{}{}}}"#, "[".repeat(100), "]".repeat(100));
    assert!(parse(EventKind::Push, ok.as_bytes()).is_ok());
}

#[test]
fn errors_never_echo_values() {
    let secret = "hunter2-must-not-leak";
    for (kind, body) in [
        (
            EventKind::Push,
            json!({"password": secret, "repository": secret}),
        ),
        (EventKind::Push, json!({"sign": secret, "commits": secret})),
        (EventKind::Push, json!({"hook_id": secret})),
        (EventKind::Issue, json!({"issue": {"comments": secret}})),
        (EventKind::Note, json!({"comment": {"id": secret}})),
        (
            EventKind::MergeRequest,
            json!({"pull_request": {"merged": secret}}),
        ),
        (
            EventKind::MergeRequest,
            json!({"pull_request": {"number": secret}}),
        ),
    ] {
        let e = parse_str(kind, &body.to_string()).unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(
            !shown.contains(secret) && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Leniency
// ---------------------------------------------------------------------------------------

#[test]
fn lenient_scalars() {
    let body = json!({
        "hook_name": "merge_request_hooks", "hook_id": "788005", "timestamp": 1633685873030_i64,
        "action": "Open", "action_desc": null, "number": "7", "iid": 7,
        "pull_request": {
            "number": "7", "id": 4731382.0, "merged": "false", "commits": "2", "additions": null,
            "deletions": "", "changed_files": 3, "title": 12, "body": true, "labels": null,
            "assignees": [null, {"login": "kit101"}], "testers": null, "head": null, "base": {"ref": 5},
        },
        "source_branch": "feat", "repository": {"full_name": "kit101/drone-yml-test", "id": "14836026", "private": 1},
    });
    let (d, c) = ctx_of(EventKind::MergeRequest, body.to_string().as_bytes());
    assert_eq!(d.action, "open");
    assert_eq!(d.branch.as_deref(), Some("5"));
    let Payload::MergeRequest(h) = &d.payload else {
        panic!()
    };
    assert_eq!(h.hook_id, 788005);
    assert_eq!(h.timestamp, Some(1633685873030));
    let pr = c.pull_request.unwrap();
    assert_eq!(
        (
            pr.number,
            pr.commits,
            pr.additions,
            pr.deletions,
            pr.changed_files
        ),
        (7, 2, 0, 0, 3)
    );
    assert_eq!((pr.title.as_str(), pr.body.as_str()), ("12", "true"));
    assert_eq!(pr.assignees.len(), 1);
    assert_eq!(
        (pr.source_branch.as_str(), pr.target_branch.as_str()),
        ("feat", "5")
    );
    assert!(c.repo.private);
    assert_eq!(c.timestamp_ms, 1633685873030);
    assert_eq!(c.url, "https://gitee.com/kit101/drone-yml-test/pulls/7");
}

#[test]
fn timestamp_string_number_null_garbage() {
    for (ts, expected) in [
        (json!("1633686799688"), 1633686799688),
        (json!(1633686799688_i64), 1633686799688),
        (json!(null), RECEIVED),
        (json!(""), RECEIVED),
        (json!("soon"), RECEIVED),
        (json!({"x": 1}), RECEIVED),
        (json!("99999999999999999999999"), RECEIVED),
    ] {
        let body = json!({"hook_name": "push_hooks", "timestamp": ts, "ref": "refs/heads/a"});
        let (_, c) = ctx_of(EventKind::Push, body.to_string().as_bytes());
        assert_eq!(c.timestamp_ms, expected, "{ts}");
    }
    let (_, c) = ctx_of(EventKind::Push, br#"{"ref":"refs/heads/a"}"#);
    assert_eq!(c.timestamp_ms, RECEIVED);
    // an ignored bad timestamp does not capture the path of a later error
    for ts in [r#""soon""#, "1.5", r#"{"a":[1]}"#, "[1,2]", "-1e300"] {
        let e = err(
            EventKind::Push,
            &format!(r#"{{"timestamp":{ts},"commits":{{}}}}"#),
        );
        assert_eq!(e.path, "commits", "{ts}");
    }
}

#[test]
fn push_actions_from_flags_and_zero_shas() {
    let z8 = "00000000";
    let z40 = "0".repeat(40);
    let sha = "9921e45e570db8e57e544650baf837932fb2100f";
    let cases = [
        (
            json!({"created": true, "before": sha, "after": sha}),
            "push",
            "create",
        ),
        (
            json!({"deleted": true, "before": sha, "after": sha}),
            "push",
            "delete",
        ),
        (json!({"before": z8, "after": sha}), "push", "create"),
        (json!({"before": z40, "after": sha}), "push", "create"),
        (json!({"before": sha, "after": z40}), "push", "delete"),
        (json!({"before": sha, "after": "0000000"}), "push", "delete"),
        (
            json!({"before": sha, "after": sha, "created": false, "deleted": false}),
            "push",
            "push",
        ),
        (json!({}), "push", "push"),
        (
            json!({"before": z8, "after": sha, "created": true}),
            "tag",
            "create",
        ),
        (
            json!({"before": sha, "after": z40, "deleted": true}),
            "tag",
            "delete",
        ),
        (json!({"before": sha, "after": z40}), "tag", "delete"),
        (json!({"before": sha, "after": sha}), "tag", "create"),
    ];
    for (body, which, action) in cases {
        let kind = if which == "tag" {
            EventKind::TagPush
        } else {
            EventKind::Push
        };
        let d = parse_str(kind, &body.to_string()).unwrap();
        assert_eq!(d.action, action, "{which} {body}");
    }
}

#[test]
fn actions_lowercased_and_default_empty() {
    let d = parse_str(EventKind::Issue, r#"{"action":" State_Change "}"#).unwrap();
    assert_eq!(d.action, "state_change");
    let d = parse_str(EventKind::Note, r#"{}"#).unwrap();
    assert_eq!(d.action, "");
    let d = parse_str(EventKind::MergeRequest, r#"{"action":null}"#).unwrap();
    assert_eq!(d.action, "");
    let (_, c) = ctx_of(EventKind::Note, b"{}");
    assert_eq!(c.summary, "someone commented on an unknown repository");
    assert_eq!(c.note.unwrap().on, "repository");
}

// ---------------------------------------------------------------------------------------
// Mapping details
// ---------------------------------------------------------------------------------------

fn repo() -> Value {
    json!({"full_name": "acme/app", "html_url": "https://gitee.com/acme/app", "name": "app", "path": "app",
           "namespace": "acme", "name_with_namespace": "Acme 科技/app"})
}

#[test]
fn push_context() {
    let sha = |c: char| c.to_string().repeat(40);
    let body = json!({
        "hook_name": "push_hooks", "ref": "refs/heads/feature/x", "before": sha('a'), "after": sha('c'),
        "created": false, "deleted": false, "total_commits_count": 5, "compare": "",
        "commits": [
            {"id": sha('b'), "message": "first line\r\nsecond\n\n", "author": {"username": "alice", "name": "Alice"},
             "timestamp": "2025-01-01T00:00:00+08:00"},
            {"id": sha('c'), "message": "only", "author": {"name": "", "user_name": "bob"}, "url": ""},
        ],
        "sender": {"login": "alice", "name": "Alice", "html_url": "https://gitee.com/alice"},
        "repository": repo(),
    });
    let (d, c) = ctx_of(EventKind::Push, body.to_string().as_bytes());
    assert_eq!(d.branch.as_deref(), Some("feature/x"));
    assert_eq!(d.repo, "acme/app");
    let p = c.push.as_ref().unwrap();
    assert_eq!(p.branch, "feature/x");
    assert_eq!(p.short_before, "aaaaaaa");
    assert_eq!(
        (p.total_commits, p.more_commits, p.commits.len()),
        (5, 3, 2)
    );
    assert_eq!(
        p.compare_url,
        format!(
            "https://gitee.com/acme/app/compare/{}...{}",
            sha('a'),
            sha('c')
        )
    );
    assert_eq!(c.url, p.compare_url);
    let c0 = &p.commits[0];
    assert_eq!(
        (c0.title.as_str(), c0.message.as_str()),
        ("first line", "first line\r\nsecond")
    );
    assert_eq!(c0.short_sha, "bbbbbbb");
    assert_eq!(c0.author.login, "alice");
    assert_eq!(
        c0.url,
        format!("https://gitee.com/acme/app/commit/{}", sha('b'))
    );
    assert_eq!(p.commits[1].author.name, "bob");
    assert_eq!(c.summary, "Alice pushed 5 commits to acme/app:feature/x");
    assert_eq!(c.repo.display_name, "Acme 科技/app");
    assert_eq!(c.actor.url, "https://gitee.com/alice");

    // total_commits_count smaller than the list
    let body = json!({"ref": "refs/heads/m", "total_commits_count": 1, "commits": [{"id": "1"}, {"id": "2"}], "repository": repo()});
    let (_, c) = ctx_of(EventKind::Push, body.to_string().as_bytes());
    let p = c.push.unwrap();
    assert_eq!((p.total_commits, p.more_commits), (2, 0));
    assert_eq!(c.summary, "someone pushed 2 commits to acme/app:m");
}

#[test]
fn tag_context() {
    let body = json!({"ref": "refs/tags/v1.0", "before": "00000000", "after": "a".repeat(40), "repository": repo(),
                      "sender": {"login": "alice"}});
    let (d, c) = ctx_of(EventKind::TagPush, body.to_string().as_bytes());
    assert_eq!(d.branch.as_deref(), Some("v1.0"));
    let t = c.tag.unwrap();
    assert_eq!(
        (t.name.as_str(), t.short_sha.as_str(), t.created, t.deleted),
        ("v1.0", "aaaaaaa", true, false)
    );
    assert_eq!(t.url, "https://gitee.com/acme/app/tree/v1.0");
    assert_eq!(c.summary, "alice created tag v1.0 in acme/app");
    let body = json!({"ref": "refs/tags/v1.0", "before": "b".repeat(40), "after": "0".repeat(40), "deleted": true, "repository": repo()});
    let (_, c) = ctx_of(EventKind::TagPush, body.to_string().as_bytes());
    let t = c.tag.unwrap();
    assert_eq!((t.sha, t.deleted), ("b".repeat(40), true));
    assert_eq!(c.url, "https://gitee.com/acme/app/tags");
}

#[test]
fn summary_is_one_plain_line() {
    let title = "Fix\u{202e}\r\nthe \"thing\" \u{7} now\u{200b} {{x}} <at user_id=\"all\">";
    let body = json!({"action": "open", "pull_request": {"number": 7, "title": title, "head": {"ref": "feature"},
                      "base": {"ref": "main"}}, "sender": {"login": "alice"}, "repository": repo()});
    let (_, c) = ctx_of(EventKind::MergeRequest, body.to_string().as_bytes());
    assert_eq!(
        c.summary,
        "alice opened pull request #7 \"Fix the \"thing\" now {{x}} <at user_id=\"all\">\" in acme/app (feature → main)"
    );
    // the context fields themselves keep the original text
    assert_eq!(c.pull_request.unwrap().title, title);
    let long = "长".repeat(500);
    let body =
        json!({"action": "open", "issue": {"number": "I1", "title": long}, "repository": repo()});
    let (_, c) = ctx_of(EventKind::Issue, body.to_string().as_bytes());
    assert!(c.summary.chars().count() < 160, "{}", c.summary);
    assert!(c.summary.contains('…'));
}

#[test]
fn repository_from_hook_url_when_missing() {
    for (url, expected) in [
        (
            "https://gitee.com/acme/app/hooks/1234567/edit",
            Some(("acme/app", "https://gitee.com/acme/app")),
        ),
        (
            "https://gitee.com/a.b/c-d_e/hooks/1",
            Some(("a.b/c-d_e", "https://gitee.com/a.b/c-d_e")),
        ),
        ("https://gitee.com/acme/hooks/1/edit", None),
        ("https://gitee.com/a/b/c/hooks/1/edit", None),
        ("https://gitee.com/acme/app/hooks/edit", None),
        ("http://gitee.com/acme/app/hooks/1/edit", None),
        ("", None),
    ] {
        let got = super::map::repo_from_hook_url(url);
        assert_eq!(
            got.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
            expected,
            "{url}"
        );
    }
    let (d, c) = ctx_of(
        EventKind::Note,
        br##"{"hook_url":"https://gitee.com/acme/app/hooks/9/edit","repository":null,"noteable_type":"Issue","per_iid":"#I1"}"##,
    );
    assert_eq!(d.repo, "acme/app");
    assert_eq!(c.repo.url, "https://gitee.com/acme/app");
    assert_eq!(c.url, "https://gitee.com/acme/app/issues/I1");
    // a repository object wins
    let (d, _) = ctx_of(
        EventKind::Note,
        br#"{"hook_url":"https://gitee.com/acme/app/hooks/9/edit","repository":{"full_name":"x/y"}}"#,
    );
    assert_eq!(d.repo, "x/y");
}

#[test]
fn fork_pull_request_names_source_repo() {
    let body = json!({"action": "open", "repository": repo(), "sender": {"login": "carol"},
        "pull_request": {"number": 3, "title": "T",
            "head": {"ref": "fix", "repo": {"full_name": "carol/app"}},
            "base": {"ref": "main", "repo": {"full_name": "acme/app"}}}});
    let (_, c) = ctx_of(EventKind::MergeRequest, body.to_string().as_bytes());
    assert_eq!(
        c.summary,
        "carol opened pull request #3 \"T\" in acme/app (carol/app:fix → main)"
    );
    let pr = c.pull_request.unwrap();
    assert_eq!(
        (pr.source_repo.as_str(), pr.target_repo.as_str()),
        ("carol/app", "acme/app")
    );
}

// ---------------------------------------------------------------------------------------
// Shared real-world fixtures (read at run time, never copied)
// ---------------------------------------------------------------------------------------

fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/gitee")
}

/// `file → X-Gitee-Event` from the inventory table of SOURCES.md.
fn sources_events(dir: &Path) -> Vec<(String, String, String)> {
    let text = fs::read_to_string(dir.join("SOURCES.md")).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        // | file | class | source repo | path | commit | X-Gitee-Event | action / flags |
        if cols.len() >= 9 && cols[1].starts_with('`') && cols[1].ends_with(".json`") {
            out.push((
                cols[1].trim_matches('`').to_owned(),
                cols[6].to_owned(),
                cols[7].to_owned(),
            ));
        }
    }
    out
}

#[test]
fn shared_fixtures_parse_with_their_kind() {
    let dir = shared_dir();
    if !dir.is_dir() {
        eprintln!("{} not present: skipped", dir.display());
        return;
    }
    let files = json_files(&dir);
    assert!(!files.is_empty(), "no fixtures found in {}", dir.display());
    let table = sources_events(&dir);
    let mut checked_actions = 0;
    for path in &files {
        let rel = path
            .strip_prefix(&dir)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let body = fs::read(path).unwrap();
        let by_hook_name = detect_kind(None, &body);
        let row = table.iter().find(|(f, _, _)| *f == rel);
        // The listed header wins where it names a kind ("Push Hook (X-Gitee-Ping: true)").
        let by_header = row.and_then(|(_, ev, _)| EventKind::parse(ev.split('(').next().unwrap()));
        let kind = by_header
            .or(by_hook_name)
            .unwrap_or_else(|| panic!("{rel}: no kind"));
        if let (Some(h), Some(n)) = (by_header, by_hook_name) {
            assert_eq!(h, n, "{rel}: header and hook_name disagree");
        }
        let raw = parse_json(&body).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let d = parse_value(kind, &raw).unwrap_or_else(|e| panic!("{rel}: {e}"));
        // The one-pass path reads real deliveries exactly like the two steps.
        assert_eq!(
            parse_fast(kind, &body).as_ref(),
            Some(&d),
            "{rel}: fast path"
        );
        let c = d.context("fixtures", false, RECEIVED, raw.clone());
        assert!(!c.repo.full_name.is_empty(), "{rel}: repo");
        assert!(
            !c.actor.login.is_empty() || !c.actor.name.is_empty(),
            "{rel}: actor"
        );
        assert!(
            c.url.starts_with("https://gitee.com/"),
            "{rel}: url {}",
            c.url
        );
        assert!(!c.summary.is_empty(), "{rel}");
        assert!(c.raw.get("password").is_none() && c.raw.get("sign").is_none());
        if let Some(ts) = raw["timestamp"].as_str() {
            assert_eq!(c.timestamp_ms.to_string(), ts, "{rel}");
        }
        // The action column: `assign`, `close (action_desc=open)`, `created=True deleted=False`.
        if let Some((_, _, flags)) = row {
            let expected = if flags.contains("created=True") {
                Some("create")
            } else if flags.contains("deleted=True") {
                Some("delete")
            } else if flags.contains("created=False deleted=False") {
                Some("push")
            } else {
                const ACTIONS: [&str; 10] = [
                    "open",
                    "update",
                    "close",
                    "merge",
                    "assign",
                    "delete",
                    "state_change",
                    "comment",
                    "approved",
                    "tested",
                ];
                flags
                    .split([' ', '('])
                    .next()
                    .filter(|w| ACTIONS.contains(w))
            };
            if let Some(a) = expected {
                assert_eq!(d.action, a, "{rel}: action");
                checked_actions += 1;
            }
        }
    }
    assert!(
        checked_actions >= files.len() - 2,
        "{checked_actions} of {}",
        files.len()
    );
}

#[test]
fn shared_fixture_details() {
    let dir = shared_dir();
    if !dir.is_dir() {
        return;
    }
    let load = |rel: &str, kind| ctx_of(kind, &fs::read(dir.join(rel)).unwrap());

    let (d, c) = load("go-scm/push_branch_create.json", EventKind::Push);
    assert_eq!(
        (d.action.as_str(), d.branch.as_deref()),
        ("create", Some("feat-2-1"))
    );
    let p = c.push.unwrap();
    assert_eq!(
        (p.total_commits, p.commits.len(), p.more_commits),
        (13, 1, 12)
    );

    let (_, c) = load("flow-core-x/webhook_tag.json", EventKind::TagPush);
    assert_eq!(c.action, "create");
    assert_eq!(
        c.tag.as_ref().unwrap().url,
        "https://gitee.com/gy2006/flow-test/tree/v0.1"
    );

    let (d, c) = load("go-scm/note_hook_pr_comment.json", EventKind::Note);
    assert_eq!(d.branch.as_deref(), Some("master"));
    let n = c.note.unwrap();
    assert_eq!(
        (n.on.as_str(), n.target.reference.as_str()),
        ("pull_request", "7")
    );
    assert_eq!(
        n.url,
        "https://gitee.com/kit101/drone-yml-test/pulls/7#note_6937563"
    );
    assert!(c.pull_request.is_some());

    let (_, c) = load("go-scm/note_hook_issue_comment.json", EventKind::Note);
    let n = c.note.unwrap();
    assert_eq!(
        (n.on.as_str(), n.target.reference.as_str()),
        ("issue", "I4CF12")
    );
    assert_eq!(c.issue.unwrap().state_name, "待办的");

    let (_, c) = load("go-scm/issue_hook_state_change.json", EventKind::Issue);
    let i = c.issue.unwrap();
    assert_eq!(
        (i.number.as_str(), i.milestone.as_str(), i.state.as_str()),
        ("I4CYEO", "beta1.0", "progressing")
    );
    assert_eq!(i.labels, vec!["duplicate".to_owned()]);

    let (d, c) = load("go-scm/pr_update.json", EventKind::MergeRequest);
    assert_eq!(d.branch.as_deref(), Some("master"));
    assert_eq!(c.pull_request.unwrap().action_desc, "source_branch_changed");

    let (_, c) = load(
        "rothub-php/ping_push_hook_test_delivery.json",
        EventKind::Push,
    );
    assert_eq!(c.enterprise.unwrap().name, "OSCHINA");
    assert_eq!(
        c.push.unwrap().commits[0].title,
        "这是一条测试 Push 类型 WebHook 触发的推送"
    );
}

#[test]
fn shared_fixture_signatures_verify() {
    let dir = shared_dir();
    if !dir.is_dir() {
        return;
    }
    let go_scm = SourceAuth::Signature {
        secret: "bBg5lrt03VixkX85CNqYIcecC0SIGASE".to_owned(),
    };
    let files = json_files(&dir.join("go-scm"));
    assert!(!files.is_empty());
    for path in &files {
        let v: Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
        let (sign, ts) = (
            v["sign"].as_str().unwrap(),
            v["timestamp"].as_str().unwrap(),
        );
        let now: i64 = ts.parse::<i64>().unwrap() + 30_000;
        assert_eq!(
            verify(&go_scm, Some(sign), Some(ts), now, 60_000),
            Ok(()),
            "{}",
            path.display()
        );
        // a day later the same token is stale
        assert!(verify(&go_scm, Some(sign), Some(ts), now + 86_400_000, 3_600_000).is_err());
    }

    let rothub = SourceAuth::Signature {
        secret: "437EBE55A75911E8".to_owned(),
    };
    let headers =
        fs::read_to_string(dir.join("rothub-php/ping_push_hook_test_delivery.headers.txt"))
            .unwrap();
    let header = |name: &str| {
        headers
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("header {name}"))
    };
    let (token, ts) = (header("X-Gitee-Token"), header("X-Gitee-Timestamp"));
    let now: i64 = ts.parse().unwrap();
    assert_eq!(
        verify(&rothub, Some(&token), Some(&ts), now + 1500, 300_000),
        Ok(())
    );
    assert_eq!(header("X-Gitee-Ping"), "true");
    let body = fs::read(dir.join("rothub-php/ping_push_hook_test_delivery.json")).unwrap();
    assert_eq!(body.len().to_string(), header("Content-Length"));
    assert_eq!(
        detect_kind(Some(&header("X-Gitee-Event")), &body),
        Some(EventKind::Push)
    );
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["sign"].as_str(), Some(token.as_str()));
    assert_eq!(
        verify(
            &rothub,
            v["sign"].as_str(),
            v["timestamp"].as_str(),
            now,
            300_000
        ),
        Ok(())
    );
}

// ---------------------------------------------------------------------------------------
// Our own quirky fixtures (tests/fixtures/gitee)
// ---------------------------------------------------------------------------------------

fn quirky_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gitee")
}

#[test]
fn quirky_fixtures_parse() {
    let dir = quirky_dir();
    let files: Vec<_> = json_files(&dir)
        .into_iter()
        .filter(|p| !p.starts_with(dir.join("invalid")))
        .collect();
    assert!(files.len() >= 10, "{}", files.len());
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let body = fs::read(path).unwrap();
        let kind = detect_kind(None, &body).unwrap_or_else(|| panic!("{name}: hook_name"));
        let raw = parse_json(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        let d = parse_value(kind, &raw).unwrap_or_else(|e| panic!("{name}: {e}"));
        let c = d.context("quirky", false, RECEIVED, raw);
        assert!(
            !c.summary.contains(['\n', '\r', '\u{7}', '\u{1b}']),
            "{name}: {:?}",
            c.summary
        );
        assert!(c.summary.chars().count() <= 400, "{name}");
        assert!(
            !c.raw.to_string().contains("hunter2"),
            "{name}: not redacted"
        );
        // the context always serializes (templates get it as JSON)
        serde_json::to_value(&c).unwrap();
    }
}

#[test]
fn quirky_fixture_details() {
    let load = |name: &str| {
        let body = fs::read(quirky_dir().join(name)).unwrap();
        ctx_of(detect_kind(None, &body).unwrap(), &body)
    };
    let (d, c) = load("push_ids_as_strings.json");
    assert_eq!(d.action, "push");
    let p = c.push.as_ref().unwrap();
    assert_eq!(
        (p.commits.len(), p.total_commits, p.more_commits),
        (2, 2, 0)
    );
    assert!(
        p.commits[0]
            .title
            .starts_with("fix: \"quoted\" \\backslash\\ {{user.name}} }}")
    );
    assert!(p.commits[0].message.ends_with("body line 2"));
    assert_eq!(p.commits[1].title, "leading blank lines then title 🚀");
    assert_eq!(p.commits[1].author.login, "bob-wang");
    assert_eq!(c.timestamp_ms, 1763604942000);
    let Payload::Push(h) = &d.payload else {
        panic!()
    };
    assert_eq!(
        h.commits[0].modified,
        vec!["a.txt".to_owned(), "7".to_owned()]
    );
    assert_eq!(h.hook_id, 1234567);

    let (d, c) = load("push_nulls_everywhere.json");
    assert_eq!((d.action.as_str(), d.repo.as_str()), ("push", "acme/app"));
    assert_eq!(c.repo.url, "https://gitee.com/acme/app");
    assert_eq!(c.actor.name, "Display Only");
    assert_eq!(c.timestamp_ms, RECEIVED);

    let (d, _) = load("push_legacy_zero_shas_no_flags.json");
    assert_eq!(d.action, "create");
    let (d, c) = load("push_delete_no_flags.json");
    assert_eq!((d.action.as_str(), d.repo.as_str()), ("delete", "acme/app"));
    assert_eq!(c.timestamp_ms, RECEIVED);
    assert_eq!(c.summary, "bob-wang deleted branch old in acme/app");

    let (d, c) = load("tag_push_minimal.json");
    assert_eq!(
        (d.action.as_str(), d.branch.as_deref()),
        ("create", Some("v0.0.1-α"))
    );
    assert_eq!(c.url, "https://gitee.com/acme/app/tree/v0.0.1-α");
    assert_eq!(c.actor.login, "carol");

    let (d, c) = load("issue_nulls_everywhere.json");
    // no repository object: the repository comes from hook_url
    assert_eq!((d.action.as_str(), d.repo.as_str()), ("open", "acme/app"));
    assert_eq!(c.url, "https://gitee.com/acme/app/issues/IB3K7Q");
    let i = c.issue.unwrap();
    assert_eq!(
        (i.number.as_str(), i.state.as_str(), i.state_name.as_str()),
        ("IB3K7Q", "open", "open")
    );
    assert_eq!(c.actor.login, "alice");

    let (_, c) = load("issue_unknown_fields.json");
    let i = c.issue.unwrap();
    assert_eq!(
        (i.number.as_str(), i.milestone.as_str(), i.body.as_str()),
        ("7523001", "里程碑字符串", "12345")
    );
    assert_eq!(i.labels, vec!["wontfix".to_owned()]);
    assert_eq!(c.repo.url, "https://gitee.com/acme/app");
    assert_eq!(c.url, "https://gitee.com/acme/app/issues/7523001");
    assert_eq!(c.enterprise.unwrap().name, "Acme 科技");

    let (d, c) = load("merge_request_strings_and_nulls.json");
    assert_eq!(
        (d.action.as_str(), d.repo.as_str(), d.branch.as_deref()),
        ("merge", "acme/app", Some("main"))
    );
    let pr = c.pull_request.unwrap();
    assert_eq!(
        (pr.number, pr.merged, pr.commits, pr.additions),
        (42, true, 3, 10)
    );
    assert_eq!(pr.assignees.len(), 1);
    assert_eq!(c.actor.name, "张爱丽");
    assert!(
        c.summary.starts_with("张爱丽 merged pull request #42"),
        "{}",
        c.summary
    );

    let (d, c) = load("note_crlf_mentions.json");
    assert_eq!(d.branch.as_deref(), Some("main"));
    let n = c.note.unwrap();
    assert!(n.body.contains("\r\n<at user_id=\"all\">"));
    assert_eq!(n.url, "https://gitee.com/acme/app/pulls/42#note_1");
    assert_eq!(n.author.login, "bob-wang");

    let (_, c) = load("note_commit_without_comment.json");
    let n = c.note.unwrap();
    assert_eq!(
        (n.on.as_str(), n.body.as_str(), n.target.reference.as_str()),
        ("commit", "只有 note 字段", "abcdef1")
    );
    assert_eq!(n.target.url, "https://gitee.com/acme/app/commit/abcdef1");
    assert_eq!(c.summary, "carol commented on commit abcdef1 in acme/app");

    let (_, c) = load("note_unknown_noteable_type.json");
    assert_eq!(c.note.unwrap().on, "repository");
}

#[test]
fn invalid_fixtures_report_the_expected_path() {
    let dir = quirky_dir().join("invalid");
    let files = json_files(&dir);
    assert!(files.len() >= 8);
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let body = fs::read(path).unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        let expected = v
            .get("__expected_error_path")
            .and_then(Value::as_str)
            .unwrap_or(".");
        let kind = detect_kind(None, &body).unwrap_or(EventKind::Push);
        let e = parse(kind, &body).expect_err(&name);
        assert_eq!(e.path, expected, "{name}: {e}");
        assert!(!e.to_string().contains("hunter2"), "{name}: {e}");
    }
}

// ---------------------------------------------------------------------------------------
// The one-pass fast path agrees with the two steps
// ---------------------------------------------------------------------------------------

/// What the two steps (value, then typed view) say of a body.
fn two_steps(kind: EventKind, body: &[u8]) -> Result<Delivery, PayloadError> {
    let value = parse_json(body).map_err(|e| PayloadError {
        kind: Some(kind),
        ..e
    })?;
    parse_value(kind, &value)
}

#[test]
fn the_fast_path_is_taken_for_every_sample_and_agrees_with_the_two_steps() {
    for s in crate::samples::all() {
        let body = s.body.as_bytes();
        let fast = parse_fast(s.kind, body);
        assert!(fast.is_some(), "{}: the fast path refused a sample", s.name);
        assert_eq!(
            fast.unwrap(),
            two_steps(s.kind, body).unwrap(),
            "{}",
            s.name
        );
    }
}

#[test]
fn bodies_the_two_steps_refuse_never_pass_the_fast_path() {
    let push = |extra: &str| format!(r#"{{"ref":"refs/heads/main","x":{extra}}}"#);
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let refused = [
        // numbers beyond f64, only syntax-checked when skipped
        push("1e400"),
        push("-1E+999"),
        push(&"9".repeat(400)),
        // a lone surrogate, in a skipped field and in a read one
        push(r#""\udc00""#),
        r#"{"ref":"\ud800"}"#.to_owned(),
        // nested past the value parser's limit
        push(&deep),
        // not an object
        "[1]".to_owned(),
        " \"x\"".to_owned(),
    ];
    for body in &refused {
        assert!(
            two_steps(EventKind::Push, body.as_bytes()).is_err(),
            "{body:.80}"
        );
        assert_eq!(
            parse_fast(EventKind::Push, body.as_bytes()),
            None,
            "{body:.80}"
        );
        assert!(
            parse(EventKind::Push, body.as_bytes()).is_err(),
            "{body:.80}"
        );
    }
    // Accepted by both, some by the two steps only (the fast path hands over): same result.
    let accepted = [
        push("1.5e3"),
        push(&"9".repeat(25)),
        push(r#""\ud83d\ude00 \u00e9 \"quoted\" \\""#),
        push(&format!("{}1{}", "[".repeat(100), "]".repeat(100))),
        r#"{"ref":"refs/heads/a","ref":"refs/heads/b"}"#.to_owned(),
        r#"{"ref":"refs/heads/main","commits":[],"total_commits_count":3}"#.to_owned(),
    ];
    for body in &accepted {
        let expected = two_steps(EventKind::Push, body.as_bytes()).expect(body);
        assert_eq!(
            parse(EventKind::Push, body.as_bytes()).unwrap(),
            expected,
            "{body:.80}"
        );
    }
    // The fast path's own guard: exponents and long numbers hand over, true/false/null don't.
    assert!(!fast_path_safe(push("2E5").as_bytes()));
    assert!(fast_path_safe(push("[true,false,null,12.5,-3]").as_bytes()));
    assert!(fast_path_safe(
        push(r#""1e400 \"\\ud800\" [[[""#).as_bytes()
    ));
    // Brackets inside strings never count as nesting, however many; an escaped backslash
    // ends its escape, so the quote after it closes the string.
    let bracketed = format!(r#""{}\\""#, "[{".repeat(100));
    assert!(fast_path_safe(push(&bracketed).as_bytes()));
    assert!(!fast_path_safe(push(r#""a\\\"\uD800""#).as_bytes()));
    assert!(!fast_path_safe(push(r#"["a\\\"]"#).as_bytes()));
    // A string that never ends, or ends in a lone backslash: handed over.
    assert!(!fast_path_safe(br#"{"ref":"refs/heads"#));
    assert!(!fast_path_safe(br#"{"ref":"refs\"#));
    assert!(!fast_path_safe(br#"{"ref":"\"#));
}
