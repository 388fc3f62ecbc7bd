use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "DING_TOKEN" => Some("tok123".into()),
        "DING_SECRET" => Some("SECabc".into()),
        _ => None,
    }
}

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_yaml(Path::new("/etc/relay/config.yaml"), text, &env)
}

const GOOD: &str = r#"
listen: 127.0.0.1:9000
store: sqlite://data/relay.db
sources:
  gitee:
    secret: s3cret
    max_skew: 5m
channels:
  team-ding:
    platform: dingtalk
    url: https://oapi.dingtalk.com/robot/send?access_token=${DING_TOKEN}
    secret: ${DING_SECRET}
    keyword: gitee
  dev-slack: { platform: slack, url: "https://hooks.slack.com/services/T/B/x", dry_run: true }
routes:
  - repos: ["acme/*"]
    events: [push, pull_request]
    branches: [main, "release/*"]
    to: [team-ding, dev-slack]
  - events: [issue, note]
    to: [team-ding]
    mention: false
people:
  zhangsan: { dingtalk: "13800000000", slack: U0123 }
"#;

#[test]
fn a_complete_config_loads() {
    let c = load(GOOD).unwrap();
    assert_eq!(c.listen, "127.0.0.1:9000");
    assert_eq!(
        c.store,
        StoreLocation::Sqlite(PathBuf::from("/etc/relay/data/relay.db"))
    );
    let src = &c.sources["gitee"];
    assert_eq!(src.auth, SourceAuthConfig::Signature(Secret::new("s3cret")));
    assert_eq!(src.max_skew, Duration::from_secs(300));
    let ding = &c.channels["team-ding"];
    assert_eq!(ding.platform, PlatformKind::Dingtalk);
    assert_eq!(
        ding.url.expose(),
        "https://oapi.dingtalk.com/robot/send?access_token=tok123"
    );
    assert_eq!(ding.secret.as_ref().unwrap().expose(), "SECabc");
    assert_eq!(ding.keyword.as_deref(), Some("gitee"));
    assert!(c.channels["dev-slack"].dry_run);
    assert_eq!(c.routes.len(), 2);
    assert_eq!(
        c.routes[0].events,
        vec![EventKind::Push, EventKind::MergeRequest]
    );
    assert!(!c.routes[1].mention);
    assert_eq!(c.people["zhangsan"].slack.as_deref(), Some("U0123"));
    assert_eq!(c.max_body, 5 * 1024 * 1024);
}

#[test]
fn defaults_apply() {
    let c = load("sources: { g: { password: pw } }").unwrap();
    assert_eq!(c.listen, DEFAULT_LISTEN);
    assert_eq!(c.sources["g"].max_skew, DEFAULT_MAX_SKEW);
    assert_eq!(c.delivery, DeliverySettings::default());
}

#[test]
fn unknown_key_names_path_and_line() {
    let err = load("sources:\n  g:\n    password: x\n    secrett: y\n").unwrap_err();
    let p = &err.0[0];
    assert_eq!(p.key, "sources.g.secrett");
    assert_eq!(p.line, Some(4));
    assert!(
        p.message.contains("unknown field `secrett`"),
        "{}",
        p.message
    );
    let shown = err.to_string();
    assert!(
        shown.starts_with("/etc/relay/config.yaml:4: sources.g.secrett: "),
        "{shown}"
    );
}

#[test]
fn wrong_type_names_path_and_line() {
    let err = load("sources: { g: { password: x } }\nroutes:\n  - to: 5\n").unwrap_err();
    assert_eq!(err.0[0].key, "routes[0].to");
    assert_eq!(err.0[0].line, Some(3));
}

#[test]
fn unset_variable_is_an_error_naming_it_and_the_key() {
    let err = load("sources:\n  g:\n    secret: ${GITEE_SECRET}\n").unwrap_err();
    assert_eq!(err.0[0].key, "sources.g.secret");
    assert!(err.0[0].message.contains("GITEE_SECRET"));
}

#[test]
fn default_syntax_gives_a_value_when_unset() {
    let c = load("sources:\n  g:\n    secret: ${GITEE_SECRET:-demo}\n").unwrap();
    assert_eq!(
        c.sources["g"].auth,
        SourceAuthConfig::Signature(Secret::new("demo"))
    );
}

#[test]
fn env_values_cannot_change_structure() {
    let c = Config::from_yaml(
        Path::new("c.yaml"),
        "sources:\n  g:\n    password: ${PW}\n",
        &|_| Some("x\nchannels: {evil: 1}".into()),
    )
    .unwrap();
    assert_eq!(
        c.sources["g"].auth,
        SourceAuthConfig::Password(Secret::new("x\nchannels: {evil: 1}"))
    );
    assert!(c.channels.is_empty());
}

#[test]
fn source_without_auth_is_refused_unless_allowed() {
    let err = load("sources: { g: {} }").unwrap_err();
    assert_eq!(err.0[0].key, "sources.g");
    assert!(err.0[0].message.contains("allow_unauthenticated"));
    let c = load("sources: { g: { allow_unauthenticated: true } }").unwrap();
    assert_eq!(c.sources["g"].auth, SourceAuthConfig::Unauthenticated);
    let err = load("sources: { g: { secret: a, password: b } }").unwrap_err();
    assert!(err.0[0].message.contains("not both"));
}

#[test]
fn all_validation_problems_are_reported_together() {
    let text = r#"
sources: { g: { password: p, max_skew: soon } }
channels:
  a: { platform: telegram, url: "https://x" }
  b: { platform: slack, url: "not a url with token-123" }
  c: { platform: wecom, url: "https://q", secret: s }
routes:
  - events: [push, pipeline]
    to: [a, nope]
  - to: []
"#;
    let err = load(text).unwrap_err();
    let keys: Vec<&str> = err.0.iter().map(|p| p.key.as_str()).collect();
    for expected in [
        "sources.g.max_skew",
        "channels.a.platform",
        "channels.b.url",
        "channels.c.secret",
        "routes[0].events[1]",
        "routes[0].to[1]",
        "routes[1].to",
    ] {
        assert!(keys.contains(&expected), "{expected} missing from {keys:?}");
    }
    assert!(!err.to_string().contains("token-123"), "URL leaked: {err}");
}

#[test]
fn secrets_never_show_in_debug() {
    let c = load(GOOD).unwrap();
    let dump = format!("{c:?}");
    assert!(!dump.contains("s3cret"));
    assert!(!dump.contains("SECabc"));
    assert!(!dump.contains("tok123"));
}

#[test]
fn postgres_store_and_bad_store() {
    let c = load("store: postgres://u:pw@localhost/db\nsources: { g: { password: p } }").unwrap();
    assert!(matches!(c.store, StoreLocation::Postgres(_)));
    assert!(!format!("{:?}", c.store).contains("pw@"));
    let err = load("store: mysql://x\nsources: { g: { password: p } }").unwrap_err();
    assert_eq!(err.0[0].key, "store");
}

#[test]
fn invalid_yaml_reports_line() {
    let err = load("sources:\n  g: [\n").unwrap_err();
    assert!(err.0[0].line.is_some());
}

#[test]
fn channel_rate_digest_and_retention() {
    let c = load(
        r#"
sources: { g: { password: p } }
channels:
  a: { platform: dingtalk, url: "https://x/y?access_token=t", rate: { per_minute: 10, max: 3, per: 2s }, digest_after: 30s }
  b: { platform: slack, url: "https://x/y", digest: false }
  c: { platform: slack, url: "https://x/z" }
retention: { delivered: 1d, dead: 2d }
"#,
    )
    .unwrap();
    let a = &c.channels["a"];
    assert_eq!(
        a.rate.as_deref(),
        Some(
            &[
                RateLimit {
                    max: 10,
                    per: Duration::from_secs(60)
                },
                RateLimit {
                    max: 3,
                    per: Duration::from_secs(2)
                }
            ][..]
        )
    );
    assert_eq!(a.digest_after, Some(Duration::from_secs(30)));
    assert_eq!(c.channels["b"].digest_after, None);
    assert_eq!(c.channels["c"].digest_after, Some(DEFAULT_DIGEST_AFTER));
    assert!(c.channels["c"].rate.is_none());
    assert_eq!(c.retention.delivered, Duration::from_secs(86400));
    assert_eq!(c.retention.dead, Duration::from_secs(2 * 86400));
    let err = load("sources: { g: { password: p } }\nchannels:\n  a: { platform: slack, url: \"https://x\", rate: { max: 3 } }\n").unwrap_err();
    assert_eq!(err.0[0].key, "channels.a.rate");
}
