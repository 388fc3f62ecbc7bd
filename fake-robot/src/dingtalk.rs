//! DingTalk custom robot (spec §1): `POST /robot/send?access_token=…`, always HTTP 200 with
//! `{"errcode":…,"errmsg":…}`.

use serde_json::{Map, Value, json};

use crate::check::*;
use crate::sign::dingtalk_sign_str;

/// Request body limit in bytes (spec §1.6).
pub const MAX_BODY_BYTES: usize = 20_000;

pub(crate) fn reply(code: i64, errmsg: &str) -> Reply {
    Reply::json(
        200,
        json!({ "errcode": code, "errmsg": errmsg }).to_string(),
    )
}

pub(crate) fn success() -> Reply {
    Reply::json(200, r#"{"errcode":0,"errmsg":"ok"}"#.to_owned())
}

pub(crate) fn error(code: i64, errmsg: &str, detail: &str) -> Refusal {
    let reason = if detail.is_empty() {
        errmsg.to_owned()
    } else {
        format!("{errmsg}: {detail}")
    };
    Refusal {
        reply: reply(code, errmsg),
        code: code.to_string(),
        reason,
    }
}

pub(crate) fn rate_limited(max: usize, per_secs: u64) -> Refusal {
    let msg = if per_secs == 60 {
        format!("send too fast, exceed {max} times per minute")
    } else {
        format!("send too fast, exceed {max} times per {per_secs} seconds")
    };
    error(130_101, &msg, "")
}

pub(crate) fn check(ctx: &Ctx, req: &Incoming) -> Result<Valid, Refusal> {
    if req.path != "/robot/send" {
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
    let opts = ctx.options;
    match query_param(req.query, "access_token") {
        Some(t) if t == opts.token => {}
        Some(t) => {
            return Err(error(
                400_101,
                "access_token does not exist",
                &format!("got {t:?}"),
            ));
        }
        None => {
            return Err(error(
                400_101,
                "access_token does not exist",
                "access_token missing",
            ));
        }
    }
    if let Some(secret) = &opts.secret {
        check_sign(ctx, secret, req.query)?;
    }
    if !is_json_content_type(req.content_type) {
        return Err(error(
            43_004,
            "invalid Content-Type, expected application/json",
            &format!("got {:?}", req.content_type),
        ));
    }
    if req.body.len() > MAX_BODY_BYTES {
        return Err(error(
            460_101,
            "message too long, exceed 20000 bytes",
            &format!("{} bytes", req.body.len()),
        ));
    }
    let (raw, value) =
        parse_object(req.body).map_err(|e| error(40_035, "missing json body", &e))?;
    let obj = value.as_object().expect("parse_object returns objects");
    let texts = schema(obj)?;
    if !keywords_ok(&opts.keywords, &texts) {
        return Err(error(310_000, "keywords not in content", ""));
    }
    Ok(Valid {
        value,
        raw,
        notes: Vec::new(),
    })
}

/// Sign mode (spec §1.3): `timestamp` in ms within `max_skew`, `sign` decoded once must
/// equal base64(HMAC-SHA256(secret, ts + "\n" + secret)).
fn check_sign(ctx: &Ctx, secret: &str, query: &str) -> Result<(), Refusal> {
    let Some(ts) = query_param(query, "timestamp") else {
        return Err(error(310_000, "invalid timestamp", "timestamp missing"));
    };
    if !is_decimal(&ts) {
        return Err(error(
            310_000,
            "invalid timestamp",
            &format!("not a decimal: {ts:?}"),
        ));
    }
    let ts_ms: u128 = ts
        .parse()
        .map_err(|_| error(310_000, "invalid timestamp", "out of range"))?;
    if !within(ts_ms, ctx.now.as_millis(), ctx.options.max_skew.as_millis()) {
        return Err(error(
            310_000,
            "invalid timestamp",
            &format!(
                "{ts_ms} ms is more than {:?} from now ({} ms)",
                ctx.options.max_skew,
                ctx.now.as_millis()
            ),
        ));
    }
    let Some(sign) = query_param(query, "sign") else {
        return Err(error(310_000, "sign not match", "sign missing"));
    };
    let expected = dingtalk_sign_str(secret, &ts);
    if sign != expected {
        return Err(error(
            310_000,
            "sign not match",
            &format!("got {sign:?} (decoded once), expected {expected:?}"),
        ));
    }
    Ok(())
}

fn field_error(detail: String) -> Refusal {
    error(40_035, "missing or invalid param", &detail)
}

/// Message schema (spec §1.4). Returns the texts the keyword check looks at.
fn schema(obj: &Map<String, Value>) -> Result<Vec<&str>, Refusal> {
    let msgtype = match obj.get("msgtype") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(field_error("msgtype is not a string".into())),
        None => return Err(field_error("msgtype is missing".into())),
    };
    let mut texts = Vec::new();
    let r = "$";
    match msgtype {
        "text" => {
            let t = req_obj(obj, "text", r).map_err(field_error)?;
            texts.push(req_str(t, "content", "text").map_err(field_error)?);
        }
        "markdown" => {
            let m = req_obj(obj, "markdown", r).map_err(field_error)?;
            texts.push(req_str(m, "title", "markdown").map_err(field_error)?);
            texts.push(req_str(m, "text", "markdown").map_err(field_error)?);
        }
        "link" => {
            let l = req_obj(obj, "link", r).map_err(field_error)?;
            texts.push(req_str(l, "title", "link").map_err(field_error)?);
            texts.push(req_str(l, "text", "link").map_err(field_error)?);
            req_str(l, "messageUrl", "link").map_err(field_error)?;
            opt_str(l, "picUrl", "link").map_err(field_error)?;
        }
        "actionCard" => {
            let a = req_obj(obj, "actionCard", r).map_err(field_error)?;
            texts.push(req_str(a, "title", "actionCard").map_err(field_error)?);
            texts.push(req_str(a, "text", "actionCard").map_err(field_error)?);
            opt_str(a, "btnOrientation", "actionCard").map_err(field_error)?;
            if a.contains_key("singleTitle") || a.contains_key("singleURL") {
                req_str(a, "singleTitle", "actionCard").map_err(field_error)?;
                req_str(a, "singleURL", "actionCard").map_err(field_error)?;
            } else {
                let btns = req_arr(a, "btns", "actionCard").map_err(|e| {
                    field_error(format!("{e} (need singleTitle+singleURL or btns)"))
                })?;
                if btns.is_empty() {
                    return Err(field_error("actionCard.btns is empty".into()));
                }
                for (i, b) in btns.iter().enumerate() {
                    let path = format!("actionCard.btns[{i}]");
                    let b = b
                        .as_object()
                        .ok_or_else(|| field_error(format!("{path} is not an object")))?;
                    req_str(b, "title", &path).map_err(field_error)?;
                    req_str(b, "actionURL", &path).map_err(field_error)?;
                }
            }
        }
        "feedCard" => {
            let f = req_obj(obj, "feedCard", r).map_err(field_error)?;
            let links = req_arr(f, "links", "feedCard").map_err(field_error)?;
            if links.is_empty() {
                return Err(field_error("feedCard.links is empty".into()));
            }
            for (i, l) in links.iter().enumerate() {
                let path = format!("feedCard.links[{i}]");
                let l = l
                    .as_object()
                    .ok_or_else(|| field_error(format!("{path} is not an object")))?;
                texts.push(req_str(l, "title", &path).map_err(field_error)?);
                req_str(l, "messageURL", &path).map_err(field_error)?;
                opt_str(l, "picURL", &path).map_err(field_error)?;
            }
        }
        other => return Err(error(400_105, "unsupported msgtype", other)),
    }
    if let Some(at) = obj.get("at") {
        let at = at
            .as_object()
            .ok_or_else(|| field_error("at is not an object".into()))?;
        for key in ["atMobiles", "atUserIds", "atDingtalkIds"] {
            opt_string_array(at, key, "at").map_err(field_error)?;
        }
        if at.get("isAtAll").is_some_and(|v| !v.is_boolean()) {
            return Err(field_error("at.isAtAll is not a boolean".into()));
        }
    }
    Ok(texts)
}
