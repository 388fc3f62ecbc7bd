//! Tests of the template sets: built-ins on every sample × platform, hostile text, size,
//! overrides and error messages.

use std::fs;
use std::path::Path;

use serde_json::Value;

use super::sample::{self, commit};
use super::*;
use crate::gitee::EventKind;

const REPO_URL: &str = "https://gitee.com/acme/app";

/// Every string of a JSON value, one per line.
fn texts(v: &Value) -> String {
    collect(v, true)
}

/// The strings a platform interprets as markup: not `plain_text` objects (Slack header and
/// button, Feishu header, button and note), which show text literally.
fn markup_texts(v: &Value) -> String {
    collect(v, false)
}

fn collect(v: &Value, plain: bool) -> String {
    fn walk(v: &Value, plain: bool, out: &mut String) {
        match v {
            Value::String(s) => {
                out.push_str(s);
                out.push('\n');
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, plain, out)),
            Value::Object(o) => {
                let is_plain =
                    o.get("type").or_else(|| o.get("tag")) == Some(&Value::from("plain_text"));
                if plain || !is_plain {
                    o.values().for_each(|x| walk(x, plain, out));
                }
            }
            _ => {}
        }
    }
    let mut out = String::new();
    walk(v, plain, &mut out);
    out
}

fn sample(label: &str) -> EventContext {
    sample::contexts()
        .into_iter()
        .find(|(l, _)| l == label)
        .unwrap_or_else(|| panic!("no sample {label}"))
        .1
}

fn render_all(ctx: &EventContext) -> Vec<(PlatformKind, Value)> {
    PlatformKind::ALL
        .into_iter()
        .map(|p| {
            let body = TemplateSet::builtin(p)
                .render(ctx)
                .unwrap_or_else(|e| panic!("{p}: {e}"));
            (p, body)
        })
        .collect()
}

/// The platform's schema, checked beyond what `limits` requires.
fn assert_schema(p: PlatformKind, body: &Value, label: &str) {
    match p {
        PlatformKind::Dingtalk => {
            assert_eq!(body["msgtype"], "markdown", "{label}");
            assert!(
                !body["markdown"]["title"].as_str().unwrap().is_empty(),
                "{label}"
            );
            assert!(
                body["markdown"]["text"]
                    .as_str()
                    .unwrap()
                    .starts_with("#### "),
                "{label}"
            );
        }
        PlatformKind::Wecom => {
            assert_eq!(body["msgtype"], "markdown", "{label}");
            let content = body["markdown"]["content"].as_str().unwrap();
            assert!(content.starts_with("**"), "{label}");
            assert!(content.len() <= 4096, "{label}");
        }
        PlatformKind::Feishu => {
            assert_eq!(body["msg_type"], "interactive", "{label}");
            let card = &body["card"];
            let colour = card["header"]["template"].as_str().unwrap();
            assert!(
                [
                    "blue",
                    "wathet",
                    "turquoise",
                    "green",
                    "yellow",
                    "orange",
                    "red",
                    "carmine",
                    "violet",
                    "purple",
                    "indigo",
                    "grey"
                ]
                .contains(&colour),
                "{label}: colour {colour:?}"
            );
            assert_eq!(card["header"]["title"]["tag"], "plain_text");
            let tags: Vec<&str> = card["elements"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["tag"].as_str().unwrap())
                .collect();
            assert_eq!(tags.first(), Some(&"div"), "{label}");
            assert_eq!(tags.last(), Some(&"note"), "{label}");
            assert!(
                tags == ["div", "action", "note"] || tags == ["div", "hr", "div", "action", "note"],
                "{label}: {tags:?}"
            );
            assert_eq!(card["elements"][0]["text"]["tag"], "lark_md");
            let action = &card["elements"][tags.len() - 2];
            let url = action["actions"][0]["url"].as_str().unwrap();
            assert!(url.starts_with("https://"), "{label}: {url}");
        }
        PlatformKind::Slack => {
            assert!(!body["text"].as_str().unwrap().is_empty(), "{label}");
            let blocks = body["blocks"].as_array().unwrap();
            let kinds: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
            assert_eq!(kinds.first(), Some(&"header"), "{label}");
            assert_eq!(kinds.last(), Some(&"actions"), "{label}");
            assert!(
                kinds.contains(&"section") && kinds.contains(&"context"),
                "{label}"
            );
            let button = &blocks.last().unwrap()["elements"][0];
            assert!(
                button["url"].as_str().unwrap().starts_with("https://"),
                "{label}"
            );
        }
    }
}

#[test]
fn template_sets_are_send_sync_and_clone() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<TemplateSet>();
}

#[test]
fn builtins_compile_and_pass_validation_on_every_platform() {
    for p in PlatformKind::ALL {
        let set = TemplateSet::builtin(p);
        assert_eq!(set.platform(), p);
        assert_eq!(
            set.names(),
            [
                "digest",
                "issue",
                "merge_request",
                "note",
                "push",
                "tag_push"
            ]
        );
        set.validate().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            set.source_of("push").to_string(),
            format!("built-in {p}/push.hbs")
        );
        // `load` without overrides is the same set.
        TemplateSet::load(p, None).unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(TemplateSet::load_all(None).unwrap().len(), 4);
}

#[test]
fn every_sample_renders_with_the_platform_schema_and_who_did_what_where() {
    for (label, ctx) in sample::contexts() {
        for (p, body) in render_all(&ctx) {
            assert_schema(p, &body, &format!("{p} {label}"));
            let all = texts(&body);
            for needle in ["Alice", "https://gitee.com/alice", "acme/app", REPO_URL] {
                assert!(all.contains(needle), "{p} {label}: no {needle:?} in\n{all}");
            }
            // Not a test delivery: no test marking.
            if !ctx.is_test {
                assert!(!all.contains("[Test]"), "{p} {label}");
            }
        }
    }
}

/// Substrings every platform's message must contain, per sample.
#[test]
fn wording_per_event_and_action() {
    let c1 = commit(1);
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "push/push",
            vec![
                "pushed 3 commits to",
                "main",
                &c1.short_sha,
                &c1.url,
                "Fix bug number 1",
                "Bob",
                "/compare/",
                "View changes",
            ],
        ),
        (
            "push/create",
            vec!["created branch", "new branch main", "Fix bug number 1"],
        ),
        (
            "push/create-empty",
            vec!["created branch", "new branch main"],
        ),
        (
            "push/delete",
            vec!["deleted branch", "branch main deleted", "View repository"],
        ),
        ("push/many", vec!["pushed 25 commits", "more", "/compare/"]),
        ("push/test", vec!["[Test] acme/app"]),
        (
            "tag_push/create",
            vec![
                "created tag",
                "v1.2.0",
                "/tree/v1.2.0",
                "tag v1.2.0 created",
                "View tag",
            ],
        ),
        (
            "tag_push/delete",
            vec!["deleted tag", "tag v1.2.0 deleted", "View tags", "/tags"],
        ),
        (
            "merge_request/open",
            vec![
                "opened pull request",
                "#42 Fix signature encoding",
                "/pulls/42",
                "bob/app:fix-sign → main",
                "open",
                "Encode the signature once.",
                "PR #42 opened",
            ],
        ),
        (
            "merge_request/update",
            vec!["updated pull request", "PR #42 updated"],
        ),
        (
            "merge_request/update-source",
            vec!["pushed new commits to pull request"],
        ),
        (
            "merge_request/update-target",
            vec!["changed the target branch of pull request"],
        ),
        (
            "merge_request/update-label",
            vec!["changed the labels of pull request", "bug, security"],
        ),
        (
            "merge_request/merge",
            vec!["merged pull request", "merged", "PR #42 merged"],
        ),
        (
            "merge_request/close",
            vec!["closed pull request", "PR #42 closed"],
        ),
        ("merge_request/approved", vec!["approved pull request"]),
        (
            "merge_request/tested",
            vec!["marked pull request", "as tested", "Erin"],
        ),
        (
            "merge_request/assign",
            vec!["assigned pull request", "Carol", "Dave", "PR #42 assigned"],
        ),
        (
            "merge_request/other",
            vec!["reopened pull request", "PR #42 reopened"],
        ),
        (
            "issue/open",
            vec![
                "opened issue",
                "#I4CYEO Login fails with 500",
                "/issues/I4CYEO",
                "1. open /login",
                "2. submit",
                "issue #I4CYEO opened",
                "View issue",
            ],
        ),
        (
            "issue/state_change",
            vec!["closed issue", "issue #I4CYEO closed"],
        ),
        (
            "issue/state_change-progressing",
            vec!["moved issue", "to ", "进行中", "issue #I4CYEO → 进行中"],
        ),
        (
            "issue/state_change-rejected",
            vec!["moved issue", "已拒绝", "issue #I4CYEO → 已拒绝"],
        ),
        (
            "issue/assign",
            vec!["assigned issue", "Carol", "https://gitee.com/carol"],
        ),
        (
            "issue/delete",
            vec!["deleted issue", "issue #I4CYEO deleted"],
        ),
        (
            "issue/other",
            vec!["updated issue", "issue #I4CYEO updated"],
        ),
        (
            "note/issue",
            vec![
                "commented on issue",
                "#I4CYEO Login fails with 500",
                "Looks good to me, @",
                "One nit: rename `x`.",
                "#note_1234",
                "comment on issue #I4CYEO",
            ],
        ),
        (
            "note/pull_request",
            vec![
                "commented on pull request",
                "#42 Fix signature encoding",
                "comment on PR #42",
            ],
        ),
        (
            "note/commit",
            vec![
                "commented on commit",
                &c1.short_sha,
                &c1.url,
                "Fix bug number 1",
            ],
        ),
        (
            "note/repository",
            vec!["commented on", "comment on the repository"],
        ),
        (
            "note/edited",
            vec!["edited a comment on issue", "comment edited on"],
        ),
        (
            "note/deleted",
            vec!["deleted a comment on pull request", "comment deleted on"],
        ),
    ];
    for (label, needles) in cases {
        for (p, body) in render_all(&sample(label)) {
            let all = texts(&body);
            for needle in &needles {
                assert!(all.contains(needle), "{p} {label}: no {needle:?} in\n{all}");
            }
        }
    }
}

#[test]
fn pushes_show_at_most_ten_commits_and_link_the_rest() {
    let ctx = sample("push/many");
    for (p, body) in render_all(&ctx) {
        let all = texts(&body);
        let shown = (1..=20).filter(|&i| all.contains(&commit(i).url)).count();
        let expected = if p == PlatformKind::Wecom { 5 } else { 10 };
        assert_eq!(shown, expected, "{p}");
        let more = format!("…and {} more", 25 - expected);
        assert!(all.contains(&more), "{p}: no {more:?} in\n{all}");
    }
}

#[test]
fn test_deliveries_are_marked() {
    let ctx = sample("push/test");
    for (p, body) in render_all(&ctx) {
        match p {
            PlatformKind::Dingtalk => {
                assert!(
                    body["markdown"]["title"]
                        .as_str()
                        .unwrap()
                        .starts_with("[Test] ")
                );
                assert!(
                    body["markdown"]["text"]
                        .as_str()
                        .unwrap()
                        .starts_with("#### [Test] ")
                );
            }
            PlatformKind::Wecom => {
                assert!(
                    body["markdown"]["content"]
                        .as_str()
                        .unwrap()
                        .starts_with("**[Test] ")
                );
            }
            PlatformKind::Feishu => {
                let h = &body["card"]["header"];
                assert!(
                    h["title"]["content"]
                        .as_str()
                        .unwrap()
                        .starts_with("[Test] ")
                );
                assert_eq!(h["template"], "grey");
            }
            PlatformKind::Slack => {
                assert!(body["text"].as_str().unwrap().starts_with("[Test] "));
                assert!(
                    body["blocks"][0]["text"]["text"]
                        .as_str()
                        .unwrap()
                        .starts_with("[Test] ")
                );
                assert!(texts(&body).contains("test delivery"));
            }
        }
    }
}

#[test]
fn feishu_header_colour_follows_the_kind() {
    let set = TemplateSet::builtin(PlatformKind::Feishu);
    for (label, colour) in [
        ("push/push", "blue"),
        ("push/create", "green"),
        ("push/delete", "red"),
        ("tag_push/create", "green"),
        ("tag_push/delete", "red"),
        ("merge_request/open", "blue"),
        ("merge_request/merge", "green"),
        ("merge_request/close", "red"),
        ("merge_request/approved", "turquoise"),
        ("issue/open", "blue"),
        ("issue/state_change", "green"),
        ("issue/state_change-rejected", "red"),
        ("issue/delete", "red"),
        ("note/issue", "wathet"),
    ] {
        let body = set.render(&sample(label)).unwrap();
        assert_eq!(body["card"]["header"]["template"], colour, "{label}");
    }
}

#[test]
fn slack_uses_its_link_syntax_and_plain_text_header() {
    let ctx = sample("merge_request/open");
    let body = TemplateSet::builtin(PlatformKind::Slack)
        .render(&ctx)
        .unwrap();
    let section = body["blocks"][1]["text"]["text"].as_str().unwrap();
    assert!(
        section.contains("<https://gitee.com/acme/app/pulls/42|#42 Fix signature encoding>"),
        "{section}"
    );
    assert_eq!(body["blocks"][0]["text"]["text"], "acme/app: PR #42 opened");
    assert_eq!(body["text"], "acme/app: PR #42 opened");
    let dt = TemplateSet::builtin(PlatformKind::Dingtalk)
        .render(&ctx)
        .unwrap();
    assert!(
        dt["markdown"]["text"]
            .as_str()
            .unwrap()
            .contains("[#42 Fix signature encoding](https://gitee.com/acme/app/pulls/42)")
    );
}

// ---------------------------------------------------------------------------------------------
// Hostile text

/// Replaces every string of `v` (except the enum-like fields the templates switch on) with
/// `text`, and every URL with an https URL containing `text`.
fn poison(v: &mut Value, text: &str, key: &str) {
    match v {
        Value::String(s) => {
            const KEEP: [&str; 6] = [
                "event",
                "action",
                "on",
                "state",
                "noteable_type",
                "action_desc",
            ];
            if KEEP.contains(&key) {
                return;
            }
            if key == "url" || key.ends_with("_url") {
                *s = format!("https://gitee.com/acme/app/{text}");
            } else {
                *s = format!("{text}{text}");
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| poison(x, text, key)),
        Value::Object(o) => o.iter_mut().for_each(|(k, x)| poison(x, text, k)),
        _ => {}
    }
}

const HOSTILE: [&str; 14] = [
    "\"q\" \\ \"",
    "}}{{x}}{{{y}}}",
    "{{actor.name}}",
    "<at user_id=\"all\">所有人</at>",
    "<at id=all></at>",
    "<!channel> <!here>",
    "<@U123><@zhangsan>",
    "<font color=red>r</font>",
    "[x](http://e.vil)",
    "![i](http://e.vil/i.png)",
    "a&amp;b<c>d&e",
    "中文 🎉👨‍👩‍👧 ok",
    "\u{2028}x\u{2029}\u{7f}",
    "\u{0}\u{1}\u{2}\u{3}\u{4}\u{5}\u{6}\u{7}\u{8}\t\n\u{b}\u{c}\r\u{e}\u{f}\u{10}\u{11}\u{12}\u{13}\u{14}\u{15}\u{16}\u{17}\u{18}\u{19}\u{1a}\u{1b}\u{1c}\u{1d}\u{1e}\u{1f}",
];

#[test]
fn hostile_text_in_every_field_stays_valid_json_and_inert_markup() {
    let sets: Vec<TemplateSet> = PlatformKind::ALL
        .into_iter()
        .map(TemplateSet::builtin)
        .collect();
    for h in HOSTILE {
        for (label, ctx) in sample::contexts() {
            let mut data = serde_json::to_value(&ctx).unwrap();
            poison(&mut data, h, "");
            data["mentions"] = serde_json::to_value(Mentions::default()).unwrap();
            data["timezone"] = "+08:00".into();
            for set in &sets {
                let p = set.platform();
                let body = set
                    .render_named(ctx.event.as_str(), &data)
                    .unwrap_or_else(|e| panic!("{p} {label} {h:?}: {e}"));
                let raw = set.render_text(ctx.event.as_str(), &data).unwrap();
                let markup = markup_texts(&body);
                let all = texts(&body);
                let why = format!("{p} {label} {h:?}:\n{all}");
                // Never an active mention, tag or injected link (plain_text fields show text
                // literally, so only markup fields are checked).
                for bad in [
                    "<at ",
                    "<!channel>",
                    "<!here>",
                    "<@U123>",
                    "<@zhangsan>",
                    "<font color=red>",
                ] {
                    assert!(!markup.contains(bad), "{bad:?} active in {why}");
                }
                if p == PlatformKind::Slack {
                    // Only our own link syntax: every `<` starts `<https://`.
                    for (i, _) in markup.match_indices('<') {
                        assert!(markup[i..].starts_with("<https://"), "stray < in {why}");
                    }
                } else {
                    // `[x](url)` is inert in Slack mrkdwn; elsewhere it must not become a link.
                    assert!(!markup.contains("](http://e.vil"), "link injected in {why}");
                }
                // Handlebars does not re-parse data: braces arrive verbatim.
                if h.starts_with("}}") {
                    assert!(all.contains("}}{{x}}{{{y}}}"), "{why}");
                }
                if h == "{{actor.name}}" {
                    assert!(all.contains("{{actor.name}}"), "{why}");
                }
                if h.starts_with('中') {
                    assert!(all.contains("中文 🎉👨‍👩‍👧 ok"), "{why}");
                }
                if h.starts_with("\"q\"") {
                    assert!(all.contains("\"q\" \\ \""), "{why}");
                }
                // Control characters in strings were escaped (the JSON parsed), and so were the
                // line separators that JSON allows raw but JavaScript consumers choke on.
                assert!(!raw.contains(['\u{2028}', '\u{2029}']), "{why}");
                if h.starts_with('\u{0}') {
                    assert!(
                        raw.contains("\\u0000\\u0001") && all.contains('\u{1f}'),
                        "{why}"
                    );
                }
            }
        }
    }
}

#[test]
fn markup_is_escaped_the_platforms_way() {
    let mut ctx = sample("issue/open");
    if let Some(i) = ctx.issue.as_mut() {
        i.title = "a <b> & [c](http://d)".into();
    }
    let get = |p: PlatformKind| texts(&TemplateSet::builtin(p).render(&ctx).unwrap());
    assert!(get(PlatformKind::Slack).contains("a &lt;b&gt; &amp; [c](http://d)"));
    assert!(get(PlatformKind::Feishu).contains("a &lt;b&gt; &amp; ［c］\u{200B}(http://d)"));
    assert!(get(PlatformKind::Wecom).contains("a <\u{200B}b> & ［c］\u{200B}(http://d)"));
    assert!(get(PlatformKind::Dingtalk).contains("a <\u{200B}b> & ［c］\u{200B}(http://d)"));
}

#[test]
fn huge_fields_are_truncated_within_every_limit() {
    let huge = "长".repeat(10_000);
    for (label, ctx) in sample::contexts() {
        let mut data = serde_json::to_value(&ctx).unwrap();
        poison(&mut data, &huge, "");
        // Realistic URLs (the templates do not shorten URLs), up to 20 commits.
        fn fix_urls(v: &mut Value, key: &str) {
            match v {
                Value::String(s) if key == "url" || key.ends_with("_url") => {
                    *s = format!(
                        "https://gitee.com/a-rather-long-namespace/a-rather-long-repository-name/commit/{}",
                        "f".repeat(40)
                    );
                }
                Value::Array(a) => a.iter_mut().for_each(|x| fix_urls(x, key)),
                Value::Object(o) => o.iter_mut().for_each(|(k, x)| fix_urls(x, k)),
                _ => {}
            }
        }
        fix_urls(&mut data, "");
        // Git refs and shas have natural bounds; they are used inside URLs, which are not cut.
        for ptr in ["/push/branch", "/tag/name"] {
            if let Some(v) = data.pointer_mut(ptr) {
                *v = Value::from("长".repeat(100));
            }
        }
        for ptr in ["/tag/sha", "/push/commits/0/sha"] {
            if let Some(v) = data.pointer_mut(ptr) {
                *v = Value::from("f".repeat(40));
            }
        }
        if let Some(commits) = data
            .pointer_mut("/push/commits")
            .and_then(Value::as_array_mut)
            && let Some(first) = commits.first().cloned()
        {
            commits.resize(20, first);
        }
        for p in PlatformKind::ALL {
            let body = TemplateSet::builtin(p)
                .render_data(ctx.event.as_str(), &data)
                .unwrap_or_else(|e| panic!("{p} {label}: {e}"));
            // Shortened, not emptied: the huge text still shows, cut with an ellipsis.
            let all = texts(&body);
            assert!(
                all.contains("长长长长长长长长") && all.contains('…'),
                "{p} {label}"
            );
        }
    }
}

#[test]
fn unknown_names_and_non_objects_are_errors() {
    let set = TemplateSet::builtin(PlatformKind::Slack);
    let e = set
        .render_named("nope", &serde_json::json!({}))
        .unwrap_err();
    assert_eq!(e.to_string(), "no template \"nope\" for slack");
}

// ---------------------------------------------------------------------------------------------
// Overrides

fn write(dir: &Path, rel: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, text).unwrap();
    path
}

#[test]
fn an_override_folder_replaces_exactly_one_template() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "slack/push.hbs",
        "{\"text\": \"custom {{actor.name}} {{> _sig}}\"}\n",
    );
    let partial = write(dir.path(), "slack/_sig.hbs", "— {{repo.full_name}}");
    write(dir.path(), "slack/README.md", "ignored");
    write(dir.path(), "dingtalk/.push.hbs.swp", "ignored");
    let set = TemplateSet::load(PlatformKind::Slack, Some(dir.path())).unwrap();
    assert_eq!(set.source_of("push"), TemplateSource::File(path));
    assert_eq!(set.source_of("_sig"), TemplateSource::File(partial));
    for name in ["tag_push", "issue", "merge_request", "note"] {
        assert!(
            matches!(set.source_of(name), TemplateSource::Builtin { .. }),
            "{name}"
        );
    }
    assert_eq!(
        set.names(),
        [
            "_sig",
            "digest",
            "issue",
            "merge_request",
            "note",
            "push",
            "tag_push"
        ]
    );
    let body = set.render(&sample("push/push")).unwrap();
    assert_eq!(body, serde_json::json!({"text": "custom Alice — acme/app"}));
    let note = set.render(&sample("note/issue")).unwrap();
    assert_eq!(
        note,
        TemplateSet::builtin(PlatformKind::Slack)
            .render(&sample("note/issue"))
            .unwrap()
    );
    // Other platforms are untouched by the slack folder.
    let ding = TemplateSet::load(PlatformKind::Dingtalk, Some(dir.path())).unwrap();
    assert!(
        ding.names()
            .iter()
            .all(|n| matches!(ding.source_of(n), TemplateSource::Builtin { .. }))
    );
}

fn load_err(rel: &str, text: &str) -> (std::path::PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), rel, text);
    let platform = PlatformKind::parse(rel.split('/').next().unwrap()).unwrap();
    let err = TemplateSet::load(platform, Some(dir.path())).unwrap_err();
    (path, err.to_string())
}

#[test]
fn a_misspelt_field_names_the_file_line_and_field() {
    let (path, msg) = load_err(
        "feishu/issue.hbs",
        "{\n  \"msg_type\": \"text\",\n  \"content\": {\"text\": \"{{issue.titel}}\"}\n}\n",
    );
    assert!(msg.starts_with(&format!("{}:3:", path.display())), "{msg}");
    assert!(msg.contains("`issue.titel` does not exist"), "{msg}");
    assert!(msg.contains("sample issue/"), "{msg}");
}

#[test]
fn invalid_handlebars_names_the_file_and_line() {
    let (path, msg) = load_err("wecom/note.hbs", "{\n\"a\": \"{{#if note}}x\"\n}\n");
    assert!(msg.starts_with(&format!("{}:", path.display())), "{msg}");
    assert!(msg.contains("invalid template"), "{msg}");
    let (_, msg) = load_err("wecom/note.hbs", "{\n\"a\": \"{{note.body}\"\n}\n");
    assert!(msg.contains(":2:"), "{msg}");
    assert!(msg.contains("    2 | \"a\": \"{{note.body}\""), "{msg}");
}

#[test]
fn a_template_that_renders_invalid_json_shows_where() {
    let (path, msg) = load_err(
        "dingtalk/push.hbs",
        "{\"msgtype\": \"markdown\",\n \"markdown\": {\"title\": \"{{repo.full_name}}\" \"text\": \"x\"}}\n",
    );
    assert!(
        msg.starts_with(&format!(
            "{}: the rendered text is not valid JSON",
            path.display()
        )),
        "{msg}"
    );
    assert!(msg.contains("rendered line 2, column"), "{msg}");
    assert!(msg.contains("\"title\": \"acme/app\" \"text\""), "{msg}");
    assert!(msg.contains('^'), "{msg}");

    // Triple-stash bypasses escaping: the raw newline of the body breaks the JSON.
    let (_, msg) = load_err("slack/note.hbs", "{\"text\": \"{{{note.body}}}\"}");
    assert!(msg.contains("not valid JSON"), "{msg}");
    assert!(msg.contains("control character"), "{msg}");

    let (_, msg) = load_err("slack/note.hbs", "[\"{{note.body}}\"]");
    assert!(msg.contains("is an array, not an object"), "{msg}");
}

#[test]
fn limits_and_schema_are_checked_at_load() {
    // Fixed text over the limit: nothing to shorten.
    let (path, msg) = load_err(
        "wecom/push.hbs",
        &format!(
            "{{\"msgtype\": \"markdown\", \"markdown\": {{\"content\": \"{}{{{{summary}}}}\"}}}}",
            "x".repeat(4100)
        ),
    );
    assert!(
        msg.starts_with(&format!(
            "{}: too large for wecom: markdown.content is",
            path.display()
        )),
        "{msg}"
    );
    assert!(msg.contains("the limit is 4096"), "{msg}");
    let (_, msg) = load_err("feishu/push.hbs", "{\"msgtype\": \"text\"}");
    assert!(
        msg.contains("not a valid feishu message: `msg_type`"),
        "{msg}"
    );
}

#[test]
fn override_layout_mistakes_are_errors() {
    let (path, msg) = load_err("slack/pussh.hbs", "{}");
    assert!(
        msg.starts_with(&format!(
            "{}: unknown template name \"pussh\"",
            path.display()
        )),
        "{msg}"
    );

    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "push.hbs", "{}");
    let msg = TemplateSet::load(PlatformKind::Slack, Some(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("templates go in a platform folder"), "{msg}");

    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "lark/push.hbs", "{}");
    let msg = TemplateSet::load(PlatformKind::Feishu, Some(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("name the platform folder `feishu`"), "{msg}");

    let missing = dir.path().join("nope");
    let msg = TemplateSet::load(PlatformKind::Feishu, Some(&missing))
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with(&missing.display().to_string()), "{msg}");

    // An empty folder, or one with only other platforms, changes nothing.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "examples/whatever.txt", "");
    let set = TemplateSet::load(PlatformKind::Wecom, Some(dir.path())).unwrap();
    assert_eq!(set.names().len(), 6);
}

#[test]
fn render_errors_name_the_builtin_source() {
    let set = TemplateSet::builtin(PlatformKind::Dingtalk);
    // A push context without its `push` part: strict mode reports the missing field.
    let ctx = sample::base(EventKind::Push, "push");
    let msg = set.render(&ctx).unwrap_err().to_string();
    assert!(msg.starts_with("built-in dingtalk/push.hbs:"), "{msg}");
    assert!(msg.contains("does not exist"), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// Size fitting

#[test]
fn a_template_showing_everything_is_fitted_longest_text_first() {
    let dir = tempfile::tempdir().unwrap();
    // Every commit's full message, each linked: far over DingTalk's 20,000 bytes.
    write(
        dir.path(),
        "dingtalk/push.hbs",
        r#"{"msgtype": "markdown", "markdown": {"title": "{{summary}}", "text": "{{#each push.commits}}\n- {{link this.url (short_sha this.sha)}} {{this.message}}{{/each}}\n\n{{link push.compare_url "compare"}}"}}"#,
    );
    let set = TemplateSet::load(PlatformKind::Dingtalk, Some(dir.path())).unwrap();
    let mut ctx = sample("push/many");
    let short = "short message".to_owned();
    if let Some(p) = ctx.push.as_mut() {
        for (i, c) in p.commits.iter_mut().enumerate() {
            c.message = if i == 3 {
                short.clone()
            } else {
                "长".repeat(3000)
            };
        }
    }
    let body = set.render(&ctx).unwrap();
    let size = serde_json::to_string(&body).unwrap().len();
    assert!(
        size <= limits::DINGTALK_MAX_BODY_BYTES - limits::SEND_TIME_RESERVE_BYTES,
        "{size}"
    );
    // Fitted, not starved: most of the budget is used.
    assert!(size > 15_000, "{size}");
    let text = body["markdown"]["text"].as_str().unwrap();
    // The short message is untouched, the long ones cut with an ellipsis; every link is whole.
    assert!(text.contains(&short), "{text}");
    assert_eq!(text.matches('…').count(), 19, "{text}");
    for i in 1..=20 {
        assert!(
            text.contains(&format!("]({})", commit(i).url)),
            "commit {i}"
        );
    }
    assert!(
        text.ends_with("/compare/0000000...0000000)")
            || text.contains("](https://gitee.com/acme/app/compare/")
    );
}

#[test]
fn a_huge_comment_fits_every_platform_and_keeps_its_link() {
    let mut ctx = sample("note/pull_request");
    if let Some(n) = ctx.note.as_mut() {
        // 100 KB of mixed text, with markup that must stay inert when cut.
        n.body = "评论 comment [x](http://e.vil) <@U1> @all 🎉\n".repeat(2500);
    }
    for (p, body) in render_all(&ctx) {
        limits::check_fitted(p, &body).unwrap_or_else(|e| panic!("{p}: {e:?}"));
        let all = texts(&body);
        assert!(
            all.contains("#note_1234"),
            "{p}: the link to the comment is gone"
        );
        assert!(all.contains('…'), "{p}");
        assert!(all.contains("评论 comment"), "{p}");
    }
}

#[test]
fn fixed_text_over_the_limit_is_still_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "slack/note.hbs",
        &format!(r#"{{"text": "{}{{{{note.body}}}}"}}"#, "x".repeat(40_001)),
    );
    let err = TemplateSet::load(PlatformKind::Slack, Some(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("too large for slack: text is"), "{err}");
}
