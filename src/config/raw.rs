//! The config file as written: every scalar a user may take from the environment is a string
//! here, so `${VAR}` can be expanded before it is interpreted.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub listen: Option<String>,
    pub store: Option<String>,
    pub max_body: Option<String>,
    #[serde(default)]
    pub sources: BTreeMap<String, RawSource>,
    #[serde(default)]
    pub channels: BTreeMap<String, RawChannel>,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    #[serde(default)]
    pub people: BTreeMap<String, RawPerson>,
    pub templates: Option<String>,
    /// The zone message times are shown in: `+08:00` (default), `-05:30`, `UTC`.
    pub timezone: Option<String>,
    #[serde(default)]
    pub delivery: RawDelivery,
    #[serde(default)]
    pub retention: RawRetention,
    #[serde(default)]
    pub admin: RawAdmin,
}

/// The admin API and web console: `admin: { token: ... }`; no token (or an empty one) turns
/// them off.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub token: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    pub delivered: Option<String>,
    pub dead: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub secret: Option<String>,
    pub password: Option<String>,
    pub max_skew: Option<String>,
    #[serde(default)]
    pub allow_unauthenticated: bool,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawChannel {
    pub platform: Option<String>,
    pub url: Option<String>,
    pub secret: Option<String>,
    pub keyword: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
    pub templates: Option<String>,
    pub connect_timeout: Option<String>,
    pub timeout: Option<String>,
    pub rate: Option<RawRate>,
    /// Merge the backlog into digests when it cannot drain within this long at the
    /// channel's pace (default 60s); `digest: false` turns digests off.
    pub digest_after: Option<String>,
    pub digest: Option<bool>,
}

/// A channel's own quota, replacing the platform's default.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRate {
    pub per_second: Option<u32>,
    pub per_minute: Option<u32>,
    /// With `per`: at most `max` messages in any window of length `per`.
    pub max: Option<u32>,
    pub per: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub repos: Option<Vec<String>>,
    pub events: Option<Vec<String>>,
    pub actions: Option<Vec<String>>,
    pub branches: Option<Vec<String>>,
    #[serde(default)]
    pub to: Vec<String>,
    pub mention: Option<bool>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawPerson {
    pub dingtalk: Option<String>,
    pub wecom: Option<String>,
    pub feishu: Option<String>,
    pub slack: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawDelivery {
    pub workers: Option<u32>,
    pub max_attempts: Option<u32>,
    pub give_up_after: Option<String>,
    pub retry_first: Option<String>,
    pub retry_cap: Option<String>,
    pub connect_timeout: Option<String>,
    pub timeout: Option<String>,
    pub rate_limit_pause: Option<String>,
}
