//! WeCom group robot (spec §2): `POST /cgi-bin/webhook/send?key=…`, HTTP 200 with
//! `{"errcode":…,"errmsg":…}`.

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::check::*;
use crate::dingtalk::reply;

/// `text.content` limit in UTF-8 bytes (spec §2.4).
pub const MAX_TEXT_BYTES: usize = 2048;
/// `markdown.content` / `markdown_v2.content` limit in UTF-8 bytes (spec §2.4).
pub const MAX_MARKDOWN_BYTES: usize = 4096;
/// Decoded image limit (spec §2.2).
pub const MAX_IMAGE_BYTES: usize = 2 * 1024 * 1024;

pub(crate) fn success() -> Reply {
    crate::dingtalk::success()
}

pub(crate) fn error(code: i64, errmsg: &str, detail: &str) -> Refusal {
    crate::dingtalk::error(code, errmsg, detail)
}

pub(crate) fn rate_limited() -> Refusal {
    Refusal {
        reply: reply(45_009, "api freq out of limit"),
        code: "45009".into(),
        reason: "api freq out of limit".into(),
    }
}

fn param(detail: String) -> Refusal {
    error(40_058, &format!("{detail}. invalid Request Parameter"), "")
}

pub(crate) fn check(ctx: &Ctx, req: &Incoming) -> Result<Valid, Refusal> {
    if req.path != "/cgi-bin/webhook/send" {
        return Err(Refusal::http(
            404,
            "Not Found",
            format!("unknown path {}", req.path),
        ));
    }
    if req.method != "POST" {
        return Err(Refusal::http(
            405,
            "Method Not Allowed",
            format!("method {}", req.method),
        ));
    }
    if query_param(req.query, "key").as_deref() != Some(ctx.options.token.as_str()) {
        return Err(error(
            93_000,
            "invalid webhook url, hint: key not found",
            req.query,
        ));
    }
    if req.body.is_empty() {
        return Err(error(93_017, "post data empty", ""));
    }
    if !is_json_content_type(req.content_type) {
        return Err(param(format!(
            "Content-Type must be application/json, got {:?}",
            req.content_type
        )));
    }
    let (raw, value) = parse_object(req.body).map_err(param)?;
    let obj = value.as_object().expect("object");
    let notes = schema(obj)?;
    Ok(Valid { value, raw, notes })
}

fn content<'a>(
    obj: &'a Map<String, Value>,
    ty: &str,
    max: usize,
) -> Result<&'a Map<String, Value>, Refusal> {
    let inner = req_obj(obj, ty, "$").map_err(param)?;
    match inner.get("content") {
        Some(Value::String(s)) if s.is_empty() => Err(error(44_004, "empty content", ty)),
        Some(Value::String(s)) if s.len() > max => Err(error(
            40_058,
            &format!("{ty}.content exceed max length {max}. invalid Request Parameter"),
            &format!("got {} bytes", s.len()),
        )),
        Some(Value::String(_)) => Ok(inner),
        Some(_) => Err(param(format!("{ty}.content is not a string"))),
        None => Err(error(
            44_004,
            "empty content",
            &format!("{ty}.content missing"),
        )),
    }
}

fn schema(obj: &Map<String, Value>) -> Result<Vec<String>, Refusal> {
    let mut notes = Vec::new();
    let msgtype = obj.get("msgtype").and_then(Value::as_str).unwrap_or("");
    match msgtype {
        "text" => {
            let t = content(obj, "text", MAX_TEXT_BYTES)?;
            opt_string_array(t, "mentioned_list", "text").map_err(param)?;
            opt_string_array(t, "mentioned_mobile_list", "text").map_err(param)?;
        }
        "markdown" | "markdown_v2" => {
            content(obj, msgtype, MAX_MARKDOWN_BYTES)?;
        }
        "news" => {
            let n = req_obj(obj, "news", "$").map_err(param)?;
            let articles = req_arr(n, "articles", "news").map_err(param)?;
            if articles.is_empty() || articles.len() > 8 {
                return Err(param(format!(
                    "news.articles must have 1-8 items, got {}",
                    articles.len()
                )));
            }
            for (i, a) in articles.iter().enumerate() {
                let path = format!("news.articles[{i}]");
                let a = a
                    .as_object()
                    .ok_or_else(|| param(format!("{path} is not an object")))?;
                let title = req_str(a, "title", &path).map_err(param)?;
                req_str(a, "url", &path).map_err(param)?;
                let desc = opt_str(a, "description", &path).map_err(param)?;
                opt_str(a, "picurl", &path).map_err(param)?;
                if title.len() > 128 {
                    notes.push(format!("{path}.title truncated to 128 bytes"));
                }
                if desc.is_some_and(|d| d.len() > 512) {
                    notes.push(format!("{path}.description truncated to 512 bytes"));
                }
            }
        }
        "image" => {
            let im = req_obj(obj, "image", "$").map_err(param)?;
            let b64 = req_str(im, "base64", "image").map_err(param)?;
            let md5 = req_str(im, "md5", "image").map_err(param)?;
            if md5.len() != 32 || !md5.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(param("image.md5 is not 32 hex digits".into()));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| param(format!("image.base64 invalid: {e}")))?;
            if bytes.len() > MAX_IMAGE_BYTES {
                return Err(error(
                    93_018,
                    "image too large",
                    &format!("{} bytes", bytes.len()),
                ));
            }
        }
        "file" | "voice" => {
            let f = req_obj(obj, msgtype, "$").map_err(param)?;
            req_str(f, "media_id", msgtype).map_err(param)?;
        }
        "template_card" => template_card(req_obj(obj, "template_card", "$").map_err(param)?)?,
        other => return Err(error(40_008, "invalid message type", other)),
    }
    Ok(notes)
}

fn template_card(card: &Map<String, Value>) -> Result<(), Refusal> {
    let p = "template_card";
    let card_type = req_str(card, "card_type", p).map_err(param)?;
    if card_type != "text_notice" && card_type != "news_notice" {
        return Err(param(format!(
            "template_card.card_type {card_type:?} not supported"
        )));
    }
    let action = req_obj(card, "card_action", p).map_err(param)?;
    match action.get("type").and_then(Value::as_i64) {
        Some(1) => {
            req_str(action, "url", "template_card.card_action").map_err(param)?;
        }
        Some(2) => {
            req_str(action, "appid", "template_card.card_action").map_err(param)?;
        }
        Some(0) => {}
        _ => {
            return Err(param(
                "template_card.card_action.type must be 0, 1 or 2".into(),
            ));
        }
    }
    if card_type == "text_notice" {
        let has_title = card
            .get("main_title")
            .and_then(Value::as_object)
            .and_then(|m| m.get("title"))
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty());
        let has_sub = card
            .get("sub_title_text")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty());
        if !has_title && !has_sub {
            return Err(param(
                "text_notice needs main_title.title or sub_title_text".into(),
            ));
        }
    }
    opt_array_max(card, "horizontal_content_list", 6, p).map_err(param)?;
    opt_array_max(card, "jump_list", 3, p).map_err(param)?;
    opt_array_max(card, "vertical_content_list", 4, p).map_err(param)?;
    Ok(())
}
