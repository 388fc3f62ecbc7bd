use serde::{Deserialize, Serialize};
use std::fmt;

/// The five kinds of Gitee webhook event the relay understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Push,
    TagPush,
    Issue,
    MergeRequest,
    Note,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::Push,
        EventKind::TagPush,
        EventKind::Issue,
        EventKind::MergeRequest,
        EventKind::Note,
    ];

    /// The name used in config `events:` lists, template file names and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Push => "push",
            EventKind::TagPush => "tag_push",
            EventKind::Issue => "issue",
            EventKind::MergeRequest => "merge_request",
            EventKind::Note => "note",
        }
    }

    /// Accepts the `X-Gitee-Event` header value (`Push Hook`), the body's `hook_name`
    /// (`push_hooks`) and the short names used in config (`push`, `pull_request`...).
    pub fn parse(name: &str) -> Option<Self> {
        let norm: String = name
            .trim()
            .chars()
            .map(|c| {
                if c == ' ' || c == '-' {
                    '_'
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect();
        let norm = norm
            .strip_suffix("_hooks")
            .or_else(|| norm.strip_suffix("_hook"))
            .unwrap_or(&norm);
        match norm {
            "push" => Some(EventKind::Push),
            "tag_push" | "tag" => Some(EventKind::TagPush),
            "issue" | "issues" => Some(EventKind::Issue),
            "merge_request" | "pull_request" | "pr" | "mr" => Some(EventKind::MergeRequest),
            "note" | "comment" => Some(EventKind::Note),
            _ => None,
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_hook_name_and_config_spellings() {
        assert_eq!(EventKind::parse("Push Hook"), Some(EventKind::Push));
        assert_eq!(EventKind::parse("push_hooks"), Some(EventKind::Push));
        assert_eq!(EventKind::parse("Tag Push Hook"), Some(EventKind::TagPush));
        assert_eq!(EventKind::parse("tag_push_hooks"), Some(EventKind::TagPush));
        assert_eq!(EventKind::parse("Issue Hook"), Some(EventKind::Issue));
        assert_eq!(EventKind::parse("issue_hooks"), Some(EventKind::Issue));
        assert_eq!(
            EventKind::parse("Merge Request Hook"),
            Some(EventKind::MergeRequest)
        );
        assert_eq!(
            EventKind::parse("merge_request_hooks"),
            Some(EventKind::MergeRequest)
        );
        assert_eq!(EventKind::parse("Note Hook"), Some(EventKind::Note));
        assert_eq!(EventKind::parse("note_hooks"), Some(EventKind::Note));
        assert_eq!(
            EventKind::parse("pull_request"),
            Some(EventKind::MergeRequest)
        );
        assert_eq!(EventKind::parse("Pipeline Hook"), None);
        assert_eq!(EventKind::parse(""), None);
    }
}
