//! Size fitting: a body that exceeds its platform's limits is rendered again from shortened
//! data until it fits, instead of being rejected.
//!
//! The data (the template context) is shortened, never the rendered text, so a cut can never
//! fall inside a multi-byte character, an escape sequence, a markdown link or a mention: the
//! template and the escaping run again on the shortened values. Every cut value ends with `…`;
//! the built-in templates always carry a link or button to the full object.
//!
//! The cuts are "water-filling": every candidate string longer than a cap `L` is cut to `L`
//! characters, and `L` is the largest value (binary search) for which the body fits, so the
//! longest texts are shortened first and short ones are left alone. Three tiers, each tried
//! only when the previous one cannot make the body fit even at its smallest cap:
//!
//! 1. free text: commit messages, descriptions, comments, titles, summaries (the values of
//!    the keys [`FREE_TEXT_KEYS`], in the normalised fields and in `raw`), down to
//!    [`FREE_TEXT_FLOOR`] characters;
//! 2. every other string except those templates branch on or build links from
//!    ([`KEEP_KEYS`]) and the relay's own `mentions`, down to [`ANY_TEXT_FLOOR`] characters;
//! 3. those too (only a hostile payload has a 10 KB sha or branch name): a link built from a
//!    cut value may then be wrong, but the message is sent;
//! 4. lists (commits, labels...), down to a single item.
//!
//! Only a template whose fixed text alone exceeds a limit still fails, with
//! [`RenderError::TooLarge`].

use handlebars::Context;
use serde_json::Value;

use super::RenderError;

/// Keys whose string values are free text written by users.
pub const FREE_TEXT_KEYS: &[&str] = &["message", "body", "description", "note", "title", "summary"];

/// Keys whose values are never cut: templates compare them (`eq action "open"`), build URLs
/// from them (`concat repo.url "/tree/" push.branch`), or they are short by nature.
pub const KEEP_KEYS: &[&str] = &[
    "event",
    "action",
    "action_desc",
    "state",
    "on",
    "noteable_type",
    "timezone",
    "hook_name",
    "sha",
    "before",
    "after",
    "ref",
    "branch",
    "login",
];

/// More characters than any platform shows in a whole message (Slack's `text`).
pub const MAX_SHOWN_CHARS: usize = 40_000;

/// Free text is never cut below this many characters.
pub const FREE_TEXT_FLOOR: usize = 40;
/// Other strings are never cut below this many characters.
pub const ANY_TEXT_FLOOR: usize = 12;

/// Which strings a tier cuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tier {
    FreeText,
    AnyText,
    Kept,
}

/// The caps applied to a copy of the data.
#[derive(Debug, Clone, Copy)]
struct Caps {
    free: Option<usize>,
    any: Option<usize>,
    keep: Option<usize>,
    items: Option<usize>,
}

/// `s` cut to at most `max` characters, the last one `…`.
pub fn cut(s: &str, max: usize) -> Option<String> {
    s.char_indices().nth(max)?;
    let keep = s
        .char_indices()
        .nth(max.saturating_sub(1))
        .map_or(s.len(), |(i, _)| i);
    let mut out = s[..keep].trim_end().to_owned();
    out.push('…');
    Some(out)
}

fn is_root_mentions(path_len: usize, key: &str) -> bool {
    path_len == 0 && key == "mentions"
}

/// A copy of `v` with `caps` applied. `key` is the key `v` sits under (for arrays: the
/// array's key), `depth` its depth.
fn capped(v: &Value, key: &str, depth: usize, caps: Caps) -> Value {
    match v {
        Value::String(s) => {
            let cap = if KEEP_KEYS.contains(&key) {
                caps.keep
            } else if FREE_TEXT_KEYS.contains(&key) {
                match (caps.free, caps.any) {
                    (Some(f), Some(a)) => Some(f.min(a)),
                    (f, a) => f.or(a),
                }
            } else {
                caps.any
            };
            match cap.and_then(|c| cut(s, c)) {
                Some(c) => Value::String(c),
                None => v.clone(),
            }
        }
        Value::Array(items) => {
            let n = caps.items.map_or(items.len(), |n| n.min(items.len()));
            Value::Array(
                items[..n]
                    .iter()
                    .map(|x| capped(x, key, depth + 1, caps))
                    .collect(),
            )
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, x)| {
                    let x = if is_root_mentions(depth, k) {
                        x.clone()
                    } else {
                        capped(x, k, depth + 1, caps)
                    };
                    (k.clone(), x)
                })
                .collect(),
        ),
        _ => v.clone(),
    }
}

/// The length in characters of the longest string `tier` would cut, and the longest list.
fn longest(v: &Value, key: &str, depth: usize, tier: Tier) -> usize {
    match v {
        Value::String(s) => {
            let counts = match tier {
                Tier::FreeText => FREE_TEXT_KEYS.contains(&key) && !KEEP_KEYS.contains(&key),
                Tier::AnyText => !KEEP_KEYS.contains(&key),
                Tier::Kept => KEEP_KEYS.contains(&key),
            };
            if counts { s.chars().count() } else { 0 }
        }
        Value::Array(items) => items
            .iter()
            .map(|x| longest(x, key, depth + 1, tier))
            .max()
            .unwrap_or(0),
        Value::Object(map) => map
            .iter()
            .filter(|(k, _)| !is_root_mentions(depth, k))
            .map(|(k, x)| longest(x, k, depth + 1, tier))
            .max()
            .unwrap_or(0),
        _ => 0,
    }
}

fn longest_list(v: &Value, depth: usize) -> usize {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|x| longest_list(x, depth + 1))
            .max()
            .unwrap_or(0)
            .max(items.len()),
        Value::Object(map) => map
            .iter()
            .filter(|(k, _)| !is_root_mentions(depth, k))
            .map(|(_, x)| longest_list(x, depth + 1))
            .max()
            .unwrap_or(0),
        _ => 0,
    }
}

/// Renders `data` with `attempt` (which renders and checks the limits); when the body is too
/// large, renders shortened copies until one fits (see the module documentation).
///
/// The first attempt renders `data` itself, not a copy: nearly every body fits at once.
pub fn fit(
    data: Value,
    attempt: impl Fn(&Context) -> Result<Value, RenderError>,
) -> Result<Value, RenderError> {
    let whole = Context::from(data);
    let mut last = match attempt(&whole) {
        Err(e @ RenderError::TooLarge { .. }) => e,
        other => return other,
    };
    let data = whole.data();
    let attempt = |data: Value| attempt(&Context::from(data));
    // No platform shows more than 40,000 characters: longer strings can only be cut, which
    // makes every attempt below cheaper on huge payloads.
    let data = capped(
        data,
        "",
        0,
        Caps {
            free: None,
            any: Some(MAX_SHOWN_CHARS),
            keep: Some(MAX_SHOWN_CHARS),
            items: None,
        },
    );
    let data = &data;
    // Each step: the caps as a function of the searched value, the smallest value, the largest.
    let free_max = longest(data, "", 0, Tier::FreeText);
    let any_max = longest(data, "", 0, Tier::AnyText);
    let kept_max = longest(data, "", 0, Tier::Kept);
    let list_max = longest_list(data, 0);
    type Step = (fn(usize) -> Caps, usize, usize);
    let steps: [Step; 4] = [
        (
            |l| Caps {
                free: Some(l),
                any: None,
                keep: None,
                items: None,
            },
            FREE_TEXT_FLOOR,
            free_max,
        ),
        (
            |l| Caps {
                free: Some(FREE_TEXT_FLOOR),
                any: Some(l),
                keep: None,
                items: None,
            },
            ANY_TEXT_FLOOR,
            any_max,
        ),
        (
            |l| Caps {
                free: Some(FREE_TEXT_FLOOR),
                any: Some(ANY_TEXT_FLOOR),
                keep: Some(l),
                items: None,
            },
            ANY_TEXT_FLOOR,
            kept_max,
        ),
        (
            |n| Caps {
                free: Some(FREE_TEXT_FLOOR),
                any: Some(ANY_TEXT_FLOOR),
                keep: Some(ANY_TEXT_FLOOR),
                items: Some(n),
            },
            1,
            list_max,
        ),
    ];
    for (caps, floor, max) in steps {
        if max <= floor {
            continue;
        }
        let mut best = match attempt(capped(data, "", 0, caps(floor))) {
            Ok(body) => body,
            Err(e @ RenderError::TooLarge { .. }) => {
                last = e;
                continue;
            }
            Err(e) => return Err(e),
        };
        // `lo` fits, `hi` does not.
        let (mut lo, mut hi) = (floor, max);
        while hi - lo > (lo / 32).max(1) {
            let mid = lo + (hi - lo) / 2;
            match attempt(capped(data, "", 0, caps(mid))) {
                Ok(body) => {
                    best = body;
                    lo = mid;
                }
                Err(RenderError::TooLarge { .. }) => hi = mid,
                Err(e) => return Err(e),
            }
        }
        return Ok(best);
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cut_keeps_whole_chars_and_marks_the_cut() {
        assert_eq!(cut("hello", 5), None);
        assert_eq!(cut("hello!", 5).as_deref(), Some("hell…"));
        assert_eq!(cut("中文字符串", 3).as_deref(), Some("中文…"));
        assert_eq!(cut("🎉🎉🎉", 2).as_deref(), Some("🎉…"));
        assert_eq!(cut("ab   cd", 4).as_deref(), Some("ab…"));
    }

    #[test]
    fn caps_follow_the_tiers_and_spare_keys_and_mentions() {
        let data = json!({
            "action": "x".repeat(100),
            "title": "t".repeat(100),
            "name": "n".repeat(100),
            "url": "https://x/".to_owned() + &"u".repeat(100),
            "mentions": {"people": [{"name": "m".repeat(100)}]},
            "raw": {"commits": [{"message": "m".repeat(100)}, {"message": "short"}]},
        });
        let c = capped(
            &data,
            "",
            0,
            Caps {
                free: Some(50),
                any: None,
                keep: None,
                items: None,
            },
        );
        assert_eq!(c["action"], data["action"]);
        assert_eq!(c["title"].as_str().unwrap().chars().count(), 50);
        assert_eq!(c["name"], data["name"]);
        assert_eq!(
            c["raw"]["commits"][0]["message"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            50
        );
        assert_eq!(c["raw"]["commits"][1]["message"], "short");
        let c = capped(
            &data,
            "",
            0,
            Caps {
                free: Some(50),
                any: Some(20),
                keep: None,
                items: Some(1),
            },
        );
        assert_eq!(c["title"].as_str().unwrap().chars().count(), 20);
        assert_eq!(c["name"].as_str().unwrap().chars().count(), 20);
        assert_eq!(c["mentions"], data["mentions"]);
        assert_eq!(c["raw"]["commits"].as_array().unwrap().len(), 1);
        assert_eq!(longest(&data, "", 0, Tier::FreeText), 100);
        assert_eq!(longest_list(&data, 0), 2);
    }
}
