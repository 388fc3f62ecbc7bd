//! Template helpers.
//!
//! Value helpers return a value, so their output goes through the platform's escape function
//! exactly like a plain `{{x}}` (and they compose as subexpressions):
//!
//! | helper | result |
//! |---|---|
//! | `truncate TEXT N` | at most N characters; when cut, the last one is `…` (never splits a char) |
//! | `first_line TEXT` | the first line, without `\r` |
//! | `oneline TEXT` | all lines joined with single spaces, for excerpts inside a markdown line |
//! | `short_sha SHA [N]` | the first N (default 7) characters |
//! | `default X FALLBACK` | X unless it is null, `""`, `false` or empty; then FALLBACK |
//! | `join LIST [SEP] [key="field"]` | items joined with SEP (default `", "`); `key` picks a field of object items |
//! | `plural N ONE MANY` | ONE when N (a number or an array's length) is 1, else MANY (the word only) |
//! | `time MS [FORMAT] [ZONE]` | Unix milliseconds formatted with a strftime FORMAT (default `%Y-%m-%d %H:%M`) in ZONE (`+08:00`, `-05:30`, `UTC`); without ZONE the config's `timezone` (the context's `timezone`, default `+08:00`) |
//! | `take LIST N` | the first N items of a list (for `{{#each (take push.commits 10)}}`) |
//! | `sub A B` | A − B |
//! | `concat A B …` | the texts of all parameters joined (for link texts and URLs) |
//! | `has_url X [Y …]` | true when a parameter is an http(s) URL (guard a button: `{{#if (has_url a b)}}…{{url a b}}…{{/if}}`) |
//!
//! Output helpers write text that is already escaped for the JSON string it sits in, so they are
//! meant to be used directly (`{{link …}}`), not as subexpressions:
//!
//! | helper | output |
//! |---|---|
//! | `link URL [TEXT]` | the platform's link markup (`[text](url)`, Slack `<url\|text>`), both parts escaped |
//! | `url X [Y …]` | the first parameter that is an http(s) URL, sanitised (empty if none), for button/`url` fields |
//! | `json X` | a text JSON-string-escaped only, for `plain_text` fields that are not markup; a list or object as a whole JSON value (`"atMobiles": {{json mentions.mobiles}}`) |
//! | `quote TEXT` | TEXT as a block quote (DingTalk, WeCom, Slack): every non-blank line escaped and prefixed with `> ` |
//! | `mention PERSON` | the platform's ping for one of `mentions.people` (`<@U123>`, `<at id=ou_1></at>`, `@138…`) |
//! | `who USER` | a user (`actor`, a reviewer...): their ping when this message mentions them, else their name linked to their profile |
//!
//! Handlebars' own `eq ne gt gte lt lte and or not len` and `if unless each with lookup` are
//! available too.

use std::borrow::Cow;

use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, JsonRender, JsonTruthy, Output,
    RenderContext, RenderError, RenderErrorReason, ScopedJson,
};
use serde_json::Value;
use time::format_description::{self, OwnedFormatItem};
use time::{OffsetDateTime, UtcOffset};

use super::escape;
use crate::platform::PlatformKind;

/// The default format of the `time` helper.
pub const DEFAULT_TIME_FORMAT: &str = "%Y-%m-%d %H:%M";
/// The default zone of the `time` helper (China Standard Time, where Gitee's users mostly are).
pub const DEFAULT_TIME_ZONE: &str = "+08:00";

/// Registers every helper of this module on `registry` for `platform`.
pub fn register(registry: &mut Handlebars<'static>, platform: PlatformKind) {
    registry.register_helper("truncate", Box::new(Value1(truncate_h)));
    registry.register_helper("first_line", Box::new(Value1(first_line_h)));
    registry.register_helper("oneline", Box::new(Value1(oneline_h)));
    registry.register_helper("short_sha", Box::new(Value1(short_sha_h)));
    registry.register_helper("default", Box::new(Value1(default_h)));
    registry.register_helper("join", Box::new(Value1(join_h)));
    registry.register_helper("plural", Box::new(Value1(plural_h)));
    registry.register_helper("time", Box::new(TimeHelper));
    registry.register_helper("take", Box::new(Take));
    registry.register_helper("sub", Box::new(Value1(sub_h)));
    registry.register_helper("concat", Box::new(Value1(concat_h)));
    registry.register_helper("has_url", Box::new(Value1(has_url_h)));
    registry.register_helper(
        "link",
        Box::new(Raw {
            platform,
            kind: RawKind::Link,
        }),
    );
    registry.register_helper(
        "url",
        Box::new(Raw {
            platform,
            kind: RawKind::Url,
        }),
    );
    registry.register_helper(
        "json",
        Box::new(Raw {
            platform,
            kind: RawKind::Json,
        }),
    );
    registry.register_helper(
        "quote",
        Box::new(Raw {
            platform,
            kind: RawKind::Quote,
        }),
    );
    registry.register_helper(
        "mention",
        Box::new(Raw {
            platform,
            kind: RawKind::Mention,
        }),
    );
    registry.register_helper(
        "who",
        Box::new(Raw {
            platform,
            kind: RawKind::Who,
        }),
    );
}

// ---------------------------------------------------------------------------------------------
// Pure functions (unit-tested below, also usable from Rust code).

/// At most `max` characters; when `text` is longer it is cut and ends with `…`.
pub fn truncate(text: &str, max: usize) -> Cow<'_, str> {
    let mut indices = text.char_indices();
    match indices.nth(max) {
        None => Cow::Borrowed(text),
        Some(_) if max == 0 => Cow::Borrowed(""),
        Some(_) => {
            // Keep max-1 chars and add the ellipsis, so the result has exactly `max` chars.
            let cut = text
                .char_indices()
                .nth(max - 1)
                .map_or(text.len(), |(i, _)| i);
            let mut s = text[..cut].trim_end().to_owned();
            s.push('…');
            Cow::Owned(s)
        }
    }
}

/// The first line of `text` (without a trailing `\r`).
pub fn first_line(text: &str) -> &str {
    let line = text.split('\n').next().unwrap_or("");
    line.strip_suffix('\r').unwrap_or(line)
}

/// All non-blank lines of `text`, trimmed and joined by single spaces.
pub fn oneline(text: &str) -> Cow<'_, str> {
    if !text.contains(['\n', '\r']) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// A block quote, ready for the JSON string: every non-blank line of `text` escaped for
/// `platform` and prefixed with `> `, lines joined with `\n`; `>` alone for a blank text (so
/// a Slack section never ends up empty). The `>` is written raw: Slack would otherwise get
/// `&gt;`.
pub fn quote(platform: PlatformKind, text: &str) -> String {
    let lines: Vec<String> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("> {}", escape::escape(platform, l)))
        .collect();
    if lines.is_empty() {
        ">".to_owned()
    } else {
        lines.join("\\n")
    }
}

/// The first `n` characters.
pub fn short_sha(sha: &str, n: usize) -> &str {
    sha.char_indices().nth(n).map_or(sha, |(i, _)| &sha[..i])
}

/// Parses `+08:00`, `-0530`, `+8`, `UTC` or `Z`.
pub fn parse_zone(zone: &str) -> Option<UtcOffset> {
    let z = zone.trim();
    if z.eq_ignore_ascii_case("utc") || z.eq_ignore_ascii_case("z") || z.eq_ignore_ascii_case("gmt")
    {
        return Some(UtcOffset::UTC);
    }
    let (sign, rest) = match z.as_bytes().first()? {
        b'+' => (1i8, &z[1..]),
        b'-' => (-1i8, &z[1..]),
        _ => return None,
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "0"),
    };
    let h: i8 = h.parse().ok()?;
    let m: i8 = m.parse().ok()?;
    if !(0..=23).contains(&h) || !(0..=59).contains(&m) {
        return None;
    }
    UtcOffset::from_hms(sign * h, sign * m, 0).ok()
}

/// Formats Unix milliseconds with a strftime format in a fixed-offset zone.
pub fn format_time(ms: i64, format: &str, zone: &str) -> Result<String, String> {
    let offset = parse_zone(zone).ok_or_else(|| format!("invalid zone {zone:?}"))?;
    // The default format, which nearly every message uses, is parsed once per process.
    static DEFAULT_ITEMS: std::sync::OnceLock<OwnedFormatItem> = std::sync::OnceLock::new();
    let parsed;
    let items = if format == DEFAULT_TIME_FORMAT {
        DEFAULT_ITEMS.get_or_init(|| {
            format_description::parse_strftime_owned(DEFAULT_TIME_FORMAT)
                .expect("the default time format parses")
        })
    } else {
        parsed = format_description::parse_strftime_owned(format)
            .map_err(|e| format!("invalid time format {format:?}: {e}"))?;
        &parsed
    };
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| format!("timestamp {ms} out of range: {e}"))?
        .to_offset(offset);
    t.format(items)
        .map_err(|e| format!("cannot format {ms}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Handlebars glue.

type Args<'a, 'rc> = (&'a Helper<'rc>, &'a Handlebars<'a>);
type ValueFn = for<'a, 'rc> fn(Args<'a, 'rc>) -> Result<Value, RenderError>;

/// A value helper: the function's result is rendered and escaped like any `{{x}}`.
struct Value1(ValueFn);

impl HelperDef for Value1 {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        (self.0)((h, r)).map(ScopedJson::Derived)
    }
}

fn other(msg: String) -> RenderError {
    RenderErrorReason::Other(msg).into()
}

/// Parameter `idx` of helper `h`; a path that does not exist is an error in strict mode, with
/// the path in the message, like a plain `{{typo}}`.
fn param<'a>(args: Args<'a, '_>, idx: usize) -> Result<&'a Value, RenderError> {
    let (h, r) = args;
    match h.param(idx) {
        None => Err(other(format!(
            "helper `{}` needs a parameter #{} ",
            h.name(),
            idx + 1
        ))),
        Some(p) if r.strict_mode() && p.is_value_missing() => {
            Err(RenderError::strict_error(p.relative_path()))
        }
        Some(p) => Ok(p.value()),
    }
}

fn opt_param<'a>(args: Args<'a, '_>, idx: usize) -> Result<Option<&'a Value>, RenderError> {
    if args.0.param(idx).is_none() {
        Ok(None)
    } else {
        param(args, idx).map(Some)
    }
}

/// The text of a value: strings as they are, null as "", others as handlebars renders them.
fn text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        Value::Null => Cow::Borrowed(""),
        v => Cow::Owned(v.render()),
    }
}

fn count(args: Args<'_, '_>, idx: usize) -> Result<usize, RenderError> {
    let v = param(args, idx)?;
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        .ok_or_else(|| {
            other(format!(
                "helper `{}`: parameter #{} must be a non-negative integer, got {v}",
                args.0.name(),
                idx + 1
            ))
        })
}

fn truncate_h(args: Args<'_, '_>) -> Result<Value, RenderError> {
    let t = param(args, 0)?;
    let n = count(args, 1)?;
    Ok(Value::String(truncate(&text(t), n).into_owned()))
}

fn first_line_h(args: Args<'_, '_>) -> Result<Value, RenderError> {
    Ok(Value::String(first_line(&text(param(args, 0)?)).to_owned()))
}

fn oneline_h(args: Args<'_, '_>) -> Result<Value, RenderError> {
    Ok(Value::String(oneline(&text(param(args, 0)?)).into_owned()))
}

fn short_sha_h(args: Args<'_, '_>) -> Result<Value, RenderError> {
    let sha = param(args, 0)?;
    let n = if args.0.param(1).is_some() {
        count(args, 1)?
    } else {
        7
    };
    Ok(Value::String(short_sha(&text(sha), n).to_owned()))
}

fn default_h(args: Args<'_, '_>) -> Result<Value, RenderError> {
    let x = param(args, 0)?;
    let fallback = param(args, 1)?;
    Ok(if x.is_truthy(true) {
        x.clone()
    } else {
        fallback.clone()
    })
}

fn join_h(args: Args<'_, '_>) -> Result<Value, RenderError> {
    let list = param(args, 0)?;
    let sep = opt_param(args, 1)?.map_or(Cow::Borrowed(", "), text);
    let key = args.0.hash_get("key").map(|k| k.value().render());
    let items: Vec<String> = match list {
        Value::Array(a) => a
            .iter()
            .map(|v| match (&key, v) {
                (Some(k), Value::Object(o)) => o.get(k).map(|f| text(f).into_owned()),
                _ => Some(text(v).into_owned()),
            })
            .filter_map(|s| s.filter(|s| !s.is_empty()))
            .collect(),
        Value::Null => Vec::new(),
        v => vec![text(v).into_owned()],
    };
    Ok(Value::String(items.join(&sep)))
}

fn plural_h(args: Args<'_, '_>) -> Result<Value, RenderError> {
    let n = param(args, 0)?;
    let one = param(args, 1)?;
    let many = param(args, 2)?;
    let is_one = match n {
        Value::Array(a) => a.len() == 1,
        v => v.as_f64() == Some(1.0) || v.as_str().is_some_and(|s| s.trim() == "1"),
    };
    Ok(if is_one { one.clone() } else { many.clone() })
}

/// `time`: reads the default zone from the root context's `timezone`.
struct TimeHelper;

impl HelperDef for TimeHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let zone = ctx
            .data()
            .get("timezone")
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_TIME_ZONE);
        time_h((h, r), zone).map(ScopedJson::Derived)
    }
}

fn time_h(args: Args<'_, '_>, default_zone: &str) -> Result<Value, RenderError> {
    let ms = param(args, 0)?;
    let ms = ms
        .as_i64()
        .or_else(|| ms.as_f64().map(|f| f as i64))
        .or_else(|| ms.as_str().and_then(|s| s.trim().parse().ok()))
        .ok_or_else(|| other(format!("helper `time`: {ms} is not Unix milliseconds")))?;
    let format = opt_param(args, 1)?.map_or(Cow::Borrowed(DEFAULT_TIME_FORMAT), text);
    let zone = opt_param(args, 2)?.map_or(Cow::Borrowed(default_zone), text);
    format_time(ms, &format, &zone)
        .map(Value::String)
        .map_err(|e| other(format!("helper `time`: {e}")))
}

/// `take LIST N`. When the list has no more than N items (the usual case: pushes rarely carry
/// more than the 10 commits the templates show) the list is handed back by reference, as a
/// path into the context: `#each` then walks it by path, where a copy would be cloned twice
/// more (the block's base value, then each item). The built-in push templates take the
/// commits three times, so every commit was copied up to five times per message.
struct Take;

impl HelperDef for Take {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let args = (h, r);
        let list = param(args, 0)?;
        if let Value::Array(items) = list
            && items.len() <= count(args, 1)?
            && let Some(path) = h.param(0).and_then(|p| p.context_path())
            && let Some(found) = in_context(ctx.data(), path)
            // The path must lead to this very list; anything else (a value from a block
            // parameter, say) is copied as before.
            && std::ptr::eq(found, list)
        {
            return Ok(ScopedJson::Context(found, path.clone()));
        }
        take_h(args).map(ScopedJson::Derived)
    }
}

/// The value at a full context path (object keys and array indices), borrowed from the data.
fn in_context<'a>(root: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(root, |value, segment| match value {
        Value::Object(map) => map.get(segment),
        Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

fn take_h(args: Args<'_, '_>) -> Result<Value, RenderError> {
    let list = param(args, 0)?;
    let n = count(args, 1)?;
    Ok(match list {
        Value::Array(a) => Value::Array(a.iter().take(n).cloned().collect()),
        Value::Null => Value::Array(Vec::new()),
        v => {
            return Err(other(format!("helper `take`: {v} is not a list")));
        }
    })
}

fn sub_h(args: Args<'_, '_>) -> Result<Value, RenderError> {
    let a = param(args, 0)?;
    let b = param(args, 1)?;
    let num = |v: &Value| {
        v.as_f64()
            .ok_or_else(|| other(format!("helper `sub`: {v} is not a number")))
    };
    match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => Ok(Value::from(x.saturating_sub(y))),
        _ => Ok(Value::from(num(a)? - num(b)?)),
    }
}

fn has_url_h(args: Args<'_, '_>) -> Result<Value, RenderError> {
    for i in 0..args.0.params().len() {
        if escape::sanitize_url(&text(param(args, i)?)).is_some() {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

fn concat_h(args: Args<'_, '_>) -> Result<Value, RenderError> {
    let mut out = String::new();
    for i in 0..args.0.params().len() {
        out.push_str(&text(param(args, i)?));
    }
    Ok(Value::String(out))
}

#[derive(Clone, Copy)]
enum RawKind {
    Link,
    Url,
    Json,
    Mention,
    Who,
    Quote,
}

/// A helper that writes already-escaped text straight to the output.
struct Raw {
    platform: PlatformKind,
    kind: RawKind,
}

impl HelperDef for Raw {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let args = (h, r);
        let s = match self.kind {
            RawKind::Link => {
                let url = text(param(args, 0)?);
                // Without a text (or with an empty one) the link shows the sanitised URL.
                let label = opt_param(args, 1)?.map_or(Cow::Borrowed(""), text);
                escape::link(self.platform, &url, &label)
            }
            RawKind::Url => {
                param(args, 0)?;
                let mut found = String::new();
                for i in 0..h.params().len() {
                    if let Some(u) = escape::sanitize_url(&text(param(args, i)?)) {
                        found = escape::json_str(&u);
                        break;
                    }
                }
                found
            }
            RawKind::Json => match param(args, 0)? {
                v @ (Value::Array(_) | Value::Object(_)) => v.to_string(),
                v => escape::json_str(&text(v)),
            },
            RawKind::Mention => {
                let p = param(args, 0)?;
                let markup = p.get("markup").and_then(Value::as_str).ok_or_else(|| {
                    other(format!(
                        "helper `mention`: {p} is not one of `mentions.people` (it has no `markup`)"
                    ))
                })?;
                escape::json_str(markup)
            }
            RawKind::Quote => quote(self.platform, &text(param(args, 0)?)),
            RawKind::Who => {
                let u = param(args, 0)?;
                who(self.platform, u, ctx.data())
            }
        };
        out.write(&s).map_err(RenderError::from)
    }
}

/// `who`: the ping of a user this message mentions, else their name (linked to their profile
/// when they have one), escaped.
fn who(platform: PlatformKind, user: &Value, root: &Value) -> String {
    let field = |k: &str| user.get(k).and_then(Value::as_str).unwrap_or("");
    let login = field("login");
    if !login.is_empty()
        && let Some(people) = root.pointer("/mentions/people").and_then(Value::as_array)
        && let Some(markup) = people
            .iter()
            .filter(|p| {
                p.get("login")
                    .and_then(Value::as_str)
                    .is_some_and(|l| l.eq_ignore_ascii_case(login))
            })
            .find_map(|p| p.get("markup").and_then(Value::as_str))
    {
        return escape::json_str(markup);
    }
    let name = if field("name").trim().is_empty() {
        login
    } else {
        field("name")
    };
    let name = truncate(name, 40);
    if escape::sanitize_url(field("url")).is_some() {
        escape::link(platform, field("url"), &name)
    } else {
        escape::escape(platform, &name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn registry(platform: PlatformKind) -> Handlebars<'static> {
        let mut r = Handlebars::new();
        r.set_strict_mode(true);
        r.register_escape_fn(move |s| escape::escape(platform, s));
        register(&mut r, platform);
        r
    }

    fn render(platform: PlatformKind, tpl: &str, data: &Value) -> String {
        registry(platform)
            .render_template(tpl, data)
            .unwrap_or_else(|e| panic!("{tpl}: {e}"))
    }

    /// Renders where a value came from: its full context path, or `copy` for a derived value.
    struct PathOf;

    impl HelperDef for PathOf {
        fn call<'reg: 'rc, 'rc>(
            &self,
            h: &Helper<'rc>,
            _: &'reg Handlebars<'reg>,
            _: &'rc Context,
            _: &mut RenderContext<'reg, 'rc>,
            out: &mut dyn Output,
        ) -> HelperResult {
            let shown = h
                .param(0)
                .and_then(|p| p.context_path())
                .map_or_else(|| "copy".to_owned(), |p| p.join("."));
            out.write(&shown)?;
            Ok(())
        }
    }

    #[test]
    fn take_hands_back_a_short_list_by_reference_and_copies_a_cut_one() {
        let mut r = registry(PlatformKind::Slack);
        r.register_helper("path_of", Box::new(PathOf));
        let data = json!({
            "list": ["a", "b", "c"],
            "outer": [{ "items": [1, 2] }, { "items": [3, 4, 5] }],
        });
        let render = |tpl: &str| r.render_template(tpl, &data).unwrap();
        assert_eq!(render("{{path_of (take list 3)}}"), "list");
        assert_eq!(render("{{path_of (take list 10)}}"), "list");
        assert_eq!(render("{{path_of (take list 2)}}"), "copy");
        // Inside a block the path is the full one, and each item is still the right one.
        assert_eq!(
            render("{{#each outer}}{{path_of (take this.items 5)}};{{/each}}"),
            "outer.0.items;outer.1.items;"
        );
        assert_eq!(
            render(
                "{{#each outer}}{{#each (take this.items 2)}}{{@index}}={{this}}{{#if @last}};{{else}},{{/if}}{{/each}}{{/each}}"
            ),
            "0=1,1=2;0=3,1=4;"
        );
        // Block parameters name the items by path as they do for a plain list.
        assert_eq!(
            render(
                "{{#each (take outer 5) as |o i|}}{{i}}:{{#each (take o.items 5) as |n|}}{{n}}{{/each}};{{/each}}"
            ),
            "0:12;1:345;"
        );
        // A list that is itself a helper's result has no path: copied, and still correct.
        assert_eq!(
            render(
                "{{path_of (take (take list 2) 5)}}|{{#each (take (take list 2) 5)}}{{this}}{{/each}}"
            ),
            "copy|ab"
        );
        assert_eq!(
            render(
                "{{#each (take list 10)}}{{this}}{{#unless @last}},{{/unless}}{{/each}} {{len (take list 10)}}"
            ),
            "a,b,c 3"
        );
    }

    #[test]
    fn truncate_counts_chars_and_never_splits() {
        assert_eq!(truncate("hello", 5), "hello");
        assert_eq!(truncate("hello!", 5), "hell…");
        assert_eq!(truncate("中文字符串很长", 4), "中文字…");
        assert_eq!(truncate("🎉🎉🎉", 2), "🎉…");
        assert_eq!(truncate("ab  cd", 4), "ab…");
        assert_eq!(truncate("abc", 0), "");
        assert_eq!(truncate("", 3), "");
        assert_eq!(truncate("x", 1), "x");
        assert_eq!(truncate("xy", 1), "…");
    }

    #[test]
    fn line_helpers() {
        assert_eq!(first_line("a\r\nb"), "a");
        assert_eq!(first_line(""), "");
        assert_eq!(oneline("a\n\n  b \r\nc"), "a b c");
        assert_eq!(short_sha("0123456789", 7), "0123456");
        assert_eq!(short_sha("abc", 7), "abc");
    }

    #[test]
    fn zones_and_times() {
        assert_eq!(parse_zone("+08:00"), UtcOffset::from_hms(8, 0, 0).ok());
        assert_eq!(parse_zone("-0530"), UtcOffset::from_hms(-5, -30, 0).ok());
        assert_eq!(parse_zone("+8"), UtcOffset::from_hms(8, 0, 0).ok());
        assert_eq!(parse_zone("UTC"), Some(UtcOffset::UTC));
        assert_eq!(parse_zone("Asia/Shanghai"), None);
        assert_eq!(parse_zone("+25:00"), None);
        // 2023-11-14T22:13:20Z
        let ms = 1_700_000_000_000;
        assert_eq!(
            format_time(ms, DEFAULT_TIME_FORMAT, "+08:00").unwrap(),
            "2023-11-15 06:13"
        );
        assert_eq!(format_time(ms, "%H:%M:%S", "UTC").unwrap(), "22:13:20");
        assert!(format_time(ms, "%Q", "UTC").is_err());
    }

    #[test]
    fn value_helpers_go_through_the_escape_fn() {
        let data = json!({"t": "<b>\"hi\"</b>\nnext", "n": 3, "list": ["a<", "b"],
                          "users": [{"name": "x&y"}, {"name": ""}, {"name": "z"}],
                          "empty": "", "nil": null, "ms": 1_700_000_000_000i64});
        let s = PlatformKind::Slack;
        assert_eq!(render(s, "{{truncate t 5}}", &data), "&lt;b&gt;\\\"…");
        assert_eq!(
            render(s, "{{first_line t}}", &data),
            "&lt;b&gt;\\\"hi\\\"&lt;/b&gt;"
        );
        assert_eq!(render(s, "{{join list \" | \"}}", &data), "a&lt; | b");
        assert_eq!(
            render(s, "{{join users key=\"name\"}}", &data),
            "x&amp;y, z"
        );
        assert_eq!(render(s, "{{join nil}}", &data), "");
        assert_eq!(
            render(s, "{{plural n \"commit\" \"commits\"}}", &data),
            "commits"
        );
        assert_eq!(
            render(s, "{{plural 1 \"commit\" \"commits\"}}", &data),
            "commit"
        );
        assert_eq!(render(s, "{{plural list \"x\" \"xs\"}}", &data), "xs");
        assert_eq!(
            render(
                s,
                "{{default empty \"none\"}}|{{default nil \"-\"}}|{{default n 0}}",
                &data
            ),
            "none|-|3"
        );
        assert_eq!(render(s, "{{time ms}}", &data), "2023-11-15 06:13");
        assert_eq!(
            render(s, "{{time ms \"%Y/%m/%d\" \"UTC\"}}", &data),
            "2023/11/14"
        );
        assert_eq!(
            render(s, "{{#each (take list 1)}}{{this}}{{/each}}", &data),
            "a&lt;"
        );
        assert_eq!(render(s, "{{sub n 1}} {{sub n (len list)}}", &data), "2 1");
        assert_eq!(
            render(
                s,
                "{{#if (gt (sub n (len (take list 10))) 0)}}more{{/if}}",
                &data
            ),
            "more"
        );
        assert_eq!(
            render(s, "{{short_sha \"0123456789abc\"}}", &data),
            "0123456"
        );
        assert_eq!(render(s, "{{truncate nil 3}}", &data), "");
    }

    #[test]
    fn output_helpers_write_escaped_text_once() {
        let data = json!({"u": "https://g.com/a b", "t": "x<y>\"z\"", "bad": "javascript:x"});
        assert_eq!(
            render(PlatformKind::Slack, "{{link u t}}", &data),
            "<https://g.com/a%20b|x&lt;y&gt;\\\"z\\\">"
        );
        assert_eq!(
            render(PlatformKind::Dingtalk, "{{link u t}}", &data),
            "[x<\u{200B}y>\\\"z\\\"](https://g.com/a%20b)"
        );
        assert_eq!(
            render(PlatformKind::Feishu, "{{link u}}", &data),
            "[https://g.com/a%20b](https://g.com/a%20b)"
        );
        assert_eq!(
            render(PlatformKind::Feishu, "{{url u}}|{{url bad}}", &data),
            "https://g.com/a%20b|"
        );
        assert_eq!(
            render(PlatformKind::Slack, "{{url bad \"\" u}}", &data),
            "https://g.com/a%20b"
        );
        assert_eq!(
            render(
                PlatformKind::Slack,
                "{{link (concat u \"/x&y\") (concat \"#\" 42 \" t\")}}",
                &data
            ),
            "<https://g.com/a%20b/x&y|#42 t>"
        );
        assert_eq!(
            render(PlatformKind::Feishu, "{{json t}}", &data),
            "x<y>\\\"z\\\""
        );
    }

    #[test]
    fn quote_mention_who_json_and_has_url() {
        let data = json!({
            "t": "a <b>\n\n  \nc\r\n",
            "blank": " \n ",
            "list": ["1", "x\"y"],
            "mentions": {"people": [{"login": "carol", "markup": "<@U1>"}]},
            "carol": {"login": "Carol", "name": "Carol Li", "url": "https://g.com/carol"},
            "dave": {"login": "dave", "name": "Dave <d>", "url": "https://g.com/dave"},
            "nobody": {"login": "", "name": "", "url": ""},
            "u": "https://g.com/x",
        });
        let s = PlatformKind::Slack;
        assert_eq!(render(s, "{{quote t}}", &data), "> a &lt;b&gt;\\n> c");
        assert_eq!(render(s, "{{quote blank}}", &data), ">");
        assert_eq!(
            render(PlatformKind::Dingtalk, "{{quote \"@all\"}}", &data),
            "> @\u{200B}all"
        );
        assert_eq!(render(s, "{{mention mentions.people.[0]}}", &data), "<@U1>");
        assert_eq!(render(s, "{{who carol}}", &data), "<@U1>");
        assert_eq!(
            render(s, "{{who dave}}", &data),
            "<https://g.com/dave|Dave &lt;d&gt;>"
        );
        assert_eq!(
            render(PlatformKind::Wecom, "{{who dave}}", &data),
            "[Dave <\u{200B}d>](https://g.com/dave)"
        );
        assert_eq!(render(s, "[{{who nobody}}]", &data), "[]");
        assert_eq!(render(s, "{{json list}}", &data), "[\"1\",\"x\\\"y\"]");
        assert_eq!(
            render(
                s,
                "{{#if (has_url \"x\" u)}}y{{/if}}{{#if (has_url \"x\")}}n{{/if}}",
                &data
            ),
            "y"
        );
        let r = registry(s);
        let e = r.render_template("{{mention carol}}", &data).unwrap_err();
        assert!(e.to_string().contains("mentions.people"), "{e}");
    }

    #[test]
    fn time_uses_the_root_timezone() {
        let data = json!({"ms": 1_700_000_000_000i64, "timezone": "UTC"});
        assert_eq!(
            render(PlatformKind::Slack, "{{time ms}}", &data),
            "2023-11-14 22:13"
        );
        let data = json!({"ms": 1_700_000_000_000i64});
        assert_eq!(
            render(PlatformKind::Slack, "{{time ms}}", &data),
            "2023-11-15 06:13"
        );
    }

    #[test]
    fn missing_paths_fail_in_strict_mode_with_their_name() {
        let r = registry(PlatformKind::Wecom);
        for tpl in [
            "{{truncate nope 3}}",
            "{{link nope \"x\"}}",
            "{{json a.nope}}",
            "{{url nope}}",
        ] {
            let e = r.render_template(tpl, &json!({"a": {}})).unwrap_err();
            assert!(e.to_string().contains("nope"), "{tpl}: {e}");
        }
        let e = r
            .render_template("{{truncate \"x\" \"many\"}}", &json!({}))
            .unwrap_err();
        assert!(e.to_string().contains("non-negative integer"), "{e}");
    }
}
