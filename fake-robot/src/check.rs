//! Platform-independent plumbing shared by the four fakes: the request view, reply and
//! refusal types, and small JSON/query helpers.

use serde_json::{Map, Value};
use std::time::Duration;

use crate::RobotOptions;

/// The parts of an HTTP request the checks look at.
pub(crate) struct Incoming<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// Raw (still percent-encoded) query string, without `?`.
    pub query: &'a str,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// Context of one check: options plus the robot's view of "now" since the Unix epoch.
pub(crate) struct Ctx<'a> {
    pub options: &'a RobotOptions,
    pub now: Duration,
}

/// An HTTP reply, kept platform-neutral until it is turned into a hyper response.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
}

pub(crate) const JSON_CT: &str = "application/json; charset=utf-8";
pub(crate) const TEXT_CT: &str = "text/plain; charset=utf-8";
pub(crate) const HTML_CT: &str = "text/html";

impl Reply {
    pub fn json(status: u16, body: String) -> Self {
        Reply {
            status,
            content_type: JSON_CT,
            body,
            headers: Vec::new(),
        }
    }
    pub fn text(status: u16, content_type: &'static str, body: impl Into<String>) -> Self {
        Reply {
            status,
            content_type,
            body: body.into(),
            headers: Vec::new(),
        }
    }
}

/// A request the robot refuses: what to send back and what to record.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub reply: Reply,
    pub code: String,
    pub reason: String,
}

impl Refusal {
    /// A bare HTTP error (used for unknown paths / methods on DingTalk, WeCom, Feishu).
    pub fn http(status: u16, body: &str, reason: impl Into<String>) -> Self {
        Refusal {
            reply: Reply::text(status, TEXT_CT, body),
            code: status.to_string(),
            reason: reason.into(),
        }
    }
}

/// A request that passed every content check (quota not yet applied).
pub(crate) struct Valid {
    pub value: Value,
    pub raw: String,
    pub notes: Vec<String>,
}

/// `true` when the media type is `application/json` (parameters such as charset allowed).
pub(crate) fn is_json_content_type(ct: Option<&str>) -> bool {
    ct.and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// Body → UTF-8 string → JSON object. The error says which step failed.
pub(crate) fn parse_object(body: &[u8]) -> Result<(String, Value), String> {
    let raw = std::str::from_utf8(body).map_err(|e| format!("body is not UTF-8: {e}"))?;
    let value: Value = serde_json::from_str(raw).map_err(|e| format!("body is not JSON: {e}"))?;
    if !value.is_object() {
        return Err("body is not a JSON object".into());
    }
    Ok((raw.to_owned(), value))
}

/// First value of `name` in a raw query string, percent-decoded exactly once
/// (`application/x-www-form-urlencoded` rules, so a literal `+` decodes to a space,
/// as a servlet's `getParameter` does).
pub(crate) fn query_param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A required, non-empty string field.
pub(crate) fn req_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a str, String> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => Err(format!("{path}.{key} is empty")),
        Some(_) => Err(format!("{path}.{key} is not a string")),
        None => Err(format!("{path}.{key} is missing")),
    }
}

/// An optional string field: absent or a string.
pub(crate) fn opt_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a str>, String> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{path}.{key} is not a string")),
    }
}

/// A required JSON object field.
pub(crate) fn req_obj<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a Map<String, Value>, String> {
    match obj.get(key) {
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(format!("{path}.{key} is not an object")),
        None => Err(format!("{path}.{key} is missing")),
    }
}

/// A required JSON array field.
pub(crate) fn req_arr<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a Vec<Value>, String> {
    match obj.get(key) {
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(format!("{path}.{key} is not an array")),
        None => Err(format!("{path}.{key} is missing")),
    }
}

/// An optional field that, when present, must be an array of strings.
pub(crate) fn opt_string_array(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<(), String> {
    match obj.get(key) {
        None => Ok(()),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => Ok(()),
        Some(_) => Err(format!("{path}.{key} must be an array of strings")),
    }
}

/// An optional field that, when present, must be an array with at most `max` items.
pub(crate) fn opt_array_max(
    obj: &Map<String, Value>,
    key: &str,
    max: usize,
    path: &str,
) -> Result<(), String> {
    match obj.get(key) {
        None => Ok(()),
        Some(Value::Array(a)) if a.len() <= max => Ok(()),
        Some(Value::Array(a)) => Err(format!("{path}.{key} has {} items, max {max}", a.len())),
        Some(_) => Err(format!("{path}.{key} is not an array")),
    }
}

/// Keyword mode: `true` when no keywords are configured or one of `texts` contains one.
pub(crate) fn keywords_ok(keywords: &[String], texts: &[&str]) -> bool {
    keywords.is_empty()
        || texts
            .iter()
            .any(|t| keywords.iter().any(|k| t.contains(k.as_str())))
}

/// `|a - b| <= tolerance`.
pub(crate) fn within(a: u128, b: u128, tolerance: u128) -> bool {
    a.abs_diff(b) <= tolerance
}

/// A non-empty string of ASCII digits (what a decimal Unix timestamp looks like).
pub(crate) fn is_decimal(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// An absolute `http`/`https` URL with a host.
pub(crate) fn is_http_url(s: &str) -> bool {
    url::Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type() {
        assert!(is_json_content_type(Some("application/json")));
        assert!(is_json_content_type(Some(
            "Application/JSON; charset=utf-8"
        )));
        assert!(!is_json_content_type(Some("text/plain")));
        assert!(!is_json_content_type(Some("application/jsonx")));
        assert!(!is_json_content_type(None));
    }

    #[test]
    fn query_decoding_is_single() {
        assert_eq!(
            query_param("a=1&sign=ab%2Bc%3D", "sign").as_deref(),
            Some("ab+c=")
        );
        assert_eq!(
            query_param("sign=ab%252Bc", "sign").as_deref(),
            Some("ab%2Bc")
        );
        assert_eq!(query_param("sign=ab+c", "sign").as_deref(), Some("ab c"));
        assert_eq!(query_param("x=1", "sign"), None);
        assert_eq!(query_param("sign=1&sign=2", "sign").as_deref(), Some("1"));
    }

    #[test]
    fn parse_object_rejects() {
        assert!(parse_object(b"{}").is_ok());
        assert!(parse_object(b"[]").is_err());
        assert!(parse_object(b"{").is_err());
        assert!(parse_object(b"\xff{}").is_err());
        assert!(parse_object(b"").is_err());
    }

    #[test]
    fn urls() {
        assert!(is_http_url("https://gitee.com/o/r"));
        assert!(is_http_url("http://127.0.0.1:8080/x"));
        assert!(!is_http_url("ftp://x.y/"));
        assert!(!is_http_url("not a url"));
        assert!(!is_http_url("/relative"));
    }

    #[test]
    fn keywords() {
        let kw = vec!["gitee".to_string(), "ci".to_string()];
        assert!(keywords_ok(&[], &["anything"]));
        assert!(keywords_ok(&kw, &["x", "from gitee"]));
        assert!(!keywords_ok(&kw, &["nothing here"]));
        assert!(!keywords_ok(&kw, &[]));
    }
}
