//! Typed Gitee hook bodies. Every field is optional on the wire: missing and `null` values
//! become the type's default (`""`, `0`, `false`, empty list, `None`), unknown fields are
//! ignored. Secrets (`password`, `sign`) are deliberately not modelled.

use serde::Deserialize;

use super::de;

/// Declares a hook body struct: adds the derives and the fields every hook carries
/// (`hook_*`, `timestamp`, `sender`, `repository`, `project`, `enterprise`) and implements
/// [`Envelope`]. (Not `#[serde(flatten)]`: that would hide error paths.)
macro_rules! hook {
    ($(#[$meta:meta])* pub struct $name:ident { $($fields:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Deserialize)]
        #[serde(default)]
        pub struct $name {
            $($fields)*
            #[serde(deserialize_with = "de::str")]
            pub hook_name: String,
            #[serde(deserialize_with = "de::int")]
            pub hook_id: i64,
            #[serde(deserialize_with = "de::str")]
            pub hook_url: String,
            /// Milliseconds; Gitee sends a string, docs say a number, test deliveries sent null.
            #[serde(deserialize_with = "de::timestamp")]
            pub timestamp: Option<i64>,
            #[serde(deserialize_with = "de::obj")]
            pub sender: Option<User>,
            #[serde(deserialize_with = "de::obj")]
            pub repository: Option<Project>,
            #[serde(deserialize_with = "de::obj")]
            pub project: Option<Project>,
            #[serde(deserialize_with = "de::obj")]
            pub enterprise: Option<Enterprise>,
        }

        impl Envelope for $name {
            fn repo(&self) -> Option<&Project> {
                self.repository.as_ref().or(self.project.as_ref())
            }
            fn sender(&self) -> Option<&User> {
                self.sender.as_ref()
            }
            fn enterprise(&self) -> Option<&Enterprise> {
                self.enterprise.as_ref()
            }
            fn timestamp(&self) -> Option<i64> {
                self.timestamp
            }
            fn hook_url(&self) -> &str {
                &self.hook_url
            }
        }
    };
}

/// Accessors for the fields every hook body carries.
pub trait Envelope {
    /// `repository`, else `project`.
    fn repo(&self) -> Option<&Project>;
    fn sender(&self) -> Option<&User>;
    fn enterprise(&self) -> Option<&Enterprise>;
    /// Body `timestamp` in milliseconds, when usable.
    fn timestamp(&self) -> Option<i64>;
    /// The hook's settings page, `https://gitee.com/<ns>/<repo>/hooks/<id>/edit`.
    fn hook_url(&self) -> &str;
}

/// A Gitee user as it appears in `sender`, `author`, `user`, `pusher`, `assignee`, commit
/// authors... The set of keys varies with the context.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct User {
    #[serde(deserialize_with = "de::int")]
    pub id: i64,
    #[serde(deserialize_with = "de::str")]
    pub login: String,
    /// Display name.
    #[serde(deserialize_with = "de::str")]
    pub name: String,
    #[serde(deserialize_with = "de::str")]
    pub username: String,
    #[serde(deserialize_with = "de::str")]
    pub user_name: String,
    #[serde(deserialize_with = "de::str")]
    pub email: String,
    #[serde(deserialize_with = "de::str")]
    pub url: String,
    #[serde(deserialize_with = "de::str")]
    pub html_url: String,
    #[serde(deserialize_with = "de::str")]
    pub avatar_url: String,
    /// Enterprise remark name.
    #[serde(deserialize_with = "de::str")]
    pub remark: String,
    #[serde(rename = "type", deserialize_with = "de::str")]
    pub kind: String,
    /// Commit authors only: the commit time.
    #[serde(deserialize_with = "de::str")]
    pub time: String,
}

impl User {
    /// The login: `login`, else `username`, else `user_name`.
    pub fn login(&self) -> &str {
        [&self.login, &self.username, &self.user_name]
            .into_iter()
            .find(|s| !s.trim().is_empty())
            .map_or("", |s| s.as_str())
    }

    /// True when the object carries no identifying information at all.
    pub fn is_blank(&self) -> bool {
        self.login().trim().is_empty() && self.name.trim().is_empty() && self.email.is_empty()
    }
}

/// `repository` / `project` (identical copies) and the `repo` of PR branches.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Project {
    #[serde(deserialize_with = "de::int")]
    pub id: i64,
    #[serde(deserialize_with = "de::str")]
    pub name: String,
    #[serde(deserialize_with = "de::str")]
    pub path: String,
    /// `namespace/path`.
    #[serde(deserialize_with = "de::str")]
    pub full_name: String,
    #[serde(deserialize_with = "de::str")]
    pub namespace: String,
    #[serde(deserialize_with = "de::str")]
    pub path_with_namespace: String,
    /// Display names, may be Chinese.
    #[serde(deserialize_with = "de::str")]
    pub name_with_namespace: String,
    #[serde(deserialize_with = "de::obj")]
    pub owner: Option<User>,
    #[serde(deserialize_with = "de::flag")]
    pub private: bool,
    #[serde(deserialize_with = "de::flag")]
    pub fork: bool,
    #[serde(deserialize_with = "de::str")]
    pub html_url: String,
    #[serde(deserialize_with = "de::str")]
    pub url: String,
    #[serde(deserialize_with = "de::str")]
    pub description: String,
    #[serde(deserialize_with = "de::str")]
    pub default_branch: String,
    #[serde(deserialize_with = "de::str")]
    pub clone_url: String,
    #[serde(deserialize_with = "de::str")]
    pub ssh_url: String,
}

impl Project {
    /// `namespace/path`: `path_with_namespace`, else `full_name`, else built from `namespace`
    /// and `path`. (Real deliveries have `full_name == path_with_namespace`; the old help-centre
    /// sample has the display name `OSCHINA/Gitee` in `full_name` and the path in
    /// `path_with_namespace`.)
    pub fn full_name(&self) -> String {
        for candidate in [&self.path_with_namespace, &self.full_name] {
            if !candidate.trim().is_empty() {
                return candidate.trim().to_owned();
            }
        }
        let path = if self.path.is_empty() {
            &self.name
        } else {
            &self.path
        };
        match (self.namespace.is_empty(), path.is_empty()) {
            (false, false) => format!("{}/{}", self.namespace, path),
            (true, false) => path.clone(),
            _ => String::new(),
        }
    }

    /// Web URL of the repository: `html_url`, else `url`, else built from the full name.
    pub fn web_url(&self) -> String {
        let url = if !self.html_url.is_empty() {
            &self.html_url
        } else {
            &self.url
        };
        if !url.is_empty() {
            return url.trim_end_matches('/').to_owned();
        }
        let full = self.full_name();
        if full.is_empty() {
            String::new()
        } else {
            format!("https://gitee.com/{full}")
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Enterprise {
    #[serde(deserialize_with = "de::str")]
    pub name: String,
    #[serde(deserialize_with = "de::str")]
    pub url: String,
}

/// A commit of a push (`commits[]`, `head_commit`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Commit {
    #[serde(deserialize_with = "de::str")]
    pub id: String,
    #[serde(deserialize_with = "de::str")]
    pub tree_id: String,
    #[serde(deserialize_with = "de::strs")]
    pub parent_ids: Vec<String>,
    #[serde(deserialize_with = "de::flag")]
    pub distinct: bool,
    /// Full message, may end with `\n`.
    #[serde(deserialize_with = "de::str")]
    pub message: String,
    /// ISO-8601.
    #[serde(deserialize_with = "de::str")]
    pub timestamp: String,
    #[serde(deserialize_with = "de::str")]
    pub url: String,
    #[serde(deserialize_with = "de::obj")]
    pub author: Option<User>,
    #[serde(deserialize_with = "de::obj")]
    pub committer: Option<User>,
    #[serde(deserialize_with = "de::strs")]
    pub added: Vec<String>,
    #[serde(deserialize_with = "de::strs")]
    pub removed: Vec<String>,
    #[serde(deserialize_with = "de::strs")]
    pub modified: Vec<String>,
}

hook! {
    /// Push Hook and Tag Push Hook body.
    pub struct PushHook {
        /// Full ref: `refs/heads/main`, `refs/tags/v1.0`.
        #[serde(rename = "ref", deserialize_with = "de::str")]
        pub git_ref: String,
        #[serde(deserialize_with = "de::str")]
        pub before: String,
        #[serde(deserialize_with = "de::str")]
        pub after: String,
        #[serde(deserialize_with = "de::opt_flag")]
        pub created: Option<bool>,
        #[serde(deserialize_with = "de::opt_flag")]
        pub deleted: Option<bool>,
        #[serde(deserialize_with = "de::str")]
        pub compare: String,
        /// `null` on branch/tag creation and for big pushes: see `total_commits_count`.
        #[serde(deserialize_with = "de::list")]
        pub commits: Vec<Commit>,
        #[serde(deserialize_with = "de::obj")]
        pub head_commit: Option<Commit>,
        #[serde(deserialize_with = "de::opt_int")]
        pub total_commits_count: Option<u64>,
        #[serde(deserialize_with = "de::flag")]
        pub commits_more_than_ten: bool,
        #[serde(deserialize_with = "de::int")]
        pub user_id: i64,
        /// The pusher's display name.
        #[serde(deserialize_with = "de::str")]
        pub user_name: String,
        #[serde(deserialize_with = "de::str")]
        pub user_email: String,
        #[serde(deserialize_with = "de::obj")]
        pub user: Option<User>,
        #[serde(deserialize_with = "de::obj")]
        pub pusher: Option<User>,
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Label {
    #[serde(deserialize_with = "de::int")]
    pub id: i64,
    #[serde(deserialize_with = "de::str")]
    pub name: String,
    #[serde(deserialize_with = "de::str")]
    pub color: String,
}

/// An object inside `issue`/`pull_request`, a bare title string at the top of an Issue Hook.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Milestone {
    #[serde(deserialize_with = "de::int")]
    pub id: i64,
    #[serde(deserialize_with = "de::str")]
    pub title: String,
    #[serde(deserialize_with = "de::str")]
    pub state: String,
    #[serde(deserialize_with = "de::str")]
    pub due_on: String,
}

impl From<String> for Milestone {
    fn from(title: String) -> Self {
        Milestone {
            title,
            ..Milestone::default()
        }
    }
}

/// The `issue` object (Issue Hook, Note Hook on an issue).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Issue {
    #[serde(deserialize_with = "de::int")]
    pub id: i64,
    /// `I4CYEO`.
    #[serde(deserialize_with = "de::str")]
    pub number: String,
    #[serde(deserialize_with = "de::str")]
    pub html_url: String,
    #[serde(deserialize_with = "de::str")]
    pub title: String,
    #[serde(deserialize_with = "de::str")]
    pub body: String,
    #[serde(deserialize_with = "de::str")]
    pub state: String,
    #[serde(deserialize_with = "de::str")]
    pub state_name: String,
    #[serde(deserialize_with = "de::str")]
    pub type_name: String,
    #[serde(deserialize_with = "de::list")]
    pub labels: Vec<Label>,
    #[serde(deserialize_with = "de::obj")]
    pub assignee: Option<User>,
    #[serde(deserialize_with = "de::list")]
    pub collaborators: Vec<User>,
    #[serde(deserialize_with = "de::obj_or_str")]
    pub milestone: Option<Milestone>,
    #[serde(deserialize_with = "de::int")]
    pub comments: u64,
    #[serde(deserialize_with = "de::obj")]
    pub user: Option<User>,
    #[serde(deserialize_with = "de::str")]
    pub created_at: String,
    #[serde(deserialize_with = "de::str")]
    pub updated_at: String,
}

hook! {
    /// Issue Hook body.
    pub struct IssueHook {
        #[serde(deserialize_with = "de::str")]
        pub action: String,
        #[serde(deserialize_with = "de::obj")]
        pub issue: Option<Issue>,
        /// Flattened copies of the issue.
        #[serde(deserialize_with = "de::str")]
        pub iid: String,
        #[serde(deserialize_with = "de::str")]
        pub title: String,
        #[serde(deserialize_with = "de::str")]
        pub description: String,
        #[serde(deserialize_with = "de::str")]
        pub state: String,
        #[serde(deserialize_with = "de::obj_or_str")]
        pub milestone: Option<Milestone>,
        #[serde(deserialize_with = "de::str")]
        pub url: String,
        /// Creator.
        #[serde(deserialize_with = "de::obj")]
        pub user: Option<User>,
        #[serde(deserialize_with = "de::obj")]
        pub assignee: Option<User>,
        #[serde(deserialize_with = "de::obj")]
        pub updated_by: Option<User>,
        #[serde(deserialize_with = "de::obj")]
        pub target_user: Option<User>,
    }
}

/// `head` / `base` of a pull request.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Branch {
    #[serde(deserialize_with = "de::str")]
    pub label: String,
    #[serde(rename = "ref", deserialize_with = "de::str")]
    pub git_ref: String,
    #[serde(deserialize_with = "de::str")]
    pub sha: String,
    #[serde(deserialize_with = "de::obj")]
    pub user: Option<User>,
    #[serde(deserialize_with = "de::obj")]
    pub repo: Option<Project>,
}

/// The `pull_request` object (Merge Request Hook, Note Hook on a pull request).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PullRequest {
    #[serde(deserialize_with = "de::int")]
    pub id: i64,
    #[serde(deserialize_with = "de::int")]
    pub number: i64,
    /// `open`, `closed` or `merged`.
    #[serde(deserialize_with = "de::str")]
    pub state: String,
    #[serde(deserialize_with = "de::str")]
    pub title: String,
    #[serde(deserialize_with = "de::str")]
    pub body: String,
    #[serde(deserialize_with = "de::str")]
    pub html_url: String,
    #[serde(deserialize_with = "de::str")]
    pub diff_url: String,
    #[serde(deserialize_with = "de::str")]
    pub patch_url: String,
    #[serde(deserialize_with = "de::obj")]
    pub head: Option<Branch>,
    #[serde(deserialize_with = "de::obj")]
    pub base: Option<Branch>,
    #[serde(deserialize_with = "de::flag")]
    pub merged: bool,
    #[serde(deserialize_with = "de::flag")]
    pub mergeable: bool,
    #[serde(deserialize_with = "de::str")]
    pub merge_status: String,
    #[serde(deserialize_with = "de::str")]
    pub merge_commit_sha: String,
    #[serde(deserialize_with = "de::obj")]
    pub user: Option<User>,
    #[serde(deserialize_with = "de::obj")]
    pub assignee: Option<User>,
    #[serde(deserialize_with = "de::list")]
    pub assignees: Vec<User>,
    #[serde(deserialize_with = "de::obj")]
    pub tester: Option<User>,
    #[serde(deserialize_with = "de::list")]
    pub testers: Vec<User>,
    /// Not in the captures (Gitee's reviewers are `assignees`); read when present.
    #[serde(deserialize_with = "de::list")]
    pub reviewers: Vec<User>,
    #[serde(deserialize_with = "de::flag")]
    pub need_review: bool,
    #[serde(deserialize_with = "de::flag")]
    pub need_test: bool,
    #[serde(deserialize_with = "de::list")]
    pub labels: Vec<Label>,
    #[serde(deserialize_with = "de::obj_or_str")]
    pub milestone: Option<Milestone>,
    #[serde(deserialize_with = "de::int")]
    pub comments: u64,
    #[serde(deserialize_with = "de::int")]
    pub commits: u64,
    #[serde(deserialize_with = "de::int")]
    pub additions: u64,
    #[serde(deserialize_with = "de::int")]
    pub deletions: u64,
    #[serde(deserialize_with = "de::int")]
    pub changed_files: u64,
    #[serde(deserialize_with = "de::str")]
    pub created_at: String,
    #[serde(deserialize_with = "de::str")]
    pub updated_at: String,
    #[serde(deserialize_with = "de::str")]
    pub closed_at: String,
    #[serde(deserialize_with = "de::str")]
    pub merged_at: String,
    #[serde(deserialize_with = "de::obj")]
    pub updated_by: Option<User>,
    #[serde(deserialize_with = "de::strs")]
    pub languages: Vec<String>,
}

/// `source_repo` / `target_repo` of a Merge Request Hook.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RepoPair {
    #[serde(deserialize_with = "de::obj")]
    pub project: Option<Project>,
    #[serde(deserialize_with = "de::obj")]
    pub repository: Option<Project>,
}

impl RepoPair {
    pub fn repo(&self) -> Option<&Project> {
        self.repository.as_ref().or(self.project.as_ref())
    }
}

hook! {
    /// Merge Request Hook body.
    pub struct MergeRequestHook {
        #[serde(deserialize_with = "de::str")]
        pub action: String,
        /// A hint, not an enum: `source_branch_changed`, `update_label`, `open`, `merge`...
        #[serde(deserialize_with = "de::str")]
        pub action_desc: String,
        #[serde(deserialize_with = "de::obj")]
        pub pull_request: Option<PullRequest>,
        /// Flattened copies of the pull request.
        #[serde(deserialize_with = "de::int")]
        pub number: i64,
        #[serde(deserialize_with = "de::int")]
        pub iid: i64,
        #[serde(deserialize_with = "de::str")]
        pub title: String,
        #[serde(deserialize_with = "de::str")]
        pub body: String,
        #[serde(deserialize_with = "de::str")]
        pub state: String,
        #[serde(deserialize_with = "de::str")]
        pub merge_status: String,
        #[serde(deserialize_with = "de::str")]
        pub merge_commit_sha: String,
        #[serde(deserialize_with = "de::str")]
        pub url: String,
        #[serde(deserialize_with = "de::str")]
        pub source_branch: String,
        #[serde(deserialize_with = "de::str")]
        pub target_branch: String,
        #[serde(deserialize_with = "de::obj")]
        pub source_repo: Option<RepoPair>,
        #[serde(deserialize_with = "de::obj")]
        pub target_repo: Option<RepoPair>,
        #[serde(deserialize_with = "de::obj")]
        pub author: Option<User>,
        #[serde(deserialize_with = "de::obj")]
        pub updated_by: Option<User>,
        #[serde(deserialize_with = "de::obj")]
        pub target_user: Option<User>,
        #[serde(deserialize_with = "de::strs")]
        pub languages: Vec<String>,
    }
}

/// The `comment` object of a Note Hook.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Comment {
    #[serde(deserialize_with = "de::int")]
    pub id: i64,
    #[serde(deserialize_with = "de::str")]
    pub body: String,
    #[serde(deserialize_with = "de::str")]
    pub html_url: String,
    #[serde(deserialize_with = "de::obj")]
    pub user: Option<User>,
    /// Commit comments only.
    #[serde(deserialize_with = "de::str")]
    pub commit_id: String,
    #[serde(deserialize_with = "de::str")]
    pub created_at: String,
    #[serde(deserialize_with = "de::str")]
    pub updated_at: String,
}

hook! {
    /// Note Hook body.
    pub struct NoteHook {
        #[serde(deserialize_with = "de::str")]
        pub action: String,
        #[serde(deserialize_with = "de::obj")]
        pub comment: Option<Comment>,
        /// `Issue`, `PullRequest`, `Commit`, or a repository-level type.
        #[serde(deserialize_with = "de::str")]
        pub noteable_type: String,
        #[serde(deserialize_with = "de::int")]
        pub noteable_id: i64,
        /// The comment body again.
        #[serde(deserialize_with = "de::str")]
        pub note: String,
        /// Link to the comment (`…#note_N`).
        #[serde(deserialize_with = "de::str")]
        pub url: String,
        /// Title of what was commented on.
        #[serde(deserialize_with = "de::str")]
        pub title: String,
        /// `#I4CF12` for issues, `!7` for pull requests.
        #[serde(deserialize_with = "de::str")]
        pub per_iid: String,
        #[serde(deserialize_with = "de::str")]
        pub short_commit_id: String,
        #[serde(deserialize_with = "de::obj")]
        pub issue: Option<Issue>,
        #[serde(deserialize_with = "de::obj")]
        pub pull_request: Option<PullRequest>,
        #[serde(deserialize_with = "de::obj")]
        pub author: Option<User>,
    }
}
