//! Feishu / Lark custom bot (spec §3): `POST /open-apis/bot/v2/hook/<id>`, JSON replies
//! `{"code":…,"msg":…,"data":{}}`.

use serde_json::{Map, Value, json};

use crate::check::*;
use crate::sign::feishu_sign_str;

/// Request body limit in bytes (spec §3.7: 20 KB = 20 × 1024).
pub const MAX_BODY_BYTES: usize = 20 * 1024;

const HOOK_PREFIX: &str = "/open-apis/bot/v2/hook/";
const SIGN_MSG: &str = "sign match fail or timestamp is not within one hour from current time";

pub(crate) fn reply(status: u16, code: i64, msg: &str) -> Reply {
    Reply::json(
        status,
        json!({ "code": code, "msg": msg, "data": {} }).to_string(),
    )
}

pub(crate) fn success() -> Reply {
    Reply::json(
        200,
        r#"{"code":0,"msg":"success","data":{},"StatusCode":0,"StatusMessage":"success"}"#
            .to_owned(),
    )
}

pub(crate) fn error(code: i64, msg: &str, detail: &str) -> Refusal {
    error_status(200, code, msg, detail)
}

fn error_status(status: u16, code: i64, msg: &str, detail: &str) -> Refusal {
    let reason = if detail.is_empty() {
        msg.to_owned()
    } else {
        format!("{msg}: {detail}")
    };
    Refusal {
        reply: reply(status, code, msg),
        code: code.to_string(),
        reason,
    }
}

pub(crate) fn rate_limited(retry_after: Option<u64>) -> Refusal {
    let mut r = error(
        11_232,
        "frequency limited psm[lark.oapi.app_platform_runtime]appID[-1]",
        "",
    );
    if let Some(s) = retry_after {
        r.reply
            .headers
            .push(("x-ogw-ratelimit-reset", s.to_string()));
    }
    r
}

fn bad_request(detail: &str) -> Refusal {
    error_status(400, 9499, "Bad Request", detail)
}

fn invalid(detail: String) -> Refusal {
    error(19_001, "param invalid", &detail)
}

pub(crate) fn check(ctx: &Ctx, req: &Incoming) -> Result<Valid, Refusal> {
    let Some(hook) = req.path.strip_prefix(HOOK_PREFIX) else {
        return Err(Refusal::http(
            404,
            "404 page not found",
            format!("unknown path {}", req.path),
        ));
    };
    if req.method != "POST" {
        return Err(Refusal::http(
            405,
            "Method Not Allowed",
            format!("method {}", req.method),
        ));
    }
    let opts = ctx.options;
    if hook != opts.token {
        return Err(error(
            19_001,
            "param invalid: incoming webhook access token invalid",
            hook,
        ));
    }
    if !is_json_content_type(req.content_type) {
        return Err(bad_request(&format!(
            "Content-Type must be application/json, got {:?}",
            req.content_type
        )));
    }
    if req.body.len() > MAX_BODY_BYTES {
        return Err(error(
            19_036,
            "request body size exceeds the limit of 20 KB",
            &format!("{} bytes", req.body.len()),
        ));
    }
    let (raw, value) = parse_object(req.body).map_err(|e| bad_request(&e))?;
    let obj = value.as_object().expect("object");
    if let Some(secret) = &opts.secret {
        check_sign(ctx, secret, obj)?;
    }
    let texts = schema(obj)?;
    if !keywords_ok(&opts.keywords, &texts) {
        return Err(error(19_024, "Key Words Not Found", ""));
    }
    Ok(Valid {
        value,
        raw,
        notes: Vec::new(),
    })
}

/// Sign mode (spec §3.3): top-level `timestamp` (seconds; JSON string, a JSON integer is
/// tolerated) within `max_skew`, and `sign` = base64(HMAC-SHA256(key = ts + "\n" + secret, "")).
fn check_sign(ctx: &Ctx, secret: &str, obj: &Map<String, Value>) -> Result<(), Refusal> {
    let ts = match obj.get("timestamp") {
        Some(Value::String(s)) if is_decimal(s) => s.clone(),
        Some(Value::Number(n)) if n.is_u64() => n.to_string(),
        Some(other) => return Err(error(19_021, SIGN_MSG, &format!("bad timestamp {other}"))),
        None => return Err(error(19_021, SIGN_MSG, "timestamp missing")),
    };
    let ts_s: u128 = ts
        .parse()
        .map_err(|_| error(19_021, SIGN_MSG, "timestamp out of range"))?;
    if !within(
        ts_s,
        ctx.now.as_secs() as u128,
        ctx.options.max_skew.as_secs() as u128,
    ) {
        return Err(error(
            19_021,
            SIGN_MSG,
            &format!(
                "timestamp {ts_s} s is more than {:?} from now ({} s)",
                ctx.options.max_skew,
                ctx.now.as_secs()
            ),
        ));
    }
    let Some(sign) = obj.get("sign").and_then(Value::as_str) else {
        return Err(error(19_021, SIGN_MSG, "sign missing or not a string"));
    };
    let expected = feishu_sign_str(secret, &ts);
    if sign != expected {
        return Err(error(
            19_021,
            SIGN_MSG,
            &format!("got {sign:?}, expected {expected:?}"),
        ));
    }
    Ok(())
}

/// Message schema (spec §3.4). Returns the text values the keyword check looks at.
fn schema(obj: &Map<String, Value>) -> Result<Vec<&str>, Refusal> {
    let msg_type = match obj.get("msg_type") {
        Some(Value::String(s)) if !s.is_empty() => s.as_str(),
        Some(_) => return Err(invalid("msg_type is not a non-empty string".into())),
        None => return Err(error(19_002, "params error, msg_type need", "")),
    };
    let mut texts = Vec::new();
    match msg_type {
        "text" => {
            let c = content(obj)?;
            texts.push(req_str(c, "text", "content").map_err(invalid)?);
        }
        "post" => post(content(obj)?, &mut texts)?,
        "image" => {
            req_str(content(obj)?, "image_key", "content").map_err(invalid)?;
        }
        "share_chat" => {
            req_str(content(obj)?, "share_chat_id", "content").map_err(invalid)?;
        }
        "interactive" => {
            let card = match obj.get("card") {
                Some(Value::Object(c)) => c,
                Some(_) => return Err(invalid("card is not an object".into())),
                None => return Err(error(19_002, "params error, card need", "")),
            };
            interactive(card)?;
            collect_card_texts(card, &mut texts);
        }
        other => return Err(invalid(format!("msg_type {other:?} not supported"))),
    }
    Ok(texts)
}

fn content(obj: &Map<String, Value>) -> Result<&Map<String, Value>, Refusal> {
    match obj.get("content") {
        Some(Value::Object(c)) => Ok(c),
        Some(_) => Err(invalid("content is not an object".into())),
        None => Err(error(19_002, "params error, content need", "")),
    }
}

const LOCALES: [&str; 3] = ["zh_cn", "en_us", "ja_jp"];

fn post<'a>(content: &'a Map<String, Value>, texts: &mut Vec<&'a str>) -> Result<(), Refusal> {
    let post = req_obj(content, "post", "content").map_err(invalid)?;
    let mut found = false;
    for locale in LOCALES {
        let Some(l) = post.get(locale) else { continue };
        found = true;
        let path = format!("content.post.{locale}");
        let l = l
            .as_object()
            .ok_or_else(|| invalid(format!("{path} is not an object")))?;
        if let Some(title) = opt_str(l, "title", &path).map_err(invalid)? {
            texts.push(title);
        }
        let paragraphs = req_arr(l, "content", &path).map_err(invalid)?;
        for (i, p) in paragraphs.iter().enumerate() {
            let p = p
                .as_array()
                .ok_or_else(|| invalid(format!("{path}.content[{i}] is not an array")))?;
            for (j, el) in p.iter().enumerate() {
                let ep = format!("{path}.content[{i}][{j}]");
                let el = el
                    .as_object()
                    .ok_or_else(|| invalid(format!("{ep} is not an object")))?;
                match el.get("tag").and_then(Value::as_str) {
                    Some("text") => texts.push(req_str(el, "text", &ep).map_err(invalid)?),
                    Some("a") => {
                        texts.push(req_str(el, "text", &ep).map_err(invalid)?);
                        let href = req_str(el, "href", &ep).map_err(invalid)?;
                        if !is_http_url(href) {
                            return Err(invalid(format!(
                                "{ep}.href {href:?} is not a valid http(s) URL"
                            )));
                        }
                    }
                    Some("at") => {
                        req_str(el, "user_id", &ep).map_err(invalid)?;
                        opt_str(el, "user_name", &ep).map_err(invalid)?;
                    }
                    Some("img") => {
                        req_str(el, "image_key", &ep).map_err(invalid)?;
                    }
                    Some(t) => return Err(invalid(format!("{ep}.tag {t:?} not supported"))),
                    None => return Err(invalid(format!("{ep}.tag missing"))),
                }
            }
        }
    }
    if !found {
        return Err(invalid(
            "content.post needs one of zh_cn / en_us / ja_jp".into(),
        ));
    }
    Ok(())
}

fn elements_ok(elements: &[Value], path: &str) -> Result<(), Refusal> {
    for (i, e) in elements.iter().enumerate() {
        let ok = e
            .as_object()
            .and_then(|e| e.get("tag"))
            .is_some_and(Value::is_string);
        if !ok {
            return Err(invalid(format!(
                "{path}[{i}] must be an object with a string tag"
            )));
        }
    }
    Ok(())
}

fn interactive(card: &Map<String, Value>) -> Result<(), Refusal> {
    if card.get("type").and_then(Value::as_str) == Some("template") {
        let data = req_obj(card, "data", "card").map_err(invalid)?;
        req_str(data, "template_id", "card.data").map_err(invalid)?;
        return Ok(());
    }
    match card.get("schema") {
        Some(Value::String(s)) if s == "2.0" => {
            let body = req_obj(card, "body", "card").map_err(invalid)?;
            let elements = req_arr(body, "elements", "card.body").map_err(invalid)?;
            if elements.len() > 200 {
                return Err(invalid(format!(
                    "card.body.elements has {} items, max 200",
                    elements.len()
                )));
            }
            elements_ok(elements, "card.body.elements")?;
        }
        Some(other) => return Err(invalid(format!("card.schema {other} not supported"))),
        None => {
            let elements = req_arr(card, "elements", "card").map_err(invalid)?;
            elements_ok(elements, "card.elements")?;
        }
    }
    if let Some(header) = card.get("header") {
        let header = header
            .as_object()
            .ok_or_else(|| invalid("card.header is not an object".into()))?;
        let title = req_obj(header, "title", "card.header").map_err(invalid)?;
        req_str(title, "content", "card.header.title").map_err(invalid)?;
    }
    Ok(())
}

/// Keyword texts of a card: every string under a `content`, `text` or `title` key
/// (never `url`/`href` values).
fn collect_card_texts<'a>(card: &'a Map<String, Value>, texts: &mut Vec<&'a str>) {
    for (k, v) in card {
        match v {
            Value::String(s) if matches!(k.as_str(), "content" | "text" | "title") => texts.push(s),
            Value::Object(m) => collect_card_texts(m, texts),
            Value::Array(a) => {
                for item in a {
                    if let Value::Object(m) = item {
                        collect_card_texts(m, texts);
                    }
                }
            }
            _ => {}
        }
    }
}
