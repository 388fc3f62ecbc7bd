//! @mentions: who a message pings, and how each platform writes a ping.
//!
//! `people:` in the config maps a Gitee login to an id on each platform. The renderer turns
//! the people an event concerns into the `mentions` object of the template context:
//!
//! * pull requests: the reviewers (Gitee's `assignees`) and the testers;
//! * issues: the assignee;
//! * `@login`s written in a new comment, or in the description of an issue or pull request
//!   being opened ([`EventContext::mentioned_logins`]);
//!
//! never the person who triggered the event, and only logins that `people:` maps to an id for
//! this platform. Everybody else stays a plain name. Text written by users can never ping
//! anybody: [`super::escape`] neutralises every platform's mention syntax in it, so the only
//! mentions in a body are the ones written here.
//!
//! | platform | in the text | elsewhere in the body |
//! |---|---|---|
//! | DingTalk | `@<mobile or userId>` | `at.atMobiles` (mobile numbers), `at.atUserIds` (other ids) |
//! | WeCom | `<@userid>` (markdown) | `mentioned_list` / `mentioned_mobile_list` (text messages only) |
//! | Feishu/Lark | `<at id=ou_…></at>` (card `lark_md`) | – |
//! | Slack | `<@U…>` | – |
//!
//! A WeCom mobile number cannot be mentioned in markdown: such people are only listed in
//! `mentions.mobiles` (for a `text` template's `mentioned_mobile_list`) and stay plain names.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::Person;
use crate::gitee::{EventContext, context::User};
use crate::platform::PlatformKind;

/// `people:` of the config: Gitee login → ids per platform.
pub type People = BTreeMap<String, Person>;

/// The `mentions` object of the template context.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Mentions {
    /// False when a route turned mentions off (`mention: false`) for this channel and event.
    pub enabled: bool,
    /// Everybody this message pings, in order: reviewers, testers, assignee, then `@login`s.
    pub people: Vec<Mentioned>,
    /// The people of `people` that no field of the message shows (they were written as
    /// `@login` in a comment or description): templates list them at the end ("cc …").
    pub extra: Vec<Mentioned>,
    /// The ids of `people` that are mobile numbers (DingTalk `at.atMobiles`; WeCom
    /// `mentioned_mobile_list`, which also includes the mobiles WeCom markdown cannot ping).
    pub mobiles: Vec<String>,
    /// The other ids (DingTalk `at.atUserIds`, WeCom `mentioned_list`).
    pub user_ids: Vec<String>,
}

/// One person pinged.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Mentioned {
    pub login: String,
    /// Display name (falls back to the login).
    pub name: String,
    /// The id on this platform, from `people:`.
    pub id: String,
    /// `mobile` or `user_id`.
    pub kind: &'static str,
    /// Why: `reviewer`, `tester`, `assignee` or `mentioned` (written as `@login`).
    pub role: &'static str,
    /// The platform's mention markup (`<@U123>`...), not JSON-escaped; templates write it with
    /// the `mention` (or `who`) helper.
    pub markup: String,
}

/// True for ids that are phone numbers: `+` and 6–15 digits, or a mainland mobile number
/// (11 digits starting with 1). Anything else is a user id.
pub fn is_mobile(id: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match id.strip_prefix('+') {
        Some(rest) => digits(rest) && (6..=15).contains(&rest.len()),
        None => digits(id) && id.len() == 11 && id.starts_with('1'),
    }
}

/// Ids are written into markup, so only plain characters are allowed: letters, digits and
/// `_ - . + @` (1 to 64 of them). Other ids are ignored.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+' | b'@'))
}

/// The id of `person` on `platform`, if set and valid.
pub fn platform_id(person: &Person, platform: PlatformKind) -> Option<&str> {
    let id = match platform {
        PlatformKind::Dingtalk => person.dingtalk.as_deref(),
        PlatformKind::Wecom => person.wecom.as_deref(),
        PlatformKind::Feishu => person.feishu.as_deref(),
        PlatformKind::Slack => person.slack.as_deref(),
    }?
    .trim();
    valid_id(id).then_some(id)
}

/// The markup that pings `id` inside the message text, or `None` when the platform cannot
/// ping that kind of id there (a WeCom mobile number in markdown).
pub fn markup(platform: PlatformKind, id: &str) -> Option<String> {
    match platform {
        PlatformKind::Dingtalk => Some(format!("@{id}")),
        PlatformKind::Wecom if is_mobile(id) => None,
        PlatformKind::Wecom | PlatformKind::Slack => Some(format!("<@{id}>")),
        PlatformKind::Feishu => Some(format!("<at id={id}></at>")),
    }
}

/// `people:` looked up case-insensitively (Gitee logins are).
fn lookup<'p>(people: &'p People, login: &str) -> Option<&'p Person> {
    people.get(login).or_else(|| {
        people
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(login))
            .map(|(_, p)| p)
    })
}

/// Who `ctx` pings on `platform`. With `enabled` false (or nobody mapped) nobody is pinged.
pub fn compute(
    platform: PlatformKind,
    ctx: &EventContext,
    people: &People,
    enabled: bool,
) -> Mentions {
    let mut out = Mentions {
        enabled,
        ..Mentions::default()
    };
    if !enabled || people.is_empty() {
        return out;
    }
    let mut candidates: Vec<(&str, &str, &'static str)> = Vec::new();
    fn add_user<'c>(
        u: &'c User,
        role: &'static str,
        list: &mut Vec<(&'c str, &'c str, &'static str)>,
    ) {
        if !u.login.is_empty() {
            list.push((u.login.as_str(), u.name.as_str(), role));
        }
    }
    if let Some(pr) = &ctx.pull_request {
        // A note on a pull request carries the pull request too, but a comment pings only the
        // people it names.
        if ctx.note.is_none() {
            for u in &pr.reviewers {
                add_user(u, "reviewer", &mut candidates);
            }
            for u in &pr.testers {
                add_user(u, "tester", &mut candidates);
            }
        }
    }
    if let Some(issue) = &ctx.issue
        && ctx.note.is_none()
        && let Some(a) = &issue.assignee
    {
        add_user(a, "assignee", &mut candidates);
    }
    for login in &ctx.mentioned_logins {
        candidates.push((login.as_str(), "", "mentioned"));
    }
    let mut seen: Vec<String> = Vec::new();
    let mut wecom_mobiles: Vec<String> = Vec::new();
    for (login, name, role) in candidates {
        if login.eq_ignore_ascii_case(&ctx.actor.login)
            || seen.iter().any(|s| s.eq_ignore_ascii_case(login))
        {
            continue;
        }
        seen.push(login.to_owned());
        let Some(id) = lookup(people, login).and_then(|p| platform_id(p, platform)) else {
            continue;
        };
        let kind = if is_mobile(id) { "mobile" } else { "user_id" };
        let Some(markup) = markup(platform, id) else {
            wecom_mobiles.push(id.to_owned());
            continue;
        };
        let m = Mentioned {
            login: login.to_owned(),
            name: if name.trim().is_empty() {
                login.to_owned()
            } else {
                name.to_owned()
            },
            id: id.to_owned(),
            kind,
            role,
            markup,
        };
        if kind == "mobile" {
            out.mobiles.push(m.id.clone());
        } else {
            out.user_ids.push(m.id.clone());
        }
        if role == "mentioned" {
            out.extra.push(m.clone());
        }
        out.people.push(m);
    }
    out.mobiles.extend(wecom_mobiles);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::sample;

    fn person(d: &str, w: &str, f: &str, s: &str) -> Person {
        let o = |x: &str| (!x.is_empty()).then(|| x.to_owned());
        Person {
            dingtalk: o(d),
            wecom: o(w),
            feishu: o(f),
            slack: o(s),
        }
    }

    fn people() -> People {
        let mut p = People::new();
        p.insert("carol".into(), person("13800000001", "carol", "ou_c", "UC"));
        p.insert(
            "Dave".into(),
            person("dave-ding", "13800000002", "ou_d", "UD"),
        );
        p.insert("alice".into(), person("13800000003", "alice", "ou_a", "UA"));
        p.insert("zed".into(), person("x\"y", "<bad>", "", "U Z"));
        p
    }

    #[test]
    fn mobiles_and_ids() {
        assert!(is_mobile("13800000000"));
        assert!(is_mobile("+8613800000000"));
        assert!(!is_mobile("1380000000"));
        assert!(!is_mobile("manager4321"));
        assert!(!is_mobile("+12"));
        assert!(valid_id("ou_7d8a6e6df7621556ce0d21922b676706ccs"));
        assert!(!valid_id("U1> <!channel"));
        assert!(!valid_id(""));
    }

    #[test]
    fn pull_request_reviewers_and_testers_but_not_the_actor() {
        let mut ctx = sample::pull_request("open", "open");
        // Reviewers carol and dave, tester erin (unmapped); the actor is alice.
        ctx.pull_request.as_mut().unwrap().testers[0].login = "alice".into();
        ctx.mentioned_logins = vec!["zed".into(), "CAROL".into(), "nobody".into()];
        let m = compute(PlatformKind::Dingtalk, &ctx, &people(), true);
        let ids: Vec<&str> = m.people.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["13800000001", "dave-ding"]);
        assert_eq!(m.mobiles, ["13800000001"]);
        assert_eq!(m.user_ids, ["dave-ding"]);
        assert_eq!(m.people[0].markup, "@13800000001");
        assert!(m.extra.is_empty());

        let m = compute(PlatformKind::Slack, &ctx, &people(), true);
        let marks: Vec<&str> = m.people.iter().map(|p| p.markup.as_str()).collect();
        assert_eq!(marks, ["<@UC>", "<@UD>"]);
        let m = compute(PlatformKind::Feishu, &ctx, &people(), true);
        assert_eq!(m.people[1].markup, "<at id=ou_d></at>");
        // WeCom: dave's id is a mobile number, which markdown cannot ping.
        let m = compute(PlatformKind::Wecom, &ctx, &people(), true);
        let marks: Vec<&str> = m.people.iter().map(|p| p.markup.as_str()).collect();
        assert_eq!(marks, ["<@carol>"]);
        assert_eq!(m.mobiles, ["13800000002"]);

        let off = compute(PlatformKind::Slack, &ctx, &people(), false);
        assert!(!off.enabled && off.people.is_empty() && off.mobiles.is_empty());
    }

    #[test]
    fn comments_ping_only_the_logins_they_name() {
        let mut ctx = sample::note("comment", "pull_request");
        ctx.pull_request = Some(sample::pull_request("open", "").pull_request.unwrap());
        ctx.mentioned_logins = vec!["dave".into(), "alice".into()];
        let m = compute(PlatformKind::Slack, &ctx, &people(), true);
        assert_eq!(m.people.len(), 1);
        assert_eq!(m.people[0].role, "mentioned");
        assert_eq!(m.extra, m.people);
    }

    #[test]
    fn issue_assignee() {
        let ctx = sample::issue("assign", "open");
        let m = compute(PlatformKind::Feishu, &ctx, &people(), true);
        assert_eq!(m.people.len(), 1);
        assert_eq!(
            (m.people[0].role, m.people[0].id.as_str()),
            ("assignee", "ou_c")
        );
    }
}
