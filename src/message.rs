//! From a stored webhook body to the JSON body for one platform: parse the typed payload,
//! build the normalised context and render the channel's template. Used by the dispatcher at
//! send time (so a retry or redelivery uses today's templates) and by `gitee-relay render`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::config::{Config, Route};
use crate::gitee::payload::Delivery;
use crate::gitee::{EventContext, EventKind, payload};
use crate::render::{People, RenderOptions, TemplateSet};
use crate::route::{RouteKey, route_matches};

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("{0}")]
    Payload(#[from] payload::PayloadError),
    #[error("{0}")]
    Render(#[from] crate::render::RenderError),
}

/// Who messages may ping: the config's `people:` and the routes (whose `mention:` turns pings
/// on or off per route). Built once from the config and shared by every channel.
#[derive(Debug, Clone, Default)]
pub struct Audience {
    pub people: People,
    pub routes: Vec<Route>,
}

static NOBODY: Audience = Audience {
    people: BTreeMap::new(),
    routes: Vec::new(),
};

impl Audience {
    pub fn from_config(config: &Config) -> Audience {
        Audience {
            people: config.people.clone(),
            routes: config.routes.clone(),
        }
    }

    /// Whether a message of `delivery` to `channel` may ping people: true when a route that
    /// matches the event and sends it to the channel has `mention` on. When no route matches
    /// (the routes changed since the event was queued, a manual render), any route to the
    /// channel with `mention` on decides; with no such route, true.
    pub fn mention_enabled(&self, delivery: &Delivery, channel: &str, is_test: bool) -> bool {
        let key = RouteKey {
            kind: delivery.kind,
            action: &delivery.action,
            repo: &delivery.repo,
            branch: delivery.branch.as_deref(),
            is_test,
        };
        let to_channel: Vec<&Route> = self
            .routes
            .iter()
            .filter(|r| r.to.iter().any(|c| c == channel))
            .collect();
        let matching: Vec<&&Route> = to_channel
            .iter()
            .filter(|r| route_matches(r, &key))
            .collect();
        if !matching.is_empty() {
            matching.iter().any(|r| r.mention)
        } else if !to_channel.is_empty() {
            to_channel.iter().any(|r| r.mention)
        } else {
            true
        }
    }
}

/// The channel a message is rendered for, and who it may ping.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub audience: &'a Audience,
    /// The channel name (routes' `to:`).
    pub channel: &'a str,
}

impl Target<'static> {
    /// No people mapped: nobody is pinged.
    pub fn nobody() -> Target<'static> {
        Target {
            audience: &NOBODY,
            channel: "",
        }
    }
}

/// The typed view, with the JSON value the templates get as `raw` when `with_raw`; else `raw`
/// is null, for templates that never read it: one pass over the bytes for a well-formed body,
/// no JSON tree.
fn parse(kind: EventKind, body: &[u8], with_raw: bool) -> Result<(Delivery, Value), MessageError> {
    if !with_raw {
        return Ok((payload::parse(kind, body)?, Value::Null));
    }
    // One parse: the typed view is read from the same JSON value the templates get as `raw`.
    let raw: Value = payload::parse_json(body)?;
    let delivery = payload::parse_value(kind, &raw)?;
    Ok((delivery, raw))
}

fn parsed_context(
    kind: EventKind,
    body: &[u8],
    with_raw: bool,
    source: &str,
    is_test: bool,
    received_ms: i64,
) -> Result<EventContext, MessageError> {
    let (delivery, raw) = parse(kind, body, with_raw)?;
    Ok(delivery.context(source, is_test, received_ms, raw))
}

/// The normalised view of a webhook body.
pub fn context(
    kind: EventKind,
    body: &[u8],
    source: &str,
    is_test: bool,
    received_ms: i64,
) -> Result<EventContext, MessageError> {
    parsed_context(kind, body, true, source, is_test, received_ms)
}

/// [`context`] with `raw` null, for callers that read only the normalised fields (digests):
/// one pass over the bytes, no JSON tree.
pub fn context_without_raw(
    kind: EventKind,
    body: &[u8],
    source: &str,
    is_test: bool,
    received_ms: i64,
) -> Result<EventContext, MessageError> {
    parsed_context(kind, body, false, source, is_test, received_ms)
}

/// The exact body that would be posted to `target.channel` (before the platform adds keyword
/// and signature): mentions as the target's people and routes allow, fitted to the platform's
/// size limits.
pub fn render(
    templates: &TemplateSet,
    kind: EventKind,
    body: &[u8],
    source: &str,
    is_test: bool,
    received_ms: i64,
    target: &Target<'_>,
) -> Result<Value, MessageError> {
    let (delivery, raw) = parse(kind, body, templates.uses_raw())?;
    let mention = target
        .audience
        .mention_enabled(&delivery, target.channel, is_test);
    let ctx = delivery.context(source, is_test, received_ms, raw);
    let opts = RenderOptions {
        people: Some(&target.audience.people),
        mention,
    };
    Ok(templates.render_with(&ctx, &opts)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Person;
    use crate::platform::PlatformKind;

    fn route(to: &str, events: &[EventKind], mention: bool) -> Route {
        Route {
            repos: Vec::new(),
            events: events.to_vec(),
            actions: Vec::new(),
            branches: Vec::new(),
            to: vec![to.to_owned()],
            mention,
        }
    }

    const PR: &str = include_str!("../samples/merge_request_assign.json");

    fn audience(routes: Vec<Route>) -> Audience {
        let ctx = context(EventKind::MergeRequest, PR.as_bytes(), "s", false, 0).unwrap();
        let mut people = People::new();
        for u in &ctx.pull_request.unwrap().reviewers {
            people.insert(
                u.login.clone(),
                Person {
                    slack: Some(format!("U{}", u.login.len())),
                    ..Person::default()
                },
            );
        }
        Audience { people, routes }
    }

    fn slack_text(a: &Audience, channel: &str) -> String {
        let set = TemplateSet::builtin(PlatformKind::Slack);
        let target = Target {
            audience: a,
            channel,
        };
        render(
            &set,
            EventKind::MergeRequest,
            PR.as_bytes(),
            "s",
            false,
            0,
            &target,
        )
        .unwrap()
        .to_string()
    }

    fn config(extra: &str) -> Result<Config, String> {
        let yaml = format!(
            "sources: {{ gitee: {{ secret: s }} }}\nchannels: {{ c: {{ platform: slack, url: 'https://hooks.slack.com/services/T/B/x' }} }}\nroutes: [ {{ to: [c] }} ]\n{extra}"
        );
        Config::from_yaml(std::path::Path::new("c.yaml"), &yaml, &|_| None)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn timezone_and_people_ids_are_validated_by_the_config() {
        assert_eq!(config("").unwrap().timezone, "+08:00");
        assert_eq!(config("timezone: UTC").unwrap().timezone, "UTC");
        let e = config("timezone: Asia/Shanghai").unwrap_err();
        assert!(e.contains("timezone") && e.contains("+08:00"), "{e}");
        let c = config("people: { alice: { slack: U1, dingtalk: '13800000000' } }").unwrap();
        assert_eq!(
            Audience::from_config(&c).people["alice"].slack.as_deref(),
            Some("U1")
        );
        let e = config("people: { alice: { slack: '<!channel>' } }").unwrap_err();
        assert!(e.contains("people.alice.slack"), "{e}");
    }

    #[test]
    fn routes_turn_mentions_on_and_off_per_channel() {
        let a = audience(vec![
            route("quiet", &[], false),
            route("loud", &[], true),
            // Pull requests to `mixed` match a route with mentions on.
            route("mixed", &[EventKind::Push], false),
            route("mixed", &[EventKind::MergeRequest], true),
            route("pushes", &[EventKind::Push], false),
        ]);
        assert!(slack_text(&a, "loud").contains("<@U"));
        assert!(!slack_text(&a, "quiet").contains("<@U"));
        assert!(slack_text(&a, "mixed").contains("<@U"));
        // No matching route to `pushes`: its routes decide, and they say no.
        assert!(!slack_text(&a, "pushes").contains("<@U"));
        assert!(slack_text(&a, "unrouted").contains("<@U"));
        assert!(!slack_text(&NOBODY, "loud").contains("<@U"));
    }
}
