//! The normalised view of an event that templates render. Every field is always present
//! (null when it does not apply) so templates can be checked in strict mode; `raw` carries
//! the original payload for anything not normalised here.

use serde::Serialize;
use serde_json::Value;

use super::kind::EventKind;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EventContext {
    /// `push`, `tag_push`, `issue`, `merge_request` or `note`.
    pub event: EventKind,
    /// What happened: Gitee's `action` for issues, pull requests and notes
    /// (`open`, `update`, `merge`, `close`, `state_change`, `assign`, `delete`, `comment`...);
    /// `push`, `create` or `delete` for pushes; `create` or `delete` for tags.
    pub action: String,
    /// True for deliveries sent by the "Test" button in Gitee's hook settings.
    pub is_test: bool,
    /// The `sources:` entry the delivery arrived on.
    pub source: String,
    /// A one-line plain-text summary ("alice pushed 3 commits to acme/app main").
    pub summary: String,
    /// The main link of the message: compare view, tag, issue, pull request or comment.
    pub url: String,
    pub repo: Repo,
    /// Who triggered the event (`sender`).
    pub actor: User,
    pub enterprise: Option<Enterprise>,
    pub push: Option<Push>,
    pub tag: Option<Tag>,
    pub issue: Option<Issue>,
    pub pull_request: Option<PullRequest>,
    pub note: Option<Note>,
    /// Event time as Unix milliseconds (from the delivery timestamp, else receipt time).
    pub timestamp_ms: i64,
    /// Gitee logins written as `@login` in the text of the event: the comment of a new note,
    /// the description of an issue or pull request being opened. In order of appearance,
    /// without duplicates (compared case-insensitively), at most 50. Pings only go to the
    /// logins that `people:` maps (see the `mentions` the renderer adds).
    pub mentioned_logins: Vec<String>,
    /// The payload exactly as Gitee sent it (minus `password` and `sign`).
    pub raw: Value,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Repo {
    /// `namespace/name`, e.g. `acme/app`.
    pub full_name: String,
    pub name: String,
    pub namespace: String,
    /// Display name with namespace, may be Chinese (`简知前端/cicd`).
    pub display_name: String,
    pub url: String,
    pub private: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct User {
    /// Gitee login (username); empty when Gitee did not send one.
    pub login: String,
    /// Display name, falls back to the login.
    pub name: String,
    pub url: String,
    pub email: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Enterprise {
    pub name: String,
    pub url: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Push {
    /// Full ref, `refs/heads/main`.
    pub r#ref: String,
    /// Branch name without `refs/heads/`.
    pub branch: String,
    pub before: String,
    pub after: String,
    pub short_before: String,
    pub short_after: String,
    pub created: bool,
    pub deleted: bool,
    pub compare_url: String,
    /// The commits Gitee listed (possibly fewer than `total_commits`).
    pub commits: Vec<Commit>,
    pub total_commits: u64,
    /// `total_commits - commits.len()`, never negative.
    pub more_commits: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Commit {
    pub sha: String,
    pub short_sha: String,
    /// First line of the message.
    pub title: String,
    /// Full message, trailing newlines trimmed.
    pub message: String,
    pub url: String,
    pub author: User,
    /// ISO-8601 as Gitee sent it.
    pub time: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Tag {
    pub name: String,
    pub r#ref: String,
    pub sha: String,
    pub short_sha: String,
    pub created: bool,
    pub deleted: bool,
    pub url: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Issue {
    /// Gitee's issue number, e.g. `I4CYEO`.
    pub number: String,
    pub title: String,
    pub body: String,
    /// `open`, `progressing`, `closed`, `rejected` or a custom enterprise state.
    pub state: String,
    /// Localised state label (`待办的`), falls back to `state`.
    pub state_name: String,
    pub type_name: String,
    pub url: String,
    pub labels: Vec<String>,
    pub author: User,
    pub assignee: Option<User>,
    pub milestone: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct PullRequest {
    pub number: i64,
    pub title: String,
    pub body: String,
    /// `open`, `closed` or `merged`.
    pub state: String,
    pub merged: bool,
    pub url: String,
    pub source_branch: String,
    pub target_branch: String,
    /// `namespace/name` of the head and base repositories.
    pub source_repo: String,
    pub target_repo: String,
    pub author: User,
    /// Gitee's `assignees`: on Gitee the assignees of a pull request are its reviewers.
    pub assignees: Vec<User>,
    /// The reviewers: a payload's `reviewers` list when it has one, else `assignees`.
    pub reviewers: Vec<User>,
    pub testers: Vec<User>,
    pub labels: Vec<String>,
    /// Gitee's `action_desc` hint (`source_branch_changed`, `update_label`...), empty if absent.
    pub action_desc: String,
    pub commits: u64,
    pub additions: u64,
    pub deletions: u64,
    pub changed_files: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Note {
    pub body: String,
    /// Link to the comment itself.
    pub url: String,
    /// Gitee's `noteable_type`: `Issue`, `PullRequest`, `Commit`, ...
    pub noteable_type: String,
    /// What was commented on: `issue`, `pull_request`, `commit` or `repository`.
    pub on: String,
    pub target: NoteTarget,
    pub author: User,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct NoteTarget {
    /// Issue number (`I4CF12`), pull request number (`7`) or short commit sha.
    pub reference: String,
    pub title: String,
    pub url: String,
}
