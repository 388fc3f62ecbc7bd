//! Snapshot tests: the exact body of every built-in sample delivery (`samples/*.json`, through
//! the whole parse → context → render path) and of the event variants no sample file covers
//! ([`super::sample`]), on every platform, with `people:` mapping some of the users so the
//! mentions show. Snapshots live in `src/render/snapshots/`; after a deliberate template
//! change, review them with `cargo insta review` (or `INSTA_UPDATE=always cargo test` and
//! `git diff`).

use serde_json::Value;

use super::{RenderOptions, TemplateSet, sample};
use crate::config::Person;
use crate::message::{self, Audience, Target};
use crate::platform::PlatformKind;
use crate::samples;

/// alice and carol are mapped everywhere (alice by mobile number on DingTalk); bob-wang is not.
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
            wecom: Some("carol".into()),
            feishu: Some("ou_carol".into()),
            slack: Some("U02CAROL".into()),
        },
    );
    a
}

/// The sample contexts of variants that no file in `samples/` shows.
const EXTRA_VARIANTS: [&str; 8] = [
    "push/create-empty",
    "merge_request/update-target",
    "merge_request/other",
    "issue/state_change-progressing",
    "issue/state_change-reopen",
    "issue/other",
    "note/edited",
    "note/deleted",
];

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    s
}

#[test]
fn every_sample_on_every_platform() {
    let audience = audience();
    settings().bind(|| {
        for s in samples::all() {
            for p in PlatformKind::ALL {
                let set = TemplateSet::builtin(p);
                let target = Target {
                    audience: &audience,
                    channel: "team",
                };
                let body: Value = message::render(
                    &set,
                    s.kind,
                    s.body.as_bytes(),
                    "gitee",
                    s.is_test,
                    0,
                    &target,
                )
                .unwrap_or_else(|e| panic!("{} {p}: {e}", s.name));
                insta::assert_json_snapshot!(format!("{}@{p}", s.name), body);
            }
        }
    });
}

#[test]
fn other_variants_on_every_platform() {
    let people = sample::people();
    let opts = RenderOptions {
        people: Some(&people),
        mention: true,
    };
    let all = sample::contexts();
    settings().bind(|| {
        for label in EXTRA_VARIANTS {
            let ctx = &all.iter().find(|(l, _)| l == label).unwrap().1;
            for p in PlatformKind::ALL {
                let body = TemplateSet::builtin(p)
                    .render_with(ctx, &opts)
                    .unwrap_or_else(|e| panic!("{label} {p}: {e}"));
                let name = format!("variant_{}@{p}", label.replace(['/', '-'], "_"));
                insta::assert_json_snapshot!(name, body);
            }
        }
    });
}

/// The built-ins are compiled with their inline partials spliced into the calls
/// ([`super::inline`]); they must render exactly like the templates as written, through
/// Handlebars' partials: every sample context, without and with mentions, as written and with
/// every text made long enough that the body has to be fitted, on every platform.
#[test]
fn spliced_templates_render_exactly_like_the_originals() {
    let people = sample::people();
    let option_sets = [
        RenderOptions::default(),
        RenderOptions {
            people: Some(&people),
            mention: true,
        },
    ];
    let contexts = sample::contexts();
    for p in PlatformKind::ALL {
        let spliced = TemplateSet::builtin(p);
        let original = TemplateSet::compile_builtin(p, false);
        for (name, text) in super::builtin::templates(p) {
            if text.contains("#*inline") {
                assert!(
                    super::inline::splice(text).is_some(),
                    "{p}/{name} has inline partials but is not spliced"
                );
            }
        }
        for (label, ctx) in &contexts {
            for opts in &option_sets {
                let data = spliced.context_value(ctx, opts);
                let mut long = data.clone();
                lengthen(&mut long);
                for (variant, data) in [("as written", data), ("long", long)] {
                    let template = ctx.event.as_str();
                    let a = spliced
                        .render_data(template, &data)
                        .map_err(|e| e.to_string());
                    let b = original
                        .render_data(template, &data)
                        .map_err(|e| e.to_string());
                    assert!(b.is_ok(), "{label} ({variant}) on {p}: {b:?}");
                    assert_eq!(
                        a, b,
                        "{label} ({variant}) on {p}, mentions {}",
                        opts.mention
                    );
                }
            }
        }
    }
}

/// Every string of free text or names repeated to ~6,000 characters.
fn lengthen(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, x) in map.iter_mut() {
                match x {
                    Value::String(s)
                        if !s.is_empty()
                            && ["title", "message", "body", "name", "note", "summary"]
                                .contains(&k.as_str()) =>
                    {
                        *s = s.repeat(6_000 / s.len() + 1);
                    }
                    _ => lengthen(x),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(lengthen),
        _ => {}
    }
}
