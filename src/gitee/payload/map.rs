//! Derivation of the routing facts ([`Delivery`]) and of the template view ([`EventContext`])
//! from a typed hook body.

use serde_json::Value;

use super::types as gt;
use super::{Delivery, Payload};
use crate::gitee::context::{self as ctx, EventContext};
use crate::gitee::kind::EventKind;

/// Removes the top-level `password` and `sign` fields (the hook password travels in clear
/// text in password mode) so the payload can be stored, logged and rendered.
pub fn redact(raw: &mut Value) {
    if let Value::Object(map) = raw {
        map.remove("password");
        map.remove("sign");
    }
}

// ---------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------

/// True for `0000000…` of any length (Gitee used 8 zeros in 2020, 40 later).
fn is_zero_sha(s: &str) -> bool {
    let s = s.trim();
    !s.is_empty() && s.bytes().all(|b| b == b'0')
}

fn short_sha(s: &str) -> String {
    s.trim().chars().take(7).collect()
}

/// The first non-blank string.
fn first<'a>(candidates: impl IntoIterator<Item = &'a str>) -> String {
    candidates
        .into_iter()
        .find(|s| !s.trim().is_empty())
        .unwrap_or("")
        .to_owned()
}

fn strip_ref<'a>(git_ref: &'a str, prefix: &str) -> &'a str {
    git_ref.strip_prefix(prefix).unwrap_or(git_ref)
}

/// Makes a value safe for the one-line summary: line breaks and other control characters
/// become spaces, runs of whitespace collapse, long values are cut with `…`.
fn one_line(s: &str, max_chars: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut pending_space = false;
    for c in s.chars() {
        if is_invisible(c) {
            continue;
        }
        if c.is_whitespace() || c.is_control() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        if count >= max_chars {
            out.push('…');
            return out;
        }
        out.push(c);
        count += 1;
    }
    out
}

/// Zero-width and bidirectional-override characters (they can disguise text).
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}'
    )
}

const TITLE_MAX: usize = 80;
const NAME_MAX: usize = 60;

fn quoted(title: &str) -> String {
    let t = one_line(title, TITLE_MAX);
    if t.is_empty() {
        String::new()
    } else {
        format!(" \"{t}\"")
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn user(u: Option<&gt::User>) -> ctx::User {
    let Some(u) = u else {
        return ctx::User::default();
    };
    let login = u.login().trim().to_owned();
    ctx::User {
        name: first([u.name.as_str(), login.as_str()]).trim().to_owned(),
        url: first([u.html_url.as_str(), u.url.as_str()]),
        email: u.email.clone(),
        login,
    }
}

/// The first candidate that identifies somebody.
fn pick_user<'a>(
    candidates: impl IntoIterator<Item = Option<&'a gt::User>>,
) -> Option<&'a gt::User> {
    candidates.into_iter().flatten().find(|u| !u.is_blank())
}

fn by(u: &ctx::User) -> String {
    let name = one_line(&first([u.name.as_str(), u.login.as_str()]), NAME_MAX);
    if name.is_empty() {
        "someone".to_owned()
    } else {
        name
    }
}

fn project_full_name(p: Option<&gt::Project>) -> String {
    p.map(gt::Project::full_name).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Delivery
// ---------------------------------------------------------------------------------------

fn push_action(h: &gt::PushHook, tag: bool) -> &'static str {
    if h.created == Some(true) {
        "create"
    } else if h.deleted == Some(true) || is_zero_sha(&h.after) {
        "delete"
    } else if is_zero_sha(&h.before) || tag {
        // A tag push that is not a deletion (re)points the tag: report it as a creation.
        "create"
    } else {
        "push"
    }
}

/// The repository the delivery is about, with fallbacks for payloads without `repository`.
fn target_project(payload: &Payload) -> Option<&gt::Project> {
    payload.envelope().repo().or_else(|| match payload {
        Payload::MergeRequest(h) => h
            .target_repo
            .as_ref()
            .and_then(gt::RepoPair::repo)
            .or_else(|| h.pull_request.as_ref()?.base.as_ref()?.repo.as_ref()),
        Payload::Note(h) => h.pull_request.as_ref()?.base.as_ref()?.repo.as_ref(),
        _ => None,
    })
}

/// `(namespace/repo, repo URL)` from a repository hook's settings URL
/// (`https://gitee.com/acme/app/hooks/123/edit`): the only clue when Gitee sends
/// `repository: null` (allowed for Issue and Note hooks).
pub(super) fn repo_from_hook_url(hook_url: &str) -> Option<(String, String)> {
    let rest = hook_url.trim().strip_prefix("https://")?;
    let (host, path) = rest.split_once('/')?;
    let (repo_path, tail) = path.split_once("/hooks/")?;
    let (ns, name) = repo_path.split_once('/')?;
    let valid = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    if host.is_empty()
        || !valid(ns)
        || !valid(name)
        || !tail.starts_with(|c: char| c.is_ascii_digit())
    {
        return None;
    }
    Some((repo_path.to_owned(), format!("https://{host}/{repo_path}")))
}

fn pr_target_branch(pr: Option<&gt::PullRequest>, top: &str) -> String {
    first([
        pr.and_then(|p| p.base.as_ref())
            .map_or("", |b| b.git_ref.as_str()),
        top,
    ])
}

pub(super) fn delivery(kind: EventKind, payload: Payload) -> Delivery {
    let (action, branch) = match &payload {
        Payload::Push(h) => (
            push_action(h, false).to_owned(),
            Some(strip_ref(&h.git_ref, "refs/heads/").to_owned()),
        ),
        Payload::TagPush(h) => (
            push_action(h, true).to_owned(),
            Some(strip_ref(&h.git_ref, "refs/tags/").to_owned()),
        ),
        Payload::Issue(h) => (h.action.trim().to_lowercase(), None),
        Payload::MergeRequest(h) => (
            h.action.trim().to_lowercase(),
            Some(pr_target_branch(h.pull_request.as_ref(), &h.target_branch)),
        ),
        Payload::Note(h) => (
            h.action.trim().to_lowercase(),
            match note_on(h) {
                NoteOn::PullRequest => Some(pr_target_branch(h.pull_request.as_ref(), "")),
                _ => None,
            },
        ),
    };
    let mut repo = project_full_name(target_project(&payload));
    if repo.is_empty() {
        repo = repo_from_hook_url(payload.envelope().hook_url()).map_or_else(String::new, |r| r.0);
    }
    Delivery {
        kind,
        action,
        repo,
        branch: branch.filter(|b| !b.is_empty()),
        payload,
    }
}

// ---------------------------------------------------------------------------------------
// EventContext
// ---------------------------------------------------------------------------------------

/// Facts shared by all mappers.
struct Base {
    repo: ctx::Repo,
    actor: ctx::User,
}

impl Base {
    /// `<repo url>/<suffix>`, or `""` when the repository URL is unknown.
    fn link(&self, suffix: &str) -> String {
        if self.repo.url.is_empty() {
            String::new()
        } else {
            format!("{}/{}", self.repo.url, suffix)
        }
    }

    fn repo_name(&self) -> String {
        let name = one_line(&self.repo.full_name, NAME_MAX);
        if name.is_empty() {
            "an unknown repository".to_owned()
        } else {
            name
        }
    }
}

/// Everything of an [`EventContext`] that differs per event.
#[derive(Default)]
struct Specific {
    summary: String,
    url: String,
    push: Option<ctx::Push>,
    tag: Option<ctx::Tag>,
    issue: Option<ctx::Issue>,
    pull_request: Option<ctx::PullRequest>,
    note: Option<ctx::Note>,
    /// The text whose `@login`s are mentioned (a new comment, a new description).
    mention_text: String,
}

impl Delivery {
    /// The normalised view templates render. `source` is the `sources:` entry the delivery
    /// arrived on, `is_test` the `X-Gitee-Ping` flag, `received_ms` the receipt time (used when
    /// the body has no usable `timestamp`), `raw` the parsed body ([`redact`]ed here).
    pub fn context(
        &self,
        source: &str,
        is_test: bool,
        received_ms: i64,
        mut raw: Value,
    ) -> EventContext {
        redact(&mut raw);
        let env = self.payload.envelope();
        let project = target_project(&self.payload);
        let full_name = self.repo.clone();
        let repo = ctx::Repo {
            name: first([
                project.map_or("", |p| p.path.as_str()),
                project.map_or("", |p| p.name.as_str()),
                full_name.rsplit('/').next().unwrap_or(""),
            ]),
            namespace: first([
                project.map_or("", |p| p.namespace.as_str()),
                full_name.rsplit_once('/').map_or("", |(ns, _)| ns),
            ]),
            display_name: first([
                project.map_or("", |p| p.name_with_namespace.as_str()),
                full_name.as_str(),
            ]),
            url: project
                .map(gt::Project::web_url)
                .filter(|u| !u.is_empty())
                .or_else(|| repo_from_hook_url(env.hook_url()).map(|r| r.1))
                .unwrap_or_else(|| {
                    if full_name.is_empty() {
                        String::new()
                    } else {
                        format!("https://gitee.com/{full_name}")
                    }
                }),
            private: project.is_some_and(|p| p.private),
            full_name,
        };
        let actor_src = match &self.payload {
            Payload::Push(h) | Payload::TagPush(h) => {
                pick_user([env.sender(), h.pusher.as_ref(), h.user.as_ref()])
            }
            Payload::Issue(h) => pick_user([env.sender(), h.updated_by.as_ref(), h.user.as_ref()]),
            Payload::MergeRequest(h) => {
                pick_user([env.sender(), h.updated_by.as_ref(), h.author.as_ref()])
            }
            Payload::Note(h) => pick_user([
                env.sender(),
                h.author.as_ref(),
                h.comment.as_ref().and_then(|c| c.user.as_ref()),
            ]),
        };
        let mut actor = user(actor_src);
        if let (Payload::Push(h) | Payload::TagPush(h), true) = (&self.payload, actor_src.is_none())
        {
            // Oldest payloads only have the display name at the top level.
            actor.name = h.user_name.trim().to_owned();
            actor.email = h.user_email.clone();
        }
        let base = Base { repo, actor };

        let s = match &self.payload {
            Payload::Push(h) => push_ctx(&base, &self.action, h),
            Payload::TagPush(h) => tag_ctx(&base, &self.action, h),
            Payload::Issue(h) => issue_ctx(&base, &self.action, h),
            Payload::MergeRequest(h) => pr_ctx(&base, &self.action, h),
            Payload::Note(h) => note_ctx(&base, &self.action, h),
        };
        let url = if s.url.is_empty() {
            base.repo.url.clone()
        } else {
            s.url
        };
        EventContext {
            event: self.kind,
            action: self.action.clone(),
            is_test,
            source: source.to_owned(),
            summary: s.summary,
            url,
            repo: base.repo,
            actor: base.actor,
            enterprise: env
                .enterprise()
                .filter(|e| !e.name.trim().is_empty() || !e.url.trim().is_empty())
                .map(|e| ctx::Enterprise {
                    name: e.name.clone(),
                    url: e.url.clone(),
                }),
            push: s.push,
            tag: s.tag,
            issue: s.issue,
            pull_request: s.pull_request,
            note: s.note,
            timestamp_ms: plausible_timestamp(env.timestamp(), received_ms),
            mentioned_logins: at_logins(&s.mention_text),
            raw,
        }
    }
}

/// The body's `timestamp` when it is a plausible event time (between the years 2000 and
/// 2200), else the receipt time: Gitee's copy is informational (the header is what is
/// verified), and an absurd value must not make the event unrenderable.
fn plausible_timestamp(body: Option<i64>, received_ms: i64) -> i64 {
    const YEAR_2000_MS: i64 = 946_684_800_000;
    const YEAR_2200_MS: i64 = 7_258_118_400_000;
    match body {
        Some(ts) if (YEAR_2000_MS..YEAR_2200_MS).contains(&ts) => ts,
        _ => received_ms,
    }
}

// --- push -------------------------------------------------------------------------------

fn commit_ctx(base: &Base, c: &gt::Commit) -> ctx::Commit {
    let message = c.message.trim_end().to_owned();
    let title = message
        .trim_start()
        .lines()
        .next()
        .unwrap_or("")
        .trim_end()
        .to_owned();
    let sha = c.id.trim().to_owned();
    let author_src = pick_user([c.author.as_ref(), c.committer.as_ref()]);
    ctx::Commit {
        short_sha: short_sha(&sha),
        url: first([c.url.as_str(), base.link(&format!("commit/{sha}")).as_str()]),
        author: user(author_src),
        time: first([
            c.timestamp.as_str(),
            author_src.map_or("", |a| a.time.as_str()),
        ]),
        sha,
        title,
        message,
    }
}

fn push_ctx(base: &Base, action: &str, h: &gt::PushHook) -> Specific {
    let branch = strip_ref(&h.git_ref, "refs/heads/").to_owned();
    let created = action == "create";
    let deleted = action == "delete";
    let mut commits: Vec<ctx::Commit> = h.commits.iter().map(|c| commit_ctx(base, c)).collect();
    if commits.is_empty() && !deleted {
        // `commits` is null on branch creation and for big pushes: show the head at least.
        commits.extend(h.head_commit.iter().map(|c| commit_ctx(base, c)));
    }
    let listed = commits.len() as u64;
    let total = h.total_commits_count.unwrap_or(0).max(listed);
    let compare_url = if !h.compare.trim().is_empty() {
        h.compare.trim().to_owned()
    } else if !h.before.is_empty() && !h.after.is_empty() {
        base.link(&format!("compare/{}...{}", h.before, h.after))
    } else {
        String::new()
    };
    let who = by(&base.actor);
    let repo = base.repo_name();
    let b = one_line(&branch, NAME_MAX);
    let (summary, url) = if created {
        let with = if total > 0 {
            format!(" with {}", plural(total, "commit", "commits"))
        } else {
            String::new()
        };
        (
            format!("{who} created branch {b} in {repo}{with}"),
            base.link(&format!("tree/{branch}")),
        )
    } else if deleted {
        (format!("{who} deleted branch {b} in {repo}"), String::new())
    } else if total > 0 {
        (
            format!(
                "{who} pushed {} to {repo}:{b}",
                plural(total, "commit", "commits")
            ),
            compare_url.clone(),
        )
    } else {
        (format!("{who} pushed to {repo}:{b}"), compare_url.clone())
    };
    Specific {
        summary,
        url,
        push: Some(ctx::Push {
            r#ref: h.git_ref.clone(),
            branch,
            short_before: short_sha(&h.before),
            short_after: short_sha(&h.after),
            before: h.before.trim().to_owned(),
            after: h.after.trim().to_owned(),
            created,
            deleted,
            compare_url,
            commits,
            total_commits: total,
            more_commits: total - listed,
        }),
        ..Specific::default()
    }
}

fn tag_ctx(base: &Base, action: &str, h: &gt::PushHook) -> Specific {
    let name = strip_ref(&h.git_ref, "refs/tags/").to_owned();
    let deleted = action == "delete";
    let sha = if is_zero_sha(&h.after) || h.after.trim().is_empty() {
        h.before.trim()
    } else {
        h.after.trim()
    };
    let url = if deleted {
        base.link("tags")
    } else {
        base.link(&format!("tree/{name}"))
    };
    let verb = if deleted { "deleted" } else { "created" };
    Specific {
        summary: format!(
            "{} {verb} tag {} in {}",
            by(&base.actor),
            one_line(&name, NAME_MAX),
            base.repo_name()
        ),
        url: url.clone(),
        tag: Some(ctx::Tag {
            r#ref: h.git_ref.clone(),
            sha: sha.to_owned(),
            short_sha: short_sha(sha),
            created: !deleted,
            deleted,
            url,
            name,
        }),
        ..Specific::default()
    }
}

// --- issue ------------------------------------------------------------------------------

fn labels(ls: &[gt::Label]) -> Vec<String> {
    ls.iter()
        .map(|l| l.name.clone())
        .filter(|n| !n.is_empty())
        .collect()
}

/// Maps an `issue` object, with the flattened top-level copies of an Issue Hook as fallback.
fn map_issue(base: &Base, i: Option<&gt::Issue>, top: Option<&gt::IssueHook>) -> ctx::Issue {
    let empty = gt::Issue::default();
    let i = i.unwrap_or(&empty);
    let t = |f: fn(&gt::IssueHook) -> &str| top.map_or("", f);
    let number = first([i.number.as_str(), t(|h| &h.iid)]);
    let state = first([i.state.as_str(), t(|h| &h.state)]);
    let built = if number.is_empty() {
        String::new()
    } else {
        base.link(&format!("issues/{number}"))
    };
    let url = first([i.html_url.as_str(), t(|h| &h.url), &built]);
    let author = pick_user([i.user.as_ref(), top.and_then(|h| h.user.as_ref())]);
    let assignee = pick_user([i.assignee.as_ref(), top.and_then(|h| h.assignee.as_ref())]);
    let milestone = first([
        i.milestone.as_ref().map_or("", |m| m.title.as_str()),
        top.and_then(|h| h.milestone.as_ref())
            .map_or("", |m| m.title.as_str()),
    ]);
    ctx::Issue {
        title: first([i.title.as_str(), t(|h| &h.title)]),
        body: first([i.body.as_str(), t(|h| &h.description)]),
        state_name: first([i.state_name.as_str(), state.as_str()]),
        type_name: i.type_name.clone(),
        labels: labels(&i.labels),
        author: user(author),
        assignee: assignee.map(|a| user(Some(a))),
        milestone,
        number,
        state,
        url,
    }
}

fn issue_ref(i: &ctx::Issue) -> String {
    let n = one_line(&i.number, NAME_MAX);
    let n = if n.is_empty() {
        String::new()
    } else {
        format!(" #{n}")
    };
    format!("issue{n}{}", quoted(&i.title))
}

fn issue_ctx(base: &Base, action: &str, h: &gt::IssueHook) -> Specific {
    let issue = map_issue(base, h.issue.as_ref(), Some(h));
    let who = by(&base.actor);
    let what = issue_ref(&issue);
    let repo = base.repo_name();
    let summary = match action {
        "open" => format!("{who} opened {what} in {repo}"),
        "close" => format!("{who} closed {what} in {repo}"),
        "reopen" => format!("{who} reopened {what} in {repo}"),
        "delete" => format!("{who} deleted {what} in {repo}"),
        "state_change" => match issue.state.as_str() {
            "closed" => format!("{who} closed {what} in {repo}"),
            "open" => format!("{who} reopened {what} in {repo}"),
            _ => format!(
                "{who} changed the state of {what} to {} in {repo}",
                one_line(&issue.state_name, NAME_MAX)
            ),
        },
        "assign" => match &issue.assignee {
            Some(a) => format!("{who} assigned {what} to {} in {repo}", by(a)),
            None => format!("{who} unassigned {what} in {repo}"),
        },
        _ => format!("{who} updated {what} in {repo}"),
    };
    Specific {
        summary,
        url: issue.url.clone(),
        mention_text: if action == "open" {
            issue.body.clone()
        } else {
            String::new()
        },
        issue: Some(issue),
        ..Specific::default()
    }
}

// --- pull request -----------------------------------------------------------------------

fn users(list: &[gt::User], single: Option<&gt::User>) -> Vec<ctx::User> {
    let mut out: Vec<ctx::User> = list
        .iter()
        .filter(|u| !u.is_blank())
        .map(|u| user(Some(u)))
        .collect();
    if out.is_empty() {
        out.extend(single.filter(|u| !u.is_blank()).map(|u| user(Some(u))));
    }
    out
}

/// Maps a `pull_request` object, with the flattened copies of a Merge Request Hook as fallback.
fn map_pr(
    base: &Base,
    p: Option<&gt::PullRequest>,
    top: Option<&gt::MergeRequestHook>,
) -> ctx::PullRequest {
    let empty = gt::PullRequest::default();
    let p = p.unwrap_or(&empty);
    let t = |f: fn(&gt::MergeRequestHook) -> &str| top.map_or("", f);
    let number = [
        p.number,
        top.map_or(0, |h| h.number),
        top.map_or(0, |h| h.iid),
    ]
    .into_iter()
    .find(|n| *n != 0)
    .unwrap_or(0);
    let state = first([p.state.as_str(), t(|h| &h.state)]);
    let head = p.head.as_ref();
    let base_branch = p.base.as_ref();
    let built = if number == 0 {
        String::new()
    } else {
        base.link(&format!("pulls/{number}"))
    };
    let url = first([p.html_url.as_str(), t(|h| &h.url), &built]);
    let source_repo = first([
        project_full_name(head.and_then(|b| b.repo.as_ref())).as_str(),
        project_full_name(top.and_then(|h| h.source_repo.as_ref()?.repo())).as_str(),
        base.repo.full_name.as_str(),
    ]);
    let target_repo = first([
        project_full_name(base_branch.and_then(|b| b.repo.as_ref())).as_str(),
        project_full_name(top.and_then(|h| h.target_repo.as_ref()?.repo())).as_str(),
        base.repo.full_name.as_str(),
    ]);
    ctx::PullRequest {
        number,
        title: first([p.title.as_str(), t(|h| &h.title)]),
        body: first([p.body.as_str(), t(|h| &h.body)]),
        merged: p.merged || state == "merged",
        url,
        source_branch: first([
            head.map_or("", |b| b.git_ref.as_str()),
            t(|h| &h.source_branch),
        ]),
        target_branch: pr_target_branch(Some(p), t(|h| &h.target_branch)),
        source_repo,
        target_repo,
        author: user(pick_user([
            p.user.as_ref(),
            top.and_then(|h| h.author.as_ref()),
        ])),
        assignees: users(&p.assignees, p.assignee.as_ref()),
        reviewers: if p.reviewers.iter().any(|u| !u.is_blank()) {
            users(&p.reviewers, None)
        } else {
            users(&p.assignees, p.assignee.as_ref())
        },
        testers: users(&p.testers, p.tester.as_ref()),
        labels: labels(&p.labels),
        action_desc: t(|h| &h.action_desc).trim().to_owned(),
        commits: p.commits,
        additions: p.additions,
        deletions: p.deletions,
        changed_files: p.changed_files,
        state,
    }
}

fn pr_ref(pr: &ctx::PullRequest) -> String {
    let n = if pr.number == 0 {
        String::new()
    } else {
        format!(" #{}", pr.number)
    };
    format!("pull request{n}{}", quoted(&pr.title))
}

/// ` (feature → main)`, or ` (fork/app:feature → main)` across repositories.
fn pr_branches(pr: &ctx::PullRequest) -> String {
    if pr.source_branch.is_empty() || pr.target_branch.is_empty() {
        return String::new();
    }
    let source = if pr.source_repo != pr.target_repo && !pr.source_repo.is_empty() {
        format!("{}:{}", pr.source_repo, pr.source_branch)
    } else {
        pr.source_branch.clone()
    };
    format!(
        " ({} → {})",
        one_line(&source, NAME_MAX),
        one_line(&pr.target_branch, NAME_MAX)
    )
}

fn names(list: &[ctx::User]) -> String {
    list.iter().map(by).collect::<Vec<_>>().join(", ")
}

fn pr_ctx(base: &Base, action: &str, h: &gt::MergeRequestHook) -> Specific {
    let pr = map_pr(base, h.pull_request.as_ref(), Some(h));
    let who = by(&base.actor);
    let what = pr_ref(&pr);
    let repo = base.repo_name();
    let branches = pr_branches(&pr);
    let summary = match action {
        "open" => format!("{who} opened {what} in {repo}{branches}"),
        "update" => match pr.action_desc.as_str() {
            "source_branch_changed" => {
                format!("{who} pushed new commits to {what} in {repo}{branches}")
            }
            "target_branch_changed" => {
                format!("{who} changed the target branch of {what} in {repo}{branches}")
            }
            "update_label" => format!("{who} changed the labels of {what} in {repo}{branches}"),
            _ => format!("{who} updated {what} in {repo}{branches}"),
        },
        "merge" => format!("{who} merged {what} in {repo}{branches}"),
        "close" => format!("{who} closed {what} in {repo}{branches}"),
        "reopen" => format!("{who} reopened {what} in {repo}{branches}"),
        "approved" => format!("{who} approved {what} in {repo}{branches}"),
        "tested" => format!("{who} marked {what} as tested in {repo}{branches}"),
        "assign" if !pr.assignees.is_empty() => format!(
            "{who} assigned {what} to {} in {repo}{branches}",
            one_line(&names(&pr.assignees), TITLE_MAX)
        ),
        "assign" => format!("{who} changed the assignees of {what} in {repo}{branches}"),
        _ => format!("{who} updated {what} in {repo}{branches}"),
    };
    Specific {
        summary,
        url: pr.url.clone(),
        mention_text: if action == "open" {
            pr.body.clone()
        } else {
            String::new()
        },
        pull_request: Some(pr),
        ..Specific::default()
    }
}

// --- note -------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NoteOn {
    Issue,
    PullRequest,
    Commit,
    Repository,
}

impl NoteOn {
    fn as_str(self) -> &'static str {
        match self {
            NoteOn::Issue => "issue",
            NoteOn::PullRequest => "pull_request",
            NoteOn::Commit => "commit",
            NoteOn::Repository => "repository",
        }
    }
}

/// What a note is about: from `noteable_type`, else from which object Gitee attached.
pub(super) fn note_on(h: &gt::NoteHook) -> NoteOn {
    let norm: String = h
        .noteable_type
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    match norm.as_str() {
        "issue" => NoteOn::Issue,
        "pullrequest" | "mergerequest" => NoteOn::PullRequest,
        "commit" => NoteOn::Commit,
        "" if h.pull_request.is_some() => NoteOn::PullRequest,
        "" if h.issue.is_some() => NoteOn::Issue,
        "" if !h.short_commit_id.trim().is_empty() => NoteOn::Commit,
        _ => NoteOn::Repository,
    }
}

fn note_ctx(base: &Base, action: &str, h: &gt::NoteHook) -> Specific {
    let on = note_on(h);
    let comment = h.comment.as_ref();
    let mut issue = None;
    let mut pull_request = None;
    let target = match on {
        NoteOn::Issue => {
            let i = h.issue.as_ref().map(|i| map_issue(base, Some(i), None));
            let reference = first([
                i.as_ref().map_or("", |i| i.number.as_str()),
                h.per_iid.trim().trim_start_matches('#'),
            ]);
            let built = if reference.is_empty() {
                String::new()
            } else {
                base.link(&format!("issues/{reference}"))
            };
            let target = ctx::NoteTarget {
                title: first([i.as_ref().map_or("", |i| i.title.as_str()), &h.title]),
                url: first([i.as_ref().map_or("", |i| i.url.as_str()), &built]),
                reference,
            };
            issue = i;
            target
        }
        NoteOn::PullRequest => {
            let p = h.pull_request.as_ref().map(|p| map_pr(base, Some(p), None));
            let number = p.as_ref().map_or(0, |p| p.number);
            let reference = if number != 0 {
                number.to_string()
            } else {
                h.per_iid.trim().trim_start_matches('!').to_owned()
            };
            let built = if reference.is_empty() {
                String::new()
            } else {
                base.link(&format!("pulls/{reference}"))
            };
            let target = ctx::NoteTarget {
                title: first([p.as_ref().map_or("", |p| p.title.as_str()), &h.title]),
                url: first([p.as_ref().map_or("", |p| p.url.as_str()), &built]),
                reference,
            };
            pull_request = p;
            target
        }
        NoteOn::Commit => {
            let full = comment.map_or("", |c| c.commit_id.trim());
            let short = first([h.short_commit_id.trim(), &short_sha(full)]);
            let sha = first([full, &short]);
            ctx::NoteTarget {
                title: h.title.clone(),
                url: if sha.is_empty() {
                    String::new()
                } else {
                    base.link(&format!("commit/{sha}"))
                },
                reference: short,
            }
        }
        NoteOn::Repository => ctx::NoteTarget {
            reference: String::new(),
            title: first([h.title.as_str(), &base.repo.full_name]),
            url: base.repo.url.clone(),
        },
    };
    let url = first([
        comment.map_or("", |c| c.html_url.as_str()),
        h.url.as_str(),
        target.url.as_str(),
    ]);
    let author = pick_user([
        comment.and_then(|c| c.user.as_ref()),
        h.author.as_ref(),
        h.sender.as_ref(),
    ]);
    let who = by(&base.actor);
    let repo = base.repo_name();
    let what = match on {
        NoteOn::Issue => format!(
            "issue{}{} in {repo}",
            prefixed(" #", &target.reference),
            quoted(&target.title)
        ),
        NoteOn::PullRequest => format!(
            "pull request{}{} in {repo}",
            prefixed(" #", &target.reference),
            quoted(&target.title)
        ),
        NoteOn::Commit => format!("commit{} in {repo}", prefixed(" ", &target.reference)),
        NoteOn::Repository => repo,
    };
    let (summary, new_comment) = match action {
        "edited" | "edit" | "update" => (format!("{who} edited a comment on {what}"), false),
        "deleted" | "delete" => (format!("{who} deleted a comment on {what}"), false),
        _ => (format!("{who} commented on {what}"), true),
    };
    let body = first([comment.map_or("", |c| c.body.as_str()), h.note.as_str()]);
    Specific {
        summary,
        url,
        issue,
        pull_request,
        // An edit or a deletion must not ping the people of the comment a second time.
        mention_text: if new_comment {
            body.clone()
        } else {
            String::new()
        },
        note: Some(ctx::Note {
            body,
            url: first([comment.map_or("", |c| c.html_url.as_str()), h.url.as_str()]),
            noteable_type: h.noteable_type.clone(),
            on: on.as_str().to_owned(),
            target,
            author: user(author),
        }),
        ..Specific::default()
    }
}

fn prefixed(prefix: &str, s: &str) -> String {
    let s = one_line(s, NAME_MAX);
    if s.is_empty() {
        String::new()
    } else {
        format!("{prefix}{s}")
    }
}

/// The most `@login`s taken from one text.
const MAX_AT_LOGINS: usize = 50;

/// The Gitee logins written as `@login` in `text`, in order, without duplicates (compared
/// case-insensitively). A login is letters, digits, `_`, `-` and `.` (not at its end), right
/// after an `@` that does not follow a letter, digit or one of `_-.` (so `bob@example.com` is
/// not a mention) and that is not inside a code span.
pub(crate) fn at_logins(text: &str) -> Vec<String> {
    let is_login_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    let mut out: Vec<String> = Vec::new();
    let mut prev = ' ';
    let mut in_code = false;
    for (i, c) in text.char_indices() {
        if c == '`' {
            in_code = !in_code;
        } else if c == '@' && !in_code && !is_login_char(prev) && prev != '@' {
            let rest = &text[i + 1..];
            let end = rest
                .char_indices()
                .find(|&(_, c)| !is_login_char(c))
                .map_or(rest.len(), |(j, _)| j);
            let login = rest[..end].trim_end_matches(['.', '-']);
            if !login.is_empty()
                && login.len() <= 64
                && login.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                && !out.iter().any(|l| l.eq_ignore_ascii_case(login))
            {
                out.push(login.to_owned());
                if out.len() == MAX_AT_LOGINS {
                    break;
                }
            }
        }
        prev = c;
    }
    out
}

#[cfg(test)]
mod at_tests {
    use super::at_logins;

    #[test]
    fn at_logins_are_found_once_in_order() {
        assert_eq!(
            at_logins("@alice please review, cc @Bob-Wang and @alice. Thanks @carol_li!"),
            ["alice", "Bob-Wang", "carol_li"]
        );
        // Emails, code spans, a bare @ and trailing punctuation.
        assert_eq!(
            at_logins("mail bob@example.com `@notme` @ x (@dave.) @-x @@y\n@erin"),
            ["dave", "erin"]
        );
        assert!(at_logins("").is_empty());
        assert_eq!(at_logins(&"@a ".repeat(10)), ["a"]);
        let many: String = (0..80).map(|i| format!("@u{i} ")).collect();
        assert_eq!(at_logins(&many).len(), 50);
        assert_eq!(at_logins("中文@张三 @zhang"), ["zhang"]);
    }
}
