//! `config.yaml`: parsing (serde-saphyr), `${VAR}` expansion and validation into the typed
//! [`Config`] the rest of the relay uses. Every problem names the key path, and the line where
//! the YAML parser knows it; validation reports all problems at once, not just the first.

mod duration;
mod env;
mod raw;
mod secret;

pub use duration::{parse_duration, parse_size};
pub use env::{ExpandError, expand};
pub use secret::Secret;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::gitee::EventKind;
use crate::platform::PlatformKind;
use raw::{RawChannel, RawConfig, RawDelivery, RawRate, RawRoute, RawSource};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_STORE: &str = "sqlite://data/relay.db";
pub const DEFAULT_MAX_BODY: u64 = 5 * 1024 * 1024;
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(3600);
pub const DEFAULT_DIGEST_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from; relative paths in it are resolved against its folder.
    pub path: PathBuf,
    pub listen: String,
    pub store: StoreLocation,
    pub max_body: usize,
    pub sources: BTreeMap<String, Source>,
    pub channels: BTreeMap<String, Channel>,
    pub routes: Vec<Route>,
    pub people: BTreeMap<String, Person>,
    pub templates: Option<PathBuf>,
    /// The zone message times are shown in (`timezone:`, default `+08:00`), as written.
    pub timezone: String,
    pub delivery: DeliverySettings,
    pub retention: Retention,
    pub admin: AdminSettings,
}

/// The admin API (`/api`) and web console (`/`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdminSettings {
    /// The bearer token; None turns the API and the console off.
    pub token: Option<Secret>,
}

/// An admin token shorter than this is refused: it guards payloads and redelivery.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// How long finished events are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub delivered: Duration,
    pub dead: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            delivered: Duration::from_secs(7 * 86400),
            dead: Duration::from_secs(30 * 86400),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum StoreLocation {
    /// A SQLite database file (created with its folder if missing), or `:memory:`.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (kept secret: it may hold a password).
    Postgres(Secret),
}

#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub auth: SourceAuthConfig,
    pub max_skew: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SourceAuthConfig {
    Signature(Secret),
    Password(Secret),
    Unauthenticated,
}

#[derive(Debug, Clone)]
pub struct Channel {
    pub name: String,
    pub platform: PlatformKind,
    /// The robot URL; it carries the robot's token, so it is a secret.
    pub url: Secret,
    pub secret: Option<Secret>,
    pub keyword: Option<String>,
    pub dry_run: bool,
    pub templates: Option<PathBuf>,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// The channel's own quotas; None means the platform's documented ones.
    pub rate: Option<Vec<RateLimit>>,
    /// Merge the waiting events into digests when the backlog cannot drain within this long
    /// at the channel's pace; None turns digests off.
    pub digest_after: Option<Duration>,
}

/// At most `max` messages in any window of length `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub max: u32,
    pub per: Duration,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub repos: Vec<glob::Pattern>,
    pub events: Vec<EventKind>,
    pub actions: Vec<glob::Pattern>,
    pub branches: Vec<glob::Pattern>,
    pub to: Vec<String>,
    pub mention: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Person {
    pub dingtalk: Option<String>,
    pub wecom: Option<String>,
    pub feishu: Option<String>,
    pub slack: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeliverySettings {
    /// Deliveries sent at once across all channels (a channel sends one at a time, or, when
    /// its robot is unthrottled, up to half of these and at most 16).
    pub workers: u32,
    pub max_attempts: u32,
    pub give_up_after: Duration,
    pub retry_first: Duration,
    pub retry_cap: Duration,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// How long a channel pauses after its robot reports a rate limit without saying how
    /// long (DingTalk asks for at least a minute).
    pub rate_limit_pause: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            workers: 32,
            max_attempts: 20,
            give_up_after: Duration::from_secs(24 * 3600),
            retry_first: Duration::from_secs(5),
            retry_cap: Duration::from_secs(3600),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            rate_limit_pause: Duration::from_secs(60),
        }
    }
}

/// One thing wrong with a config file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigProblem {
    pub file: PathBuf,
    /// Dotted key path, e.g. `channels.team-ding.url`; empty for file-level problems.
    pub key: String,
    pub line: Option<u64>,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Everything wrong with a config file (never empty).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError(pub Vec<ConfigProblem>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads, expands and validates a config file, with variables from the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(vec![ConfigProblem {
                file: path.to_owned(),
                key: String::new(),
                line: None,
                message: format!("cannot read the config file: {e}"),
            }])
        })?;
        Config::from_yaml(path, &text, &|name| std::env::var(name).ok())
    }

    /// Parses config text; `path` is used for messages and to resolve relative paths.
    pub fn from_yaml(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let raw = parse_raw(path, text)?;
        let mut v = Validator {
            file: path.to_owned(),
            base: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            env,
            problems: Vec::new(),
        };
        let config = v.config(raw);
        if v.problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError(v.problems))
        }
    }

    pub fn channel(&self, name: &str) -> Option<&Channel> {
        self.channels.get(name)
    }
}

fn parse_raw(path: &Path, text: &str) -> Result<RawConfig, ConfigError> {
    if text.trim().is_empty() {
        return Ok(RawConfig::default());
    }
    let mut key = String::new();
    let parsed: Result<RawConfig, serde_saphyr::Error> =
        serde_saphyr::with_deserializer_from_str(text, |de| {
            serde_path_to_error::deserialize(de).map_err(|e| {
                key = e.path().to_string();
                e.into_inner()
            })
        });
    parsed.map_err(|e| {
        let line = e.location().map(|l| l.line());
        // serde-saphyr's message starts with its own "error: line L column C:" prefix and
        // then a source snippet; keep the first line's reason and the snippet for context.
        let message = e.to_string();
        let message = message
            .strip_prefix("error: ")
            .map(|m| match m.split_once(": ") {
                Some((pos, rest)) if pos.starts_with("line ") => rest.to_owned(),
                _ => m.to_owned(),
            })
            .unwrap_or(message);
        ConfigError(vec![ConfigProblem {
            file: path.to_owned(),
            key: if key == "." { String::new() } else { key },
            line,
            message,
        }])
    })
}

struct Validator<'a> {
    file: PathBuf,
    base: PathBuf,
    env: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<ConfigProblem>,
}

impl Validator<'_> {
    fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            file: self.file.clone(),
            key: key.into(),
            line: None,
            message: message.into(),
        });
    }

    fn expand(&mut self, key: &str, value: &str) -> Option<String> {
        match expand(value, self.env) {
            Ok(v) => Some(v),
            Err(e) => {
                self.problem(key, e.to_string());
                None
            }
        }
    }

    fn expand_opt(&mut self, key: &str, value: &Option<String>) -> Option<String> {
        value.as_deref().and_then(|v| self.expand(key, v))
    }

    fn duration(&mut self, key: &str, value: &Option<String>, default: Duration) -> Duration {
        match self.expand_opt(key, value) {
            None => default,
            Some(text) => match parse_duration(&text) {
                Ok(d) => d,
                Err(e) => {
                    self.problem(key, e);
                    default
                }
            },
        }
    }

    fn path(&self, text: &str) -> PathBuf {
        let p = PathBuf::from(text);
        if p.is_absolute() {
            p
        } else {
            self.base.join(p)
        }
    }

    fn config(&mut self, raw: RawConfig) -> Config {
        let listen = self
            .expand_opt("listen", &raw.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        if listen.parse::<std::net::SocketAddr>().is_err() && !listen.contains(':') {
            self.problem(
                "listen",
                format!("`{listen}` is not an address:port (example: 127.0.0.1:8080)"),
            );
        }
        let store_text = self
            .expand_opt("store", &raw.store)
            .unwrap_or_else(|| DEFAULT_STORE.to_owned());
        let store = self.store(&store_text);
        let max_body = match self.expand_opt("max_body", &raw.max_body) {
            None => DEFAULT_MAX_BODY,
            Some(text) => parse_size(&text).unwrap_or_else(|e| {
                self.problem("max_body", e);
                DEFAULT_MAX_BODY
            }),
        };
        let delivery = self.delivery(&raw.delivery);
        let retention = Retention {
            delivered: self.duration(
                "retention.delivered",
                &raw.retention.delivered,
                Retention::default().delivered,
            ),
            dead: self.duration(
                "retention.dead",
                &raw.retention.dead,
                Retention::default().dead,
            ),
        };
        let mut sources = BTreeMap::new();
        for (name, source) in &raw.sources {
            if let Some(s) = self.source(name, source) {
                sources.insert(name.clone(), s);
            }
        }
        if raw.sources.is_empty() {
            self.problem(
                "sources",
                "no sources: add at least one (e.g. `sources: { gitee: { secret: ... } }`) to receive webhooks",
            );
        }
        let mut channels = BTreeMap::new();
        for (name, channel) in &raw.channels {
            if let Some(c) = self.channel(name, channel, &delivery) {
                channels.insert(name.clone(), c);
            }
        }
        let routes = raw
            .routes
            .iter()
            .enumerate()
            .filter_map(|(i, r)| self.route(i, r, &raw.channels))
            .collect();
        let mut people = BTreeMap::new();
        for (login, p) in &raw.people {
            let key = format!("people.{login}");
            let person = Person {
                dingtalk: self.expand_opt(&format!("{key}.dingtalk"), &p.dingtalk),
                wecom: self.expand_opt(&format!("{key}.wecom"), &p.wecom),
                feishu: self.expand_opt(&format!("{key}.feishu"), &p.feishu),
                slack: self.expand_opt(&format!("{key}.slack"), &p.slack),
            };
            for (platform, id) in [
                ("dingtalk", &person.dingtalk),
                ("wecom", &person.wecom),
                ("feishu", &person.feishu),
                ("slack", &person.slack),
            ] {
                if let Some(id) = id
                    && !crate::render::mention::valid_id(id.trim())
                {
                    self.problem(
                        format!("{key}.{platform}"),
                        "an id is 1 to 64 letters, digits or `_ - . + @`",
                    );
                }
            }
            people.insert(login.clone(), person);
        }
        let templates = self
            .expand_opt("templates", &raw.templates)
            .map(|t| self.path(&t));
        if let Some(dir) = &templates
            && !dir.is_dir()
        {
            self.problem("templates", format!("`{}` is not a folder", dir.display()));
        }
        let timezone = self
            .expand_opt("timezone", &raw.timezone)
            .unwrap_or_else(|| crate::render::helpers::DEFAULT_TIME_ZONE.to_owned());
        if crate::render::helpers::parse_zone(&timezone).is_none() {
            self.problem(
                "timezone",
                format!(
                    "`{timezone}` is not a UTC offset: write it like +08:00, -05:30 or UTC (zone names such as Asia/Shanghai are not supported)"
                ),
            );
        }
        let admin = self.admin(&raw.admin);
        Config {
            path: self.file.clone(),
            listen,
            store,
            max_body: usize::try_from(max_body).unwrap_or(usize::MAX),
            sources,
            channels,
            routes,
            people,
            templates,
            timezone,
            delivery,
            retention,
            admin,
        }
    }

    fn admin(&mut self, raw: &raw::RawAdmin) -> AdminSettings {
        let token = self
            .expand_opt("admin.token", &raw.token)
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty());
        if let Some(t) = &token
            && t.chars().count() < MIN_ADMIN_TOKEN_LEN
        {
            // Never echo the value.
            self.problem(
                "admin.token",
                format!(
                    "is too short: use at least {MIN_ADMIN_TOKEN_LEN} random characters (e.g. `openssl rand -hex 24`), or leave it empty to turn the admin API off"
                ),
            );
        }
        AdminSettings {
            token: token.map(Secret::new),
        }
    }

    fn store(&mut self, text: &str) -> StoreLocation {
        if let Some(rest) = text.strip_prefix("sqlite:") {
            let rest = rest.trim_start_matches("//");
            let rest = rest.split('?').next().unwrap_or(rest);
            if rest == ":memory:" {
                return StoreLocation::Sqlite(PathBuf::from(":memory:"));
            }
            if rest.is_empty() {
                self.problem(
                    "store",
                    "a sqlite store needs a file path, e.g. sqlite://data/relay.db",
                );
            }
            StoreLocation::Sqlite(self.path(rest))
        } else if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            StoreLocation::Postgres(Secret::new(text))
        } else {
            self.problem(
                "store",
                "must start with sqlite:// (e.g. sqlite://data/relay.db) or postgres://",
            );
            StoreLocation::Sqlite(self.path("data/relay.db"))
        }
    }

    fn delivery(&mut self, raw: &RawDelivery) -> DeliverySettings {
        let d = DeliverySettings::default();
        let settings = DeliverySettings {
            workers: raw.workers.unwrap_or(d.workers),
            max_attempts: raw.max_attempts.unwrap_or(d.max_attempts),
            give_up_after: self.duration(
                "delivery.give_up_after",
                &raw.give_up_after,
                d.give_up_after,
            ),
            retry_first: self.duration("delivery.retry_first", &raw.retry_first, d.retry_first),
            retry_cap: self.duration("delivery.retry_cap", &raw.retry_cap, d.retry_cap),
            connect_timeout: self.duration(
                "delivery.connect_timeout",
                &raw.connect_timeout,
                d.connect_timeout,
            ),
            timeout: self.duration("delivery.timeout", &raw.timeout, d.timeout),
            rate_limit_pause: self.duration(
                "delivery.rate_limit_pause",
                &raw.rate_limit_pause,
                d.rate_limit_pause,
            ),
        };
        if settings.workers == 0 {
            self.problem("delivery.workers", "must be at least 1");
        }
        if settings.max_attempts == 0 {
            self.problem("delivery.max_attempts", "must be at least 1");
        }
        if settings.retry_first.is_zero() || settings.retry_first > settings.retry_cap {
            self.problem(
                "delivery.retry_first",
                "must be above zero and not above delivery.retry_cap",
            );
        }
        settings
    }

    fn source(&mut self, name: &str, raw: &RawSource) -> Option<Source> {
        let key = format!("sources.{name}");
        if !valid_name(name) {
            self.problem(
                &key,
                "source names may use only letters, digits, `-` and `_` (they become the URL /hooks/<name>)",
            );
        }
        let secret = self.expand_opt(&format!("{key}.secret"), &raw.secret);
        let password = self.expand_opt(&format!("{key}.password"), &raw.password);
        let max_skew = self.duration(&format!("{key}.max_skew"), &raw.max_skew, DEFAULT_MAX_SKEW);
        let auth = match (secret, password) {
            (Some(_), Some(_)) => {
                self.problem(
                    &key,
                    "set either `secret` (signature mode) or `password`, not both: Gitee uses one or the other",
                );
                return None;
            }
            (Some(s), None) if !s.is_empty() => SourceAuthConfig::Signature(Secret::new(s)),
            (None, Some(p)) if !p.is_empty() => SourceAuthConfig::Password(Secret::new(p)),
            (Some(_), None) | (None, Some(_)) => {
                self.problem(&key, "the secret or password is empty");
                return None;
            }
            (None, None) if raw.allow_unauthenticated => SourceAuthConfig::Unauthenticated,
            (None, None) => {
                self.problem(
                    &key,
                    "needs `secret` (Gitee's signing key, recommended) or `password`; \
                     to accept unauthenticated deliveries say `allow_unauthenticated: true`",
                );
                return None;
            }
        };
        Some(Source {
            name: name.to_owned(),
            auth,
            max_skew,
        })
    }

    fn channel(
        &mut self,
        name: &str,
        raw: &RawChannel,
        delivery: &DeliverySettings,
    ) -> Option<Channel> {
        let key = format!("channels.{name}");
        if !valid_name(name) {
            self.problem(
                &key,
                "channel names may use only letters, digits, `-` and `_`",
            );
        }
        let platform_text = self.expand_opt(&format!("{key}.platform"), &raw.platform);
        let platform = match platform_text {
            None => {
                self.problem(
                    format!("{key}.platform"),
                    "missing: one of dingtalk, wecom, feishu (or lark), slack",
                );
                None
            }
            Some(p) => {
                let kind = PlatformKind::parse(&p);
                if kind.is_none() {
                    self.problem(
                        format!("{key}.platform"),
                        format!(
                            "`{p}` is not a platform: use dingtalk, wecom, feishu (or lark), slack"
                        ),
                    );
                }
                kind
            }
        };
        let url = self.expand_opt(&format!("{key}.url"), &raw.url);
        let url_ok = match &url {
            None => {
                self.problem(format!("{key}.url"), "missing: the robot's webhook URL");
                false
            }
            Some(u) => match url::Url::parse(u) {
                Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => true,
                // Never echo the URL: it carries the robot's token.
                _ => {
                    self.problem(
                        format!("{key}.url"),
                        "is not an http(s) URL (the value is not shown because it holds the robot's token)",
                    );
                    false
                }
            },
        };
        let secret = self
            .expand_opt(&format!("{key}.secret"), &raw.secret)
            .filter(|s| !s.is_empty())
            .map(Secret::new);
        let keyword = self
            .expand_opt(&format!("{key}.keyword"), &raw.keyword)
            .filter(|s| !s.is_empty());
        if let (Some(p), Some(_)) = (platform, &secret)
            && matches!(p, PlatformKind::Wecom | PlatformKind::Slack)
        {
            self.problem(
                format!("{key}.secret"),
                format!("{p} robots are not signed: the token is in the URL; remove `secret`"),
            );
        }
        if let (Some(p), Some(_)) = (platform, &keyword)
            && matches!(p, PlatformKind::Wecom | PlatformKind::Slack)
        {
            self.problem(
                format!("{key}.keyword"),
                format!("{p} robots have no keyword mode; remove `keyword`"),
            );
        }
        let templates = self
            .expand_opt(&format!("{key}.templates"), &raw.templates)
            .map(|t| self.path(&t));
        if let Some(dir) = &templates
            && !dir.is_dir()
        {
            self.problem(
                format!("{key}.templates"),
                format!("`{}` is not a folder", dir.display()),
            );
        }
        let connect_timeout = self.duration(
            &format!("{key}.connect_timeout"),
            &raw.connect_timeout,
            delivery.connect_timeout,
        );
        let timeout = self.duration(&format!("{key}.timeout"), &raw.timeout, delivery.timeout);
        let rate = raw
            .rate
            .as_ref()
            .map(|r| self.rate(&format!("{key}.rate"), r));
        let digest_after = self.duration(
            &format!("{key}.digest_after"),
            &raw.digest_after,
            DEFAULT_DIGEST_AFTER,
        );
        let digest_after = (raw.digest != Some(false)).then_some(digest_after);
        Some(Channel {
            name: name.to_owned(),
            platform: platform?,
            url: Secret::new(url.filter(|_| url_ok)?),
            secret,
            keyword,
            dry_run: raw.dry_run,
            templates,
            connect_timeout,
            timeout,
            rate,
            digest_after,
        })
    }

    fn rate(&mut self, key: &str, raw: &RawRate) -> Vec<RateLimit> {
        let mut limits = Vec::new();
        if let Some(n) = raw.per_second {
            limits.push(RateLimit {
                max: n,
                per: Duration::from_secs(1),
            });
        }
        if let Some(n) = raw.per_minute {
            limits.push(RateLimit {
                max: n,
                per: Duration::from_secs(60),
            });
        }
        match (raw.max, &raw.per) {
            (Some(max), Some(per)) => {
                let per = self.duration(
                    &format!("{key}.per"),
                    &Some(per.clone()),
                    Duration::from_secs(60),
                );
                limits.push(RateLimit { max, per });
            }
            (None, None) => {}
            _ => self.problem(
                key,
                "`max` and `per` go together (at most `max` messages in any `per`)",
            ),
        }
        if limits.is_empty() {
            self.problem(key, "give per_second, per_minute, or max with per");
        }
        if limits.iter().any(|l| l.max == 0 || l.per.is_zero()) {
            self.problem(
                key,
                "a rate must allow at least one message in a non-empty window",
            );
        }
        limits
    }

    fn patterns(&mut self, key: &str, values: &Option<Vec<String>>) -> Vec<glob::Pattern> {
        let mut out = Vec::new();
        for (i, value) in values.iter().flatten().enumerate() {
            let item_key = format!("{key}[{i}]");
            let Some(text) = self.expand(&item_key, value) else {
                continue;
            };
            match glob::Pattern::new(&text) {
                Ok(p) => out.push(p),
                Err(e) => self.problem(item_key, format!("`{text}` is not a valid glob: {e}")),
            }
        }
        out
    }

    fn route(
        &mut self,
        index: usize,
        raw: &RawRoute,
        channels: &BTreeMap<String, RawChannel>,
    ) -> Option<Route> {
        let key = format!("routes[{index}]");
        let mut events = Vec::new();
        for (i, e) in raw.events.iter().flatten().enumerate() {
            match EventKind::parse(e) {
                Some(kind) => events.push(kind),
                None => self.problem(
                    format!("{key}.events[{i}]"),
                    format!("`{e}` is not an event: use push, tag_push, issue, merge_request (or pull_request), note"),
                ),
            }
        }
        if raw.to.is_empty() {
            self.problem(format!("{key}.to"), "names no channel: list at least one");
        }
        for (i, to) in raw.to.iter().enumerate() {
            if !channels.contains_key(to) {
                let known: Vec<&str> = channels.keys().map(String::as_str).collect();
                self.problem(
                    format!("{key}.to[{i}]"),
                    format!("no channel named `{to}` (channels: {})", known.join(", ")),
                );
            }
        }
        Some(Route {
            repos: self.patterns(&format!("{key}.repos"), &raw.repos),
            events,
            actions: self.patterns(&format!("{key}.actions"), &raw.actions),
            branches: self.patterns(&format!("{key}.branches"), &raw.branches),
            to: raw.to.clone(),
            mention: raw.mention.unwrap_or(true),
        })
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests;
