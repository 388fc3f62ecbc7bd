//! The one retry after a platform refused a body as too large: cut the longest free text
//! until the body is at most half its size. Links and structural fields are left alone.

use serde_json::Value;

/// Shortens `body` in place; returns false if nothing could be cut.
pub fn shorten(body: &mut Value) -> bool {
    let target = serde_json::to_string(body).map_or(0, |s| s.len()) / 2;
    let mut changed = false;
    for _ in 0..64 {
        if serde_json::to_string(body).map_or(0, |s| s.len()) <= target {
            break;
        }
        let Some(longest) = longest_text(body) else {
            break;
        };
        let len = longest.chars().count();
        if len < 16 {
            break;
        }
        let keep = len * 6 / 10;
        let cut: String = longest.chars().take(keep).collect();
        *longest = format!("{cut}…");
        changed = true;
    }
    changed
}

fn is_text(s: &str) -> bool {
    !(s.starts_with("http://") || s.starts_with("https://"))
}

fn longest_text(v: &mut Value) -> Option<&mut String> {
    match v {
        Value::String(s) => is_text(s).then_some(s),
        Value::Array(items) => items
            .iter_mut()
            .filter_map(longest_text)
            .max_by_key(|s| s.len()),
        Value::Object(map) => map
            .iter_mut()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "msgtype" | "msg_type" | "tag" | "type" | "sign" | "timestamp"
                )
            })
            .filter_map(|(_, v)| longest_text(v))
            .max_by_key(|s| s.len()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn halves_the_body_by_cutting_the_longest_text() {
        let long = "长".repeat(5000);
        let mut body =
            json!({"msgtype":"markdown","markdown":{"title":"t","text": long},"url":"https://x/y"});
        let before = body.to_string().len();
        assert!(shorten(&mut body));
        assert!(body.to_string().len() <= before / 2);
        assert_eq!(body["msgtype"], "markdown");
        assert_eq!(body["url"], "https://x/y");
        assert!(body["markdown"]["text"].as_str().unwrap().ends_with('…'));
    }

    #[test]
    fn nothing_to_cut_is_reported() {
        let mut body = json!({"msgtype":"text","text":{"content":"short"}});
        assert!(!shorten(&mut body));
    }
}
