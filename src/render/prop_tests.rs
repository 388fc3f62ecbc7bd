//! Property tests: arbitrary Unicode in every text field of every sample payload, rendered by
//! the built-in templates of every platform through the whole parse → context → render path
//! (mentions on), always gives valid JSON within the platform's limits, with no markup that
//! the relay did not write itself: no mention, broadcast, tag or link coming from user text.

use proptest::prelude::*;
use serde_json::Value;

use super::{TemplateSet, limits};
use crate::config::Person;
use crate::message::{self, Audience, Target};
use crate::platform::PlatformKind;
use crate::samples;

/// Markup fragments users might try.
const TOKENS: &[&str] = &[
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U01ALICE>",
    "<@alice>",
    "<at id=all></at>",
    "<at user_id=\"ou_alice\">A</at>",
    "<font color=\"warning\">",
    "</font>",
    "@all",
    "@alice",
    "@13800000001",
    "@carol",
    "[x](https://evil.example/)",
    "![i](http://evil.example/i.png)",
    "<https://evil.example|click>",
    "*bold*",
    "**",
    "`",
    "\\",
    "\"",
    "{{x}}",
    "}}",
    "\n",
    "\r\n",
    "\u{0}",
    "\u{2028}",
    "\u{200B}",
    "中文",
    "🎉👨‍👩‍👧",
    "é",
    "&amp;",
    "&",
    "<",
    ">",
    "|",
    "](",
    " ",
];

fn nasty() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(proptest::sample::select(TOKENS), 0..12).prop_map(|v| v.concat()),
        (any::<String>(), proptest::sample::select(TOKENS)).prop_map(|(a, t)| format!("{a}{t}{a}")),
    ]
}

/// What to put in each text field.
#[derive(Debug, Clone)]
struct Poison {
    pool: Vec<String>,
    seed: u64,
    /// Fields made huge: (field index modulo, repeat count).
    huge_every: usize,
    huge_repeat: usize,
    /// Keep real URLs (false: URLs get arbitrary text too, half of them after `https://`).
    keep_urls: bool,
}

fn poison() -> impl Strategy<Value = Poison> {
    (
        proptest::collection::vec(
            nasty().prop_map(|s| if s.is_empty() { "x".to_owned() } else { s }),
            1..8,
        ),
        any::<u64>(),
        prop_oneof![Just(0usize), 1usize..12],
        prop_oneof![Just(1usize), 100usize..3000],
        any::<bool>(),
    )
        .prop_map(|(pool, seed, huge_every, huge_repeat, keep_urls)| Poison {
            pool,
            seed,
            huge_every,
            huge_repeat,
            keep_urls,
        })
}

/// Fields that select the variant (kept so every variant is exercised) and the logins (a few
/// known ones, so that mentions happen).
const KEEP: &[&str] = &[
    "action",
    "action_desc",
    "noteable_type",
    "state",
    "hook_name",
];
const LOGINS: &[&str] = &["login", "username", "user_name"];

/// At most this many characters of huge text per payload (a payload is at most 5 MiB anyway;
/// this keeps the test fast).
const HUGE_BUDGET: usize = 400_000;

fn apply(v: &mut Value, key: &str, p: &Poison, counter: &mut u64, budget: &mut usize) {
    match v {
        Value::String(s) => {
            *counter += 1;
            let n = counter.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ p.seed;
            if KEEP.contains(&key) {
                return;
            }
            if LOGINS.contains(&key) {
                let known = ["alice", "carol", "bob-wang", "Alice"];
                *s = match n % 5 {
                    4 => p.pool[(n as usize / 5) % p.pool.len()].clone(),
                    i => known[i as usize].to_owned(),
                };
                return;
            }
            let is_url = key == "url" || key.ends_with("_url");
            if is_url && p.keep_urls {
                return;
            }
            let text = &p.pool[(n as usize) % p.pool.len()];
            let huge = text.chars().count() * p.huge_repeat;
            let text = if p.huge_every > 0
                && (*counter as usize).is_multiple_of(p.huge_every)
                && huge <= *budget
            {
                *budget -= huge;
                text.repeat(p.huge_repeat)
            } else {
                text.clone()
            };
            // Half of the arbitrary URLs are http(s) URLs, so they become (long) links.
            *s = if is_url && n.is_multiple_of(2) {
                format!("https://gitee.com/{text}")
            } else {
                text
            };
        }
        Value::Array(a) => a.iter_mut().for_each(|x| apply(x, key, p, counter, budget)),
        Value::Object(o) => o
            .iter_mut()
            .for_each(|(k, x)| apply(x, k, p, counter, budget)),
        _ => {}
    }
}

fn audience() -> Audience {
    let mut a = Audience::default();
    a.people.insert(
        "alice".into(),
        Person {
            dingtalk: Some("13800000001".into()),
            wecom: Some("alice".into()),
            feishu: Some("ou_alice".into()),
            slack: Some("U01ALICE".into()),
        },
    );
    a.people.insert(
        "carol".into(),
        Person {
            dingtalk: Some("carol.li".into()),
            wecom: Some("13800000002".into()),
            feishu: Some("ou_carol".into()),
            slack: Some("U02CAROL".into()),
        },
    );
    a
}

/// Mentions the relay may write, per platform.
fn allowed_mentions(p: PlatformKind) -> &'static [&'static str] {
    match p {
        PlatformKind::Dingtalk => &["@13800000001", "@carol.li"],
        PlatformKind::Wecom => &["<@alice>"],
        PlatformKind::Feishu => &["<at id=ou_alice></at>", "<at id=ou_carol></at>"],
        PlatformKind::Slack => &["<@U01ALICE>", "<@U02CAROL>"],
    }
}

/// The strings a platform reads as markup (not `plain_text` objects, not URLs, not the
/// DingTalk `at` lists or type names).
fn markup_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| markup_strings(x, out)),
        Value::Object(o) => {
            let plain = o.get("type").or_else(|| o.get("tag")) == Some(&Value::from("plain_text"));
            if plain {
                return;
            }
            for (k, x) in o {
                if !matches!(
                    k.as_str(),
                    "url" | "at" | "msgtype" | "msg_type" | "type" | "tag" | "template"
                ) {
                    markup_strings(x, out);
                }
            }
        }
        _ => {}
    }
}

/// `s` without the targets of the relay's markdown links (`](https://…)`), which hold URLs.
fn without_link_targets(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("](http") {
        out.push_str(&rest[..i + 1]);
        let after = &rest[i + 1..];
        match after.find(')') {
            Some(j) => rest = &after[j + 1..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn check_markup(p: PlatformKind, body: &Value) -> Result<(), String> {
    let mut texts = Vec::new();
    markup_strings(body, &mut texts);
    let allowed = allowed_mentions(p);
    for t in &texts {
        match p {
            PlatformKind::Slack => {
                for (i, _) in t.match_indices('<') {
                    let rest = &t[i..];
                    let ok = rest.starts_with("<https://")
                        || rest.starts_with("<http://")
                        || allowed.iter().any(|m| rest.starts_with(m));
                    if !ok {
                        return Err(format!("stray < in slack text {t:?}"));
                    }
                }
            }
            PlatformKind::Feishu => {
                for (i, _) in t.match_indices('<') {
                    let rest = &t[i..];
                    let ok = allowed.iter().any(|m| rest.starts_with(m))
                        || rest.starts_with("</at>")
                        || rest.starts_with("<font color='")
                        || rest.starts_with("</font>");
                    if !ok {
                        return Err(format!("stray < in feishu text {t:?}"));
                    }
                }
                if t.contains("<at id=all") {
                    return Err(format!("@all in {t:?}"));
                }
            }
            PlatformKind::Wecom => {
                for (i, _) in t.match_indices('<') {
                    let rest = &t[i..];
                    let ok = allowed.iter().any(|m| rest.starts_with(m))
                        || rest.starts_with("<font color=\"")
                        || rest.starts_with("</font>")
                        || rest.starts_with("<\u{200B}");
                    if !ok {
                        return Err(format!("stray < in wecom text {t:?}"));
                    }
                }
            }
            PlatformKind::Dingtalk => {
                let t = without_link_targets(t);
                for (i, _) in t.match_indices('@') {
                    let rest = &t[i..];
                    let ok = rest.starts_with("@\u{200B}")
                        || allowed.iter().any(|m| rest.starts_with(m));
                    if !ok {
                        return Err(format!("stray @ in dingtalk text {t:?}"));
                    }
                }
                for (i, _) in t.match_indices('<') {
                    if !t[i..].starts_with("<\u{200B}") {
                        return Err(format!("stray < in dingtalk text {t:?}"));
                    }
                }
            }
        }
        if p != PlatformKind::Slack {
            // Every link is the relay's: `](` from users is broken by a zero-width space.
            let t = t.replace("](http", "");
            if t.contains("](") {
                return Err(format!("a link from user text in {t:?}"));
            }
        }
    }
    if p == PlatformKind::Dingtalk {
        let at = &body["at"];
        if at["isAtAll"] != Value::Bool(false) {
            return Err(format!("isAtAll is {}", at["isAtAll"]));
        }
        for list in ["atMobiles", "atUserIds"] {
            for id in at[list].as_array().into_iter().flatten() {
                let id = id.as_str().unwrap_or("");
                if !["13800000001", "carol.li"].contains(&id) {
                    return Err(format!("{list} has {id:?}"));
                }
            }
        }
    }
    Ok(())
}

proptest! {
    // 64 cases keep `cargo test` fast; PROPTEST_CASES=2000 for a deeper run.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_text_in_every_field_renders_valid_bounded_inert_bodies(
        sample in 0..samples::all().len(),
        p in poison(),
    ) {
        let s = &samples::all()[sample];
        let mut payload: Value = serde_json::from_str(s.body).unwrap();
        let (mut counter, mut budget) = (0, HUGE_BUDGET);
        apply(&mut payload, "", &p, &mut counter, &mut budget);
        let body_bytes = serde_json::to_vec(&payload).unwrap();
        let audience = audience();
        let target = Target { audience: &audience, channel: "c" };
        for platform in PlatformKind::ALL {
            let set = TemplateSet::builtin(platform);
            let body = message::render(&set, s.kind, &body_bytes, "gitee", s.is_test, 0, &target)
                .map_err(|e| TestCaseError::fail(format!("{} {platform}: {e}", s.name)))?;
            // Valid JSON that survives a round trip.
            let text = serde_json::to_string(&body).unwrap();
            let back: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(&back, &body);
            prop_assert!(limits::check(platform, &body).is_ok(), "{} {}: {:?}", s.name, platform, limits::check(platform, &body));
            prop_assert!(limits::check_fitted(platform, &body).is_ok());
            if let Err(e) = check_markup(platform, &body) {
                return Err(TestCaseError::fail(format!("{} {platform}: {e}", s.name)));
            }
        }
    }
}

#[test]
fn the_checks_catch_injected_markup() {
    let bad = serde_json::json!({"text": "x", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "<!channel>"}}]});
    assert!(check_markup(PlatformKind::Slack, &bad).is_err());
    let ok = serde_json::json!({"text": "x", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "<https://a|b> <@U01ALICE>"}}]});
    assert!(check_markup(PlatformKind::Slack, &ok).is_ok());
    let bad = serde_json::json!({"msgtype": "markdown", "markdown": {"title": "t", "text": "hi @all"}, "at": {"atMobiles": [], "atUserIds": [], "isAtAll": false}});
    assert!(check_markup(PlatformKind::Dingtalk, &bad).is_err());
    let bad =
        serde_json::json!({"msgtype": "markdown", "markdown": {"content": "[x](javascript:y)"}});
    assert!(check_markup(PlatformKind::Wecom, &bad).is_err());
}
