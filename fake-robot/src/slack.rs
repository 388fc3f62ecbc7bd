//! Slack incoming webhook (spec §4): `POST /services/T000/B000/<secret>`, success is
//! HTTP 200 `ok` (text/html), failures are 4xx/5xx with a bare error word.

use serde_json::{Map, Value};

use crate::check::*;

/// Top-level `text` beyond this many characters is truncated by Slack (accepted, noted).
pub const TEXT_TRUNCATE_CHARS: usize = 40_000;
/// Max blocks per message.
pub const MAX_BLOCKS: usize = 50;
/// Max attachments per message.
pub const MAX_ATTACHMENTS: usize = 100;
/// `header` plain_text limit in characters.
pub const MAX_HEADER_CHARS: usize = 150;
/// `section.text` limit in characters.
pub const MAX_SECTION_CHARS: usize = 3000;
/// Per-field limit in characters.
pub const MAX_FIELD_CHARS: usize = 2000;
/// Max `section.fields`.
pub const MAX_FIELDS: usize = 10;
/// Max `context.elements`.
pub const MAX_CONTEXT_ELEMENTS: usize = 10;
/// Max `actions.elements`.
pub const MAX_ACTIONS_ELEMENTS: usize = 25;
/// Cumulative `markdown` block text per payload, in characters.
pub const MAX_MARKDOWN_CHARS: usize = 12_000;

const PATH_PREFIX: &str = "/services/T000/B000/";

pub(crate) fn success() -> Reply {
    Reply::text(200, HTML_CT, "ok")
}

pub(crate) fn error(status: u16, word: &str, detail: &str) -> Refusal {
    let reason = if detail.is_empty() {
        word.to_owned()
    } else {
        format!("{word}: {detail}")
    };
    Refusal {
        reply: Reply::text(status, HTML_CT, word),
        code: word.to_owned(),
        reason,
    }
}

pub(crate) fn rate_limited(retry_after: Option<u64>) -> Refusal {
    let mut r = error(429, "rate_limited", "");
    if let Some(s) = retry_after {
        r.reply.headers.push(("retry-after", s.to_string()));
        r.reason = format!("rate_limited (Retry-After: {s})");
    }
    r
}

fn blocks_err(detail: String) -> Refusal {
    error(400, "invalid_blocks", &detail)
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

pub(crate) fn check(ctx: &Ctx, req: &Incoming) -> Result<Valid, Refusal> {
    if req.path.strip_prefix(PATH_PREFIX) != Some(ctx.options.token.as_str()) {
        return Err(error(404, "no_service", req.path));
    }
    if req.method != "POST" {
        return Err(error(405, "invalid_method", req.method));
    }
    if !is_json_content_type(req.content_type) {
        return Err(error(
            400,
            "invalid_payload",
            &format!("Content-Type {:?}", req.content_type),
        ));
    }
    let (raw, value) = parse_object(req.body).map_err(|e| error(400, "invalid_payload", &e))?;
    let obj = value.as_object().expect("object");
    let mut notes = Vec::new();

    let text = match obj.get("text") {
        None => "",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(error(400, "invalid_payload", "text is not a string")),
    };
    let text_chars = chars(text);
    if text_chars > TEXT_TRUNCATE_CHARS {
        notes.push(format!(
            "text truncated: {text_chars} chars > {TEXT_TRUNCATE_CHARS}"
        ));
    }
    let attachments = match obj.get("attachments") {
        None => 0,
        Some(Value::Array(a)) => {
            if a.len() > MAX_ATTACHMENTS {
                return Err(error(
                    400,
                    "too_many_attachments",
                    &format!("{} attachments", a.len()),
                ));
            }
            if !a.iter().all(Value::is_object) {
                return Err(error(
                    400,
                    "invalid_attachments",
                    "attachments must be objects",
                ));
            }
            a.len()
        }
        Some(_) => {
            return Err(error(
                400,
                "invalid_attachments",
                "attachments is not an array",
            ));
        }
    };
    let blocks = match obj.get("blocks") {
        None => 0,
        Some(Value::Array(b)) => {
            check_blocks(b)?;
            b.len()
        }
        Some(_) => return Err(blocks_err("blocks is not an array".into())),
    };
    if text.is_empty() && blocks == 0 && attachments == 0 {
        return Err(error(400, "no_text", ""));
    }
    Ok(Valid { value, raw, notes })
}

/// A composition text object `{type: plain_text|mrkdwn, text}`; returns its text.
fn text_object<'a>(v: Option<&'a Value>, path: &str, plain_only: bool) -> Result<&'a str, Refusal> {
    let o = v
        .and_then(Value::as_object)
        .ok_or_else(|| blocks_err(format!("{path} must be a text object")))?;
    match o.get("type").and_then(Value::as_str) {
        Some("plain_text") => {}
        Some("mrkdwn") if !plain_only => {}
        other => return Err(blocks_err(format!("{path}.type {other:?} not allowed"))),
    }
    match o.get("text") {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        _ => Err(blocks_err(format!(
            "{path}.text must be a non-empty string"
        ))),
    }
}

fn elements<'a>(
    b: &'a Map<String, Value>,
    path: &str,
    max: usize,
) -> Result<&'a Vec<Value>, Refusal> {
    let els = req_arr(b, "elements", path).map_err(blocks_err)?;
    if els.is_empty() || els.len() > max {
        return Err(blocks_err(format!(
            "{path}.elements must have 1-{max} items, got {}",
            els.len()
        )));
    }
    Ok(els)
}

fn check_blocks(blocks: &[Value]) -> Result<(), Refusal> {
    if blocks.len() > MAX_BLOCKS {
        return Err(blocks_err(format!(
            "{} blocks > {MAX_BLOCKS}",
            blocks.len()
        )));
    }
    let mut markdown_chars = 0;
    for (i, b) in blocks.iter().enumerate() {
        let path = format!("blocks[{i}]");
        let b = b
            .as_object()
            .ok_or_else(|| blocks_err(format!("{path} is not an object")))?;
        if b.get("block_id")
            .is_some_and(|id| id.as_str().is_none_or(|s| chars(s) > 255))
        {
            return Err(blocks_err(format!(
                "{path}.block_id must be a string of at most 255 chars"
            )));
        }
        match b.get("type").and_then(Value::as_str) {
            Some("header") => {
                let t = text_object(b.get("text"), &format!("{path}.text"), true)?;
                if chars(t) > MAX_HEADER_CHARS {
                    return Err(blocks_err(format!(
                        "{path}.text has {} chars > {MAX_HEADER_CHARS}",
                        chars(t)
                    )));
                }
            }
            Some("section") => {
                if b.get("text").is_none() && b.get("fields").is_none() {
                    return Err(blocks_err(format!("{path} needs text or fields")));
                }
                if b.get("text").is_some() {
                    let t = text_object(b.get("text"), &format!("{path}.text"), false)?;
                    if chars(t) > MAX_SECTION_CHARS {
                        return Err(blocks_err(format!(
                            "{path}.text has {} chars > {MAX_SECTION_CHARS}",
                            chars(t)
                        )));
                    }
                }
                if let Some(fields) = b.get("fields") {
                    let fields = fields
                        .as_array()
                        .ok_or_else(|| blocks_err(format!("{path}.fields is not an array")))?;
                    if fields.is_empty() || fields.len() > MAX_FIELDS {
                        return Err(blocks_err(format!(
                            "{path}.fields must have 1-{MAX_FIELDS} items"
                        )));
                    }
                    for (j, f) in fields.iter().enumerate() {
                        let t = text_object(Some(f), &format!("{path}.fields[{j}]"), false)?;
                        if chars(t) > MAX_FIELD_CHARS {
                            return Err(blocks_err(format!(
                                "{path}.fields[{j}] has {} chars",
                                chars(t)
                            )));
                        }
                    }
                }
            }
            Some("context") => {
                for (j, e) in elements(b, &path, MAX_CONTEXT_ELEMENTS)?.iter().enumerate() {
                    let ep = format!("{path}.elements[{j}]");
                    match e.get("type").and_then(Value::as_str) {
                        Some("plain_text" | "mrkdwn") => {
                            text_object(Some(e), &ep, false)?;
                        }
                        Some("image") => image_fields(e.as_object().expect("has a type"), &ep)?,
                        other => {
                            return Err(blocks_err(format!(
                                "{ep}.type {other:?} not allowed in context"
                            )));
                        }
                    }
                }
            }
            Some("actions") => {
                for (j, e) in elements(b, &path, MAX_ACTIONS_ELEMENTS)?.iter().enumerate() {
                    let ep = format!("{path}.elements[{j}]");
                    match e.get("type").and_then(Value::as_str) {
                        Some("button") => {
                            let t = text_object(e.get("text"), &format!("{ep}.text"), true)?;
                            if chars(t) > 75 {
                                return Err(blocks_err(format!(
                                    "{ep}.text has {} chars > 75",
                                    chars(t)
                                )));
                            }
                            match e.get("url").and_then(Value::as_str) {
                                Some(u) if !u.is_empty() && chars(u) <= 3000 => {}
                                _ => {
                                    return Err(blocks_err(format!(
                                        "{ep}.url must be a non-empty string"
                                    )));
                                }
                            }
                        }
                        Some(_) => {}
                        None => return Err(blocks_err(format!("{ep}.type missing"))),
                    }
                }
            }
            Some("divider") => {}
            Some("markdown") => match b.get("text") {
                Some(Value::String(s)) if !s.is_empty() => {
                    markdown_chars += chars(s);
                    if markdown_chars > MAX_MARKDOWN_CHARS {
                        return Err(blocks_err(format!(
                            "markdown blocks exceed {MAX_MARKDOWN_CHARS} chars"
                        )));
                    }
                }
                _ => {
                    return Err(blocks_err(format!(
                        "{path}.text must be a non-empty string"
                    )));
                }
            },
            Some("image") => image_fields(b, &path)?,
            Some("rich_text") => {
                elements(b, &path, usize::MAX)?;
            }
            other => return Err(blocks_err(format!("{path}.type {other:?} unknown"))),
        }
    }
    Ok(())
}

fn image_fields(e: &Map<String, Value>, path: &str) -> Result<(), Refusal> {
    let has_source = e
        .get("image_url")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
        || e.get("slack_file").is_some_and(Value::is_object);
    let alt_ok = e
        .get("alt_text")
        .and_then(Value::as_str)
        .is_some_and(|s| chars(s) <= 2000);
    if !has_source || !alt_ok {
        return Err(blocks_err(format!(
            "{path} needs image_url (or slack_file) and alt_text"
        )));
    }
    Ok(())
}
