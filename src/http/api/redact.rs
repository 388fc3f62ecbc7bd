//! Nothing secret leaves the admin API: payload fields that carry credentials are masked by
//! name, and every string of every response is scrubbed of the config's secret values (webhook
//! passwords and signing keys, robot tokens and signing secrets, the admin token, the
//! PostgreSQL password) wherever they appear.

use serde_json::Value;

use crate::config::{Config, SourceAuthConfig, StoreLocation};

/// What replaces a secret.
pub const MASK: &str = "***";

/// Payload keys whose values are credentials: Gitee's `password` (password mode) and `sign`
/// (signature mode), and generic names a future payload might carry.
const SECRET_KEYS: [&str; 5] = ["password", "sign", "secret", "token", "access_token"];

/// Values shorter than this are not scrubbed from free text: a 3-letter "secret" would shred
/// ordinary words. (The config refuses no secret for being short, but robot tokens and
/// Gitee keys are long.)
const MIN_SCRUB_LEN: usize = 6;

/// Masks the values of credential keys (at any depth) in a payload.
pub fn mask_payload(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let lower = key.to_ascii_lowercase();
                if SECRET_KEYS.contains(&lower.as_str()) && !v.is_null() && v != "" {
                    *v = Value::String(MASK.to_owned());
                } else {
                    mask_payload(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_payload),
        _ => {}
    }
}

/// The secret values of one config, longest first.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub fn from_config(config: &Config) -> Redactor {
        let mut secrets: Vec<String> = Vec::new();
        for source in config.sources.values() {
            match &source.auth {
                SourceAuthConfig::Signature(s) | SourceAuthConfig::Password(s) => {
                    secrets.push(s.expose().to_owned())
                }
                SourceAuthConfig::Unauthenticated => {}
            }
        }
        for channel in config.channels.values() {
            let url = channel.url.expose();
            secrets.push(url.to_owned());
            secrets.extend(url_secrets(url));
            if let Some(s) = &channel.secret {
                secrets.push(s.expose().to_owned());
            }
        }
        if let Some(token) = &config.admin.token {
            secrets.push(token.expose().to_owned());
        }
        if let StoreLocation::Postgres(url) = &config.store {
            secrets.push(url.expose().to_owned());
            secrets.extend(url_secrets(url.expose()));
        }
        secrets.retain(|s| s.chars().count() >= MIN_SCRUB_LEN);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    /// `text` with every secret replaced by [`MASK`].
    pub fn scrub_str(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
    }

    /// Scrubs every string (and object key) in `value`.
    pub fn scrub(&self, value: &mut Value) {
        match value {
            Value::String(s) if self.secrets.iter().any(|x| s.contains(x.as_str())) => {
                *s = self.scrub_str(s);
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.scrub(v)),
            Value::Object(map) => {
                let dirty_key = map
                    .keys()
                    .any(|k| self.secrets.iter().any(|x| k.contains(x.as_str())));
                if dirty_key {
                    let old = std::mem::take(map);
                    for (k, v) in old {
                        map.insert(self.scrub_str(&k), v);
                    }
                }
                map.values_mut().for_each(|v| self.scrub(v));
            }
            _ => {}
        }
    }
}

/// A URL part that may be a token: long, or with a digit (so `lang=markdown`-style words that
/// also appear in messages are left alone).
fn token_like(s: &str) -> bool {
    s.len() >= 16 || (s.len() >= MIN_SCRUB_LEN && s.bytes().any(|b| b.is_ascii_digit()))
}

/// The token-like parts of a URL: password, query values, the last path segment and Slack's
/// `/services/…` segments (Feishu and Slack carry their tokens in the path), raw and
/// percent-decoded.
fn url_secrets(raw: &str) -> Vec<String> {
    let Ok(url) = url::Url::parse(raw) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (_, v) in url.query_pairs() {
        out.push(v.into_owned());
    }
    if let Some(query) = url.query() {
        out.extend(
            query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(_, v)| v.to_owned()),
        );
    }
    if let Some(segments) = url.path_segments() {
        let segments: Vec<&str> = segments.collect();
        let n = segments.len();
        // Slack: /services/T…/B…/secret; Feishu: /open-apis/bot/v2/hook/<id>; any long
        // random-looking segment.
        let after_services = segments
            .iter()
            .position(|s| *s == "services")
            .map_or(n, |i| i + 1);
        for (i, seg) in segments.iter().enumerate() {
            if i + 1 == n || i >= after_services || seg.len() >= 16 {
                out.push((*seg).to_owned());
                out.push(decode(seg));
            }
        }
    }
    out.retain(|s| token_like(s));
    // A password is a secret whatever it looks like.
    if let Some(p) = url.password() {
        out.push(p.to_owned());
        out.push(decode(p));
    }
    out
}

fn decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn credential_fields_are_masked_at_any_depth() {
        let mut v = json!({
            "password": "hunter22", "sign": "abc=", "timestamp": 1,
            "hook": { "Token": "t", "name": "x" }, "list": [{ "secret": "s" }],
            "empty": { "password": "" }
        });
        mask_payload(&mut v);
        assert_eq!(v["password"], MASK);
        assert_eq!(v["sign"], MASK);
        assert_eq!(v["timestamp"], 1);
        assert_eq!(v["hook"]["Token"], MASK);
        assert_eq!(v["hook"]["name"], "x");
        assert_eq!(v["list"][0]["secret"], MASK);
        assert_eq!(v["empty"]["password"], "");
    }

    #[test]
    fn secrets_are_scrubbed_from_every_string_and_key() {
        let r = Redactor {
            secrets: vec!["longer-secret".into(), "secret".into()],
        };
        let mut v =
            json!({ "a": "x longer-secret y secret", "longer-secret": ["secret!"], "n": 5 });
        r.scrub(&mut v);
        assert_eq!(v, json!({ "a": "x *** y ***", "***": ["***!"], "n": 5 }));
    }

    #[test]
    fn url_tokens_are_found_in_query_and_path() {
        let s = url_secrets(
            "https://u:p%40ss@x.com/services/T0001AB/B0002CD/abcdefgh123?access_token=tok%2Ben9&k=v",
        );
        for want in [
            "abcdefgh123",
            "T0001AB",
            "B0002CD",
            "tok+en9",
            "tok%2Ben9",
            "p@ss",
        ] {
            assert!(s.iter().any(|x| x == want), "{want}: {s:?}");
        }
        // Ordinary path words are not secrets (they would be scrubbed from every text).
        assert!(!s.iter().any(|x| x == "services"), "{s:?}");
        let words = url_secrets("https://proxy.example/send?format=markdown&key=k3y-1234567");
        assert!(!words.iter().any(|x| x == "markdown"), "{words:?}");
        assert!(words.iter().any(|x| x == "k3y-1234567"), "{words:?}");
        let f = url_secrets("https://open.feishu.cn/open-apis/bot/v2/hook/0a1b2c3d-4e5f");
        assert!(f.iter().any(|x| x == "0a1b2c3d-4e5f"), "{f:?}");
        assert!(!f.iter().any(|x| x == "open-apis" || x == "hook"), "{f:?}");
    }
}
