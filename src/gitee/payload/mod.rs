//! Typed, lenient parsing of Gitee hook bodies (Push, Tag Push, Issue, Merge Request, Note)
//! and their mapping to the template-facing [`EventContext`](super::EventContext).
//!
//! Parsing is two-step: the body is parsed into a [`serde_json::Value`] first (UTF-8 checked,
//! serde_json's nesting limit of 128 applies, so hostile nesting is an error, never a stack
//! overflow), then the typed hook is read from that value with `serde_path_to_error` so a
//! structural mismatch reports where it is. Scalars are lenient (see the `de` module).
//!
//! ```no_run
//! # use gitee_relay::gitee::payload;
//! # let (header, body, now_ms) = (Some("Push Hook"), b"{}".as_slice(), 0);
//! let kind = payload::detect_kind(header, body).expect("unsupported event");
//! let raw = payload::parse_json(body)?;
//! let delivery = payload::parse_value(kind, &raw)?;
//! let ctx = delivery.context("main", false, now_ms, raw);
//! # Ok::<(), payload::PayloadError>(())
//! ```

mod de;
mod map;
mod types;

#[cfg(test)]
mod tests;

use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use super::kind::EventKind;

pub use map::redact;
pub use types::{
    Branch, Comment, Commit, Enterprise, Envelope, Issue, IssueHook, Label, MergeRequestHook,
    Milestone, NoteHook, Project, PullRequest, PushHook, RepoPair, User,
};

/// A parsed delivery: the typed body plus the routing facts derived from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub kind: EventKind,
    /// Push: `push`, `create` or `delete`; tag push: `create` or `delete`; others: the body's
    /// `action` lowercased (`open`, `update`, `merge`, `comment`...; `""` when absent).
    pub action: String,
    /// `namespace/repo` of the target repository (`""` if Gitee sent none).
    pub repo: String,
    /// Push: the branch; tag push: the tag name; merge request: the target branch;
    /// note on a pull request: the PR's target branch; otherwise `None`.
    pub branch: Option<String>,
    pub payload: Payload,
}

/// The typed body of a delivery.
///
/// Boxed: unboxed, the enum was the size of its largest variant (8.4 KB, a merge request)
/// and every move of a `Payload` or a `Delivery` (out of the parse, into the delivery, back to
/// the caller) copied all of it: `memmove` was 11 % of the push sample's parse, and boxing
/// took ≈ 5 % off it (`parse/push`).
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Push(Box<PushHook>),
    TagPush(Box<PushHook>),
    Issue(Box<IssueHook>),
    MergeRequest(Box<MergeRequestHook>),
    Note(Box<NoteHook>),
}

impl Payload {
    /// The fields every hook carries.
    pub fn envelope(&self) -> &dyn Envelope {
        match self {
            Payload::Push(h) | Payload::TagPush(h) => h.as_ref(),
            Payload::Issue(h) => h.as_ref(),
            Payload::MergeRequest(h) => h.as_ref(),
            Payload::Note(h) => h.as_ref(),
        }
    }
}

/// A body that is not valid JSON, not an object, or whose structure does not match the event.
/// `reason` names the JSON types involved but never a field's value (bodies carry secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadError {
    /// The event the body was parsed as, when known.
    pub kind: Option<EventKind>,
    /// Where the problem is, e.g. `commits[0].author`; `.` for the body itself.
    pub path: String,
    pub reason: String,
}

impl PayloadError {
    fn root(kind: Option<EventKind>, reason: impl Into<String>) -> Self {
        PayloadError {
            kind,
            path: ".".to_owned(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Some(kind) => write!(f, "invalid {} payload", hook_title(kind))?,
            None => f.write_str("invalid payload")?,
        }
        write!(f, " at `{}`: {}", self.path, self.reason)
    }
}

impl std::error::Error for PayloadError {}

/// Gitee's `X-Gitee-Event` spelling of a kind.
pub fn hook_title(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Push => "Push Hook",
        EventKind::TagPush => "Tag Push Hook",
        EventKind::Issue => "Issue Hook",
        EventKind::MergeRequest => "Merge Request Hook",
        EventKind::Note => "Note Hook",
    }
}

/// The event kind of a delivery: from the `X-Gitee-Event` header (`Push Hook`, or the
/// `push_hooks` spelling seen on some test deliveries), else from the body's `hook_name`.
/// `None` for unsupported events and for bodies that are not JSON objects.
pub fn detect_kind(event_header: Option<&str>, body: &[u8]) -> Option<EventKind> {
    if let Some(kind) = event_header.and_then(EventKind::parse) {
        return Some(kind);
    }
    #[derive(Deserialize)]
    struct HookName {
        #[serde(default, deserialize_with = "de::str")]
        hook_name: String,
    }
    // serde_json skips the other fields without recursion, so deep bodies are harmless here.
    let name: HookName = serde_json::from_slice(body).ok()?;
    EventKind::parse(&name.hook_name)
}

/// [`detect_kind`] for a body that is already parsed.
pub fn detect_kind_in_value(event_header: Option<&str>, body: &Value) -> Option<EventKind> {
    event_header.and_then(EventKind::parse).or_else(|| {
        body.get("hook_name")
            .and_then(Value::as_str)
            .and_then(EventKind::parse)
    })
}

/// Parses a body into a JSON value: it must be UTF-8 and a JSON object, nested at most 128
/// levels deep. This is the `raw` to hand to [`Delivery::context`].
pub fn parse_json(body: &[u8]) -> Result<Value, PayloadError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| PayloadError::root(None, "body is not valid UTF-8"))?;
    let value: Value = serde_json::from_str(text)
        .map_err(|e| PayloadError::root(None, format!("invalid JSON: {e}")))?;
    if !value.is_object() {
        return Err(PayloadError::root(
            None,
            format!("expected an object, found {}", json_type(&value)),
        ));
    }
    Ok(value)
}

/// Parses a delivery body as the given kind: the same result as [`parse_json`] followed by
/// [`parse_value`], in one pass over the bytes when the body is well formed.
///
/// The fast path reads the typed hook straight from the bytes (no intermediate
/// [`serde_json::Value`], no path tracking: about half the time of the two steps). It is
/// taken only for bodies the two steps are known to accept alike (UTF-8, an object, nested
/// well below the limit, no `\uD…` escapes: the value parser rejects lone surrogates, the
/// skipping of unknown fields does not look); anything it refuses goes through the two steps,
/// which either accept it too or name the problem with its JSON path.
pub fn parse(kind: EventKind, body: &[u8]) -> Result<Delivery, PayloadError> {
    if let Some(delivery) = parse_fast(kind, body) {
        return Ok(delivery);
    }
    let value = parse_json(body).map_err(|e| PayloadError {
        kind: Some(kind),
        ..e
    })?;
    parse_value(kind, &value)
}

/// [`parse`]'s fast path alone: `Some` for a well-formed body of `kind`, `None` when the two
/// steps must decide (and word the error). Callers that report errors in their own words run
/// their two-step code on `None`.
pub fn parse_fast(kind: EventKind, body: &[u8]) -> Option<Delivery> {
    let text = std::str::from_utf8(body).ok()?;
    if !fast_path_safe(body) {
        return None;
    }
    // From the checked text, not the bytes: serde_json then does not check every string's
    // UTF-8 a second time.
    let payload = match kind {
        EventKind::Push => Payload::Push(serde_json::from_str(text).ok()?),
        EventKind::TagPush => Payload::TagPush(serde_json::from_str(text).ok()?),
        EventKind::Issue => Payload::Issue(serde_json::from_str(text).ok()?),
        EventKind::MergeRequest => Payload::MergeRequest(serde_json::from_str(text).ok()?),
        EventKind::Note => Payload::Note(serde_json::from_str(text).ok()?),
    };
    Some(map::delivery(kind, payload))
}

/// Nesting at which the fast path hands over to the value parser (whose limit is 128).
const FAST_PATH_MAX_DEPTH: usize = 64;

/// Whether a body may take [`parse`]'s fast path: it starts with `{`, is nested less than
/// [`FAST_PATH_MAX_DEPTH`] deep, has no `\uD…` escape (the surrogates are among them) and no
/// number with an exponent or of 20 digits or more (the value parser refuses numbers beyond
/// `f64`; skipping an unknown field only checks their syntax). One pass, no allocation; a
/// malformed body may pass (the typed parse then fails).
fn fast_path_safe(body: &[u8]) -> bool {
    let start = body.iter().position(|b| !b.is_ascii_whitespace());
    if start.is_none_or(|i| body[i] != b'{') {
        return false;
    }
    let (mut depth, mut i) = (0usize, 0usize);
    let mut digits = 0usize;
    while i < body.len() {
        let b = body[i];
        if b == b'"' {
            // Most of a body is inside strings, where only a quote or a backslash matters:
            // jumped to with memchr's vector search instead of a branch per byte (the scan
            // byte by byte was a third of the whole parse).
            match skip_string(body, i + 1) {
                Some(after) => i = after,
                None => return false,
            }
            digits = 0;
            continue;
        }
        // Outside strings, letters only spell true, false and null, or an exponent.
        if b.is_ascii_digit() {
            digits += 1;
            if digits >= 20 {
                return false;
            }
        } else if matches!(b, b'e' | b'E') && digits > 0 {
            return false;
        } else if b != b'.' {
            digits = 0;
        }
        match b {
            b'{' | b'[' => {
                depth += 1;
                if depth >= FAST_PATH_MAX_DEPTH {
                    return false;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    true
}

/// From just inside a string's opening quote: the index after its closing quote, or `None`
/// when it holds a `\uD…` escape or never ends (the fast path hands over either way).
fn skip_string(body: &[u8], mut i: usize) -> Option<usize> {
    loop {
        i += memchr::memchr2(b'"', b'\\', body.get(i..)?)?;
        if body[i] == b'"' {
            return Some(i + 1);
        }
        if body.get(i + 1) == Some(&b'u')
            && body
                .get(i + 2)
                .is_some_and(|c| c.eq_ignore_ascii_case(&b'd'))
        {
            return None;
        }
        // Skip the escaped character (it may be a quote).
        i += 2;
    }
}

/// Parses an already-parsed body as the given kind.
pub fn parse_value(kind: EventKind, body: &Value) -> Result<Delivery, PayloadError> {
    let payload = match kind {
        EventKind::Push => Payload::Push(typed(kind, body)?),
        EventKind::TagPush => Payload::TagPush(typed(kind, body)?),
        EventKind::Issue => Payload::Issue(typed(kind, body)?),
        EventKind::MergeRequest => Payload::MergeRequest(typed(kind, body)?),
        EventKind::Note => Payload::Note(typed(kind, body)?),
    };
    Ok(map::delivery(kind, payload))
}

fn typed<'a, T: Deserialize<'a>>(kind: EventKind, body: &'a Value) -> Result<T, PayloadError> {
    if !body.is_object() {
        return Err(PayloadError::root(
            Some(kind),
            format!("expected an object, found {}", json_type(body)),
        ));
    }
    serde_path_to_error::deserialize(body).map_err(|e| PayloadError {
        kind: Some(kind),
        path: e.path().to_string(),
        reason: e.into_inner().to_string(),
    })
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
