//! What each platform accepts: the minimal shape of a body and its size limits
//! (`spec/im-platforms.md`). Checked on every rendered body so that a message the platform
//! would refuse is caught here, with the exact limit named, instead of at the robot.
//!
//! Sizes are measured on the compact JSON serialisation (what the platform module sends), in
//! UTF-8 bytes for DingTalk, WeCom and Feishu and in characters for Slack.

use std::fmt;

use serde_json::Value;

use crate::platform::PlatformKind;

/// DingTalk: whole request body (error 460101 beyond).
pub const DINGTALK_MAX_BODY_BYTES: usize = 20_000;
/// WeCom: `text.content`.
pub const WECOM_MAX_TEXT_BYTES: usize = 2048;
/// WeCom: `markdown.content` and `markdown_v2.content` (error 40058 beyond).
pub const WECOM_MAX_MARKDOWN_BYTES: usize = 4096;
/// Feishu: request body. The bot guide says 20 KB (other pages 30 KB); 20 000 bytes leaves room
/// for the `timestamp` and `sign` fields (about 80 bytes) added when signing.
pub const FEISHU_MAX_BODY_BYTES: usize = 20_000;
/// Slack: blocks per message.
pub const SLACK_MAX_BLOCKS: usize = 50;
/// Slack: `text` of a section (and of any other text object except the header's).
pub const SLACK_MAX_SECTION_CHARS: usize = 3000;
/// Slack: each of a section's `fields`.
pub const SLACK_MAX_FIELD_CHARS: usize = 2000;
/// Slack: a section's `fields`.
pub const SLACK_MAX_FIELDS: usize = 10;
/// Slack: a header's `plain_text`.
pub const SLACK_MAX_HEADER_CHARS: usize = 150;
/// Slack: a context block's elements.
pub const SLACK_MAX_CONTEXT_ELEMENTS: usize = 10;
/// Slack: an actions block's elements.
pub const SLACK_MAX_ACTIONS_ELEMENTS: usize = 25;
/// Slack: a button's text.
pub const SLACK_MAX_BUTTON_TEXT_CHARS: usize = 75;
/// Slack: the top-level `text` (Slack truncates beyond).
pub const SLACK_MAX_TEXT_CHARS: usize = 40_000;

/// How a limit is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Chars,
    Items,
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unit::Bytes => "bytes",
            Unit::Chars => "characters",
            Unit::Items => "items",
        })
    }
}

/// One limit that a body exceeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded {
    /// The JSON path measured (`body`, `markdown.content`, `blocks[1].text.text`...).
    pub field: String,
    pub actual: usize,
    pub max: usize,
    pub unit: Unit,
}

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is {} {}, the limit is {}",
            self.field, self.actual, self.unit, self.max
        )
    }
}

/// A body that is not a message of the platform, or exceeds one of its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    Schema(String),
    TooLarge(Exceeded),
}

fn too_large(
    field: impl Into<String>,
    actual: usize,
    max: usize,
    unit: Unit,
) -> Result<(), Violation> {
    if actual > max {
        Err(Violation::TooLarge(Exceeded {
            field: field.into(),
            actual,
            max,
            unit,
        }))
    } else {
        Ok(())
    }
}

fn schema(msg: impl Into<String>) -> Violation {
    Violation::Schema(msg.into())
}

/// Bytes the size fitting leaves free under DingTalk's and Feishu's body limits for what the
/// platform module adds at send time: a keyword (keyword mode) and Feishu's `timestamp` and
/// `sign`. Keywords longer than about 150 bytes could still push a fitted body over.
pub const SEND_TIME_RESERVE_BYTES: usize = 256;

/// Checks the shape and the limits of a rendered body.
pub fn check(platform: PlatformKind, body: &Value) -> Result<(), Violation> {
    check_with_reserve(platform, body, 0)
}

/// [`check`] with [`SEND_TIME_RESERVE_BYTES`] kept free under the whole-body limits: the
/// target of the size fitting.
pub fn check_fitted(platform: PlatformKind, body: &Value) -> Result<(), Violation> {
    check_with_reserve(platform, body, SEND_TIME_RESERVE_BYTES)
}

fn check_with_reserve(
    platform: PlatformKind,
    body: &Value,
    reserve: usize,
) -> Result<(), Violation> {
    let obj = body
        .as_object()
        .ok_or_else(|| schema("the body is not a JSON object"))?;
    let body_bytes = || serde_json::to_string(body).map_or(0, |s| s.len());
    match platform {
        PlatformKind::Dingtalk => {
            let msgtype = obj
                .get("msgtype")
                .and_then(Value::as_str)
                .ok_or_else(|| schema("`msgtype` (a string) is missing"))?;
            // The body object is named like the type: `markdown`, `actionCard`, `feedCard`...
            if !obj.get(msgtype).is_some_and(Value::is_object) {
                return Err(schema(format!(
                    "`msgtype` is {msgtype:?} but there is no `{msgtype}` object"
                )));
            }
            too_large(
                "body",
                body_bytes(),
                DINGTALK_MAX_BODY_BYTES - reserve,
                Unit::Bytes,
            )
        }
        PlatformKind::Wecom => {
            let msgtype = obj
                .get("msgtype")
                .and_then(Value::as_str)
                .ok_or_else(|| schema("`msgtype` (a string) is missing"))?;
            let inner = obj.get(msgtype).and_then(Value::as_object).ok_or_else(|| {
                schema(format!(
                    "`msgtype` is {msgtype:?} but there is no `{msgtype}` object"
                ))
            })?;
            let max = match msgtype {
                "text" => Some(WECOM_MAX_TEXT_BYTES),
                "markdown" | "markdown_v2" => Some(WECOM_MAX_MARKDOWN_BYTES),
                _ => None,
            };
            if let Some(max) = max {
                let content = inner
                    .get("content")
                    .and_then(Value::as_str)
                    .ok_or_else(|| schema(format!("`{msgtype}.content` (a string) is missing")))?;
                if content.is_empty() {
                    return Err(schema(format!("`{msgtype}.content` is empty")));
                }
                too_large(
                    format!("{msgtype}.content"),
                    content.len(),
                    max,
                    Unit::Bytes,
                )?;
            }
            Ok(())
        }
        PlatformKind::Feishu => {
            let msg_type = obj
                .get("msg_type")
                .and_then(Value::as_str)
                .ok_or_else(|| schema("`msg_type` (a string) is missing"))?;
            if msg_type == "interactive" && !obj.get("card").is_some_and(Value::is_object) {
                return Err(schema(
                    "`msg_type` is \"interactive\" but there is no `card` object",
                ));
            }
            if msg_type != "interactive" && !obj.get("content").is_some_and(Value::is_object) {
                return Err(schema(format!(
                    "`msg_type` is {msg_type:?} but there is no `content` object"
                )));
            }
            too_large(
                "body",
                body_bytes(),
                FEISHU_MAX_BODY_BYTES - reserve,
                Unit::Bytes,
            )
        }
        PlatformKind::Slack => check_slack(obj),
    }
}

fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

/// A Slack text object at `path`: `text` must be a non-empty string of at most `max` chars.
fn slack_text(v: &Value, path: &str, max: usize) -> Result<(), Violation> {
    let text = v
        .get("text")
        .and_then(Value::as_str)
        .ok_or_else(|| schema(format!("`{path}.text` (a string) is missing")))?;
    if text.is_empty() {
        return Err(schema(format!(
            "`{path}.text` is empty (Slack needs at least 1 character)"
        )));
    }
    too_large(
        format!("{path}.text"),
        text.chars().count(),
        max,
        Unit::Chars,
    )
}

fn check_slack(obj: &serde_json::Map<String, Value>) -> Result<(), Violation> {
    let text = obj.get("text");
    let blocks = obj.get("blocks");
    if text.is_none() && blocks.is_none() && obj.get("attachments").is_none() {
        return Err(schema("neither `text` nor `blocks` nor `attachments`"));
    }
    if let Some(t) = text {
        if !t.is_string() {
            return Err(schema("`text` is not a string"));
        }
        too_large("text", chars(t), SLACK_MAX_TEXT_CHARS, Unit::Chars)?;
    }
    let Some(blocks) = blocks else {
        return Ok(());
    };
    let blocks = blocks
        .as_array()
        .ok_or_else(|| schema("`blocks` is not a list"))?;
    too_large("blocks", blocks.len(), SLACK_MAX_BLOCKS, Unit::Items)?;
    for (i, block) in blocks.iter().enumerate() {
        let path = format!("blocks[{i}]");
        let kind = block
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| schema(format!("`{path}.type` is missing")))?;
        match kind {
            "header" => {
                let t = block
                    .get("text")
                    .ok_or_else(|| schema(format!("`{path}.text` is missing")))?;
                slack_text(t, &format!("{path}.text"), SLACK_MAX_HEADER_CHARS)?;
            }
            "section" => {
                let fields = block.get("fields").and_then(Value::as_array);
                match block.get("text") {
                    Some(t) => slack_text(t, &format!("{path}.text"), SLACK_MAX_SECTION_CHARS)?,
                    None if fields.is_none() => {
                        return Err(schema(format!("`{path}` has neither `text` nor `fields`")));
                    }
                    None => {}
                }
                if let Some(fields) = fields {
                    too_large(
                        format!("{path}.fields"),
                        fields.len(),
                        SLACK_MAX_FIELDS,
                        Unit::Items,
                    )?;
                    for (j, f) in fields.iter().enumerate() {
                        slack_text(f, &format!("{path}.fields[{j}]"), SLACK_MAX_FIELD_CHARS)?;
                    }
                }
            }
            "context" => {
                let els = block
                    .get("elements")
                    .and_then(Value::as_array)
                    .ok_or_else(|| schema(format!("`{path}.elements` is missing")))?;
                too_large(
                    format!("{path}.elements"),
                    els.len(),
                    SLACK_MAX_CONTEXT_ELEMENTS,
                    Unit::Items,
                )?;
                for (j, e) in els.iter().enumerate() {
                    if e.get("text").is_some() {
                        slack_text(e, &format!("{path}.elements[{j}]"), SLACK_MAX_SECTION_CHARS)?;
                    }
                }
            }
            "actions" => {
                let els = block
                    .get("elements")
                    .and_then(Value::as_array)
                    .ok_or_else(|| schema(format!("`{path}.elements` is missing")))?;
                too_large(
                    format!("{path}.elements"),
                    els.len(),
                    SLACK_MAX_ACTIONS_ELEMENTS,
                    Unit::Items,
                )?;
                for (j, e) in els.iter().enumerate() {
                    let epath = format!("{path}.elements[{j}]");
                    if let Some(t) = e.get("text") {
                        slack_text(t, &format!("{epath}.text"), SLACK_MAX_BUTTON_TEXT_CHARS)?;
                    }
                    if let Some(url) = e.get("url")
                        && url.as_str().is_none_or(str::is_empty)
                    {
                        return Err(schema(format!("`{epath}.url` is empty")));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn exceeded(r: Result<(), Violation>) -> Exceeded {
        match r {
            Err(Violation::TooLarge(e)) => e,
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[test]
    fn dingtalk_body_bytes() {
        let ok = json!({"msgtype": "markdown", "markdown": {"title": "t", "text": "x"}});
        assert_eq!(check(PlatformKind::Dingtalk, &ok), Ok(()));
        let big =
            json!({"msgtype": "markdown", "markdown": {"title": "t", "text": "中".repeat(7000)}});
        let e = exceeded(check(PlatformKind::Dingtalk, &big));
        assert_eq!(
            (e.field.as_str(), e.max, e.unit),
            ("body", 20_000, Unit::Bytes)
        );
        assert!(e.actual > 21_000);
        let bad = json!({"msgtype": "markdown"});
        assert!(matches!(
            check(PlatformKind::Dingtalk, &bad),
            Err(Violation::Schema(_))
        ));
        let card = json!({"msgtype": "actionCard", "actionCard": {"title": "t", "text": "x"}});
        assert_eq!(check(PlatformKind::Dingtalk, &card), Ok(()));
    }

    #[test]
    fn wecom_content_bytes() {
        let ok = json!({"msgtype": "markdown", "markdown": {"content": "a".repeat(4096)}});
        assert_eq!(check(PlatformKind::Wecom, &ok), Ok(()));
        let big = json!({"msgtype": "markdown", "markdown": {"content": "中".repeat(1366)}});
        let e = exceeded(check(PlatformKind::Wecom, &big));
        assert_eq!(
            (e.field.as_str(), e.actual, e.max),
            ("markdown.content", 4098, 4096)
        );
        let text = json!({"msgtype": "text", "text": {"content": "a".repeat(2049)}});
        assert_eq!(exceeded(check(PlatformKind::Wecom, &text)).max, 2048);
        let empty = json!({"msgtype": "markdown", "markdown": {"content": ""}});
        assert!(matches!(
            check(PlatformKind::Wecom, &empty),
            Err(Violation::Schema(_))
        ));
    }

    #[test]
    fn feishu_body_bytes() {
        let ok = json!({"msg_type": "interactive", "card": {"elements": []}});
        assert_eq!(check(PlatformKind::Feishu, &ok), Ok(()));
        let big = json!({"msg_type": "text", "content": {"text": "x".repeat(20_001)}});
        assert_eq!(exceeded(check(PlatformKind::Feishu, &big)).field, "body");
        let bad = json!({"msg_type": "interactive"});
        assert!(matches!(
            check(PlatformKind::Feishu, &bad),
            Err(Violation::Schema(_))
        ));
    }

    #[test]
    fn slack_blocks_and_texts() {
        let section = |t: String| json!({"type": "section", "text": {"type": "mrkdwn", "text": t}});
        let ok = json!({"text": "x", "blocks": [section("a".into())]});
        assert_eq!(check(PlatformKind::Slack, &ok), Ok(()));
        let many = json!({"text": "x", "blocks": vec![section("a".into()); 51]});
        assert_eq!(exceeded(check(PlatformKind::Slack, &many)).field, "blocks");
        let long =
            json!({"text": "x", "blocks": [section("b".into()), section("中".repeat(3001))]});
        let e = exceeded(check(PlatformKind::Slack, &long));
        assert_eq!(
            (e.field.as_str(), e.actual, e.unit),
            ("blocks[1].text.text", 3001, Unit::Chars)
        );
        let header = json!({"text": "x", "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h".repeat(151)}}]});
        assert_eq!(exceeded(check(PlatformKind::Slack, &header)).max, 150);
        let text = json!({"text": "t".repeat(40_001)});
        assert_eq!(exceeded(check(PlatformKind::Slack, &text)).field, "text");
        let empty = json!({"text": "x", "blocks": [section(String::new())]});
        assert!(matches!(
            check(PlatformKind::Slack, &empty),
            Err(Violation::Schema(_))
        ));
        let no_url = json!({"text": "x", "blocks": [{"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": ""}]}]});
        assert!(matches!(
            check(PlatformKind::Slack, &no_url),
            Err(Violation::Schema(_))
        ));
        assert!(matches!(
            check(PlatformKind::Slack, &json!({})),
            Err(Violation::Schema(_))
        ));
    }
}
