//! Which channels an event goes to. A route matches when every filter it sets matches
//! (unset filters match everything); the event goes to the union of the matching routes'
//! channels, each channel once.

use crate::config::Route;
use crate::gitee::EventKind;

/// The facts about an event that routes filter on.
#[derive(Debug, Clone, Copy)]
pub struct RouteKey<'a> {
    pub kind: EventKind,
    pub action: &'a str,
    /// `namespace/repo`.
    pub repo: &'a str,
    /// Branch (push, pull request target, comment on a pull request) or tag name.
    pub branch: Option<&'a str>,
    /// A test delivery from Gitee's hook settings: its payload describes Gitee's demo
    /// repository, so only the `events` filter applies to it.
    pub is_test: bool,
}

const MATCH_OPTIONS: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: false,
    require_literal_separator: false,
    require_literal_leading_dot: false,
};

fn any_match(patterns: &[glob::Pattern], value: &str) -> bool {
    patterns.is_empty()
        || patterns
            .iter()
            .any(|p| p.matches_with(value, MATCH_OPTIONS))
}

pub fn route_matches(route: &Route, key: &RouteKey<'_>) -> bool {
    if !route.events.is_empty() && !route.events.contains(&key.kind) {
        return false;
    }
    if key.is_test {
        return true;
    }
    if !any_match(&route.repos, key.repo) || !any_match(&route.actions, key.action) {
        return false;
    }
    // Events without a branch (issues, comments on issues) are not filtered by `branches`.
    match key.branch {
        Some(branch) => any_match(&route.branches, branch),
        None => true,
    }
}

/// The channels `key` is delivered to, in config order, without duplicates.
pub fn channels_for<'r>(routes: &'r [Route], key: &RouteKey<'_>) -> Vec<&'r str> {
    let mut out: Vec<&str> = Vec::new();
    for route in routes.iter().filter(|r| route_matches(r, key)) {
        for channel in &route.to {
            if !out.contains(&channel.as_str()) {
                out.push(channel);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(
        repos: &[&str],
        events: &[EventKind],
        actions: &[&str],
        branches: &[&str],
        to: &[&str],
    ) -> Route {
        let pats = |v: &[&str]| v.iter().map(|p| glob::Pattern::new(p).unwrap()).collect();
        Route {
            repos: pats(repos),
            events: events.to_vec(),
            actions: pats(actions),
            branches: pats(branches),
            to: to.iter().map(|s| s.to_string()).collect(),
            mention: true,
        }
    }

    fn key<'a>(
        kind: EventKind,
        repo: &'a str,
        branch: Option<&'a str>,
        action: &'a str,
    ) -> RouteKey<'a> {
        RouteKey {
            kind,
            action,
            repo,
            branch,
            is_test: false,
        }
    }

    #[test]
    fn filters_combine_and_routes_union() {
        let routes = vec![
            route(
                &["acme/*"],
                &[EventKind::Push, EventKind::MergeRequest],
                &[],
                &["main", "release/*"],
                &["ding", "slack"],
            ),
            route(
                &[],
                &[EventKind::Issue, EventKind::Note],
                &[],
                &[],
                &["lark"],
            ),
            route(&[], &[], &["merge"], &[], &["slack", "wecom"]),
        ];
        assert_eq!(
            channels_for(
                &routes,
                &key(EventKind::Push, "acme/app", Some("main"), "push")
            ),
            vec!["ding", "slack"]
        );
        assert_eq!(
            channels_for(
                &routes,
                &key(EventKind::Push, "acme/app", Some("release/1.2"), "push")
            ),
            vec!["ding", "slack"]
        );
        assert!(
            channels_for(
                &routes,
                &key(EventKind::Push, "acme/app", Some("feature/x"), "push")
            )
            .is_empty()
        );
        assert!(
            channels_for(
                &routes,
                &key(EventKind::Push, "other/app", Some("main"), "push")
            )
            .is_empty()
        );
        assert_eq!(
            channels_for(&routes, &key(EventKind::Issue, "any/thing", None, "open")),
            vec!["lark"]
        );
        assert_eq!(
            channels_for(
                &routes,
                &key(EventKind::MergeRequest, "acme/app", Some("main"), "merge")
            ),
            vec!["ding", "slack", "wecom"]
        );
    }

    #[test]
    fn repo_globs_are_case_insensitive() {
        let routes = vec![route(&["Acme/*"], &[], &[], &[], &["a"])];
        assert_eq!(
            channels_for(
                &routes,
                &key(EventKind::Push, "acme/App", Some("x"), "push")
            ),
            vec!["a"]
        );
    }

    #[test]
    fn test_deliveries_only_check_the_event() {
        let routes = vec![route(
            &["acme/*"],
            &[EventKind::Push],
            &["merge"],
            &["main"],
            &["a"],
        )];
        let mut k = key(EventKind::Push, "oschina/git-osc", Some("master"), "push");
        assert!(channels_for(&routes, &k).is_empty());
        k.is_test = true;
        assert_eq!(channels_for(&routes, &k), vec!["a"]);
        k.kind = EventKind::Issue;
        assert!(channels_for(&routes, &k).is_empty());
    }
}
