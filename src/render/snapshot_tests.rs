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
