//! The built-in templates, embedded from `templates/<platform>/<name>.hbs`.
//!
//! To add a template (e.g. `digest`), add its name to [`NAMES`] and create the file for every
//! platform; the `include_str!` table below then fails to compile until all four exist.

use crate::platform::PlatformKind;

/// The names of the built-in templates, the same for every platform. The event templates are
/// named after [`crate::gitee::EventKind::as_str`].
pub const NAMES: [&str; 6] = [
    "push",
    "tag_push",
    "issue",
    "merge_request",
    "note",
    "digest",
];

macro_rules! embed {
    ($platform:literal) => {
        [
            (
                "push",
                include_str!(concat!("../../templates/", $platform, "/push.hbs")),
            ),
            (
                "tag_push",
                include_str!(concat!("../../templates/", $platform, "/tag_push.hbs")),
            ),
            (
                "issue",
                include_str!(concat!("../../templates/", $platform, "/issue.hbs")),
            ),
            (
                "merge_request",
                include_str!(concat!("../../templates/", $platform, "/merge_request.hbs")),
            ),
            (
                "note",
                include_str!(concat!("../../templates/", $platform, "/note.hbs")),
            ),
            (
                "digest",
                include_str!(concat!("../../templates/", $platform, "/digest.hbs")),
            ),
        ]
    };
}

static DINGTALK: [(&str, &str); NAMES.len()] = embed!("dingtalk");
static WECOM: [(&str, &str); NAMES.len()] = embed!("wecom");
static FEISHU: [(&str, &str); NAMES.len()] = embed!("feishu");
static SLACK: [(&str, &str); NAMES.len()] = embed!("slack");

/// `(name, template text)` of every built-in template of `platform`.
pub fn templates(platform: PlatformKind) -> &'static [(&'static str, &'static str)] {
    match platform {
        PlatformKind::Dingtalk => &DINGTALK,
        PlatformKind::Wecom => &WECOM,
        PlatformKind::Feishu => &FEISHU,
        PlatformKind::Slack => &SLACK,
    }
}

/// The text of one built-in template (for `gitee-relay` commands that print or export them).
pub fn get(platform: PlatformKind, name: &str) -> Option<&'static str> {
    templates(platform)
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitee::EventKind;

    #[test]
    fn every_event_has_a_template_on_every_platform() {
        for p in PlatformKind::ALL {
            let names: Vec<&str> = templates(p).iter().map(|(n, _)| *n).collect();
            assert_eq!(names, NAMES);
            for e in EventKind::ALL {
                assert!(get(p, e.as_str()).is_some_and(|t| !t.is_empty()), "{p}/{e}");
            }
        }
    }
}
