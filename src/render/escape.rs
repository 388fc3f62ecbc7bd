//! Escaping of payload text for each platform.
//!
//! Every `{{x}}` in a template sits inside a JSON string literal of the request body, so the
//! escape function registered for a platform does two things, in this order:
//!
//! 1. **markup neutralisation** ([`markup`]): text written by Gitee users (commit messages,
//!    titles, comments, branch names) must not be able to act as the platform's markup — no
//!    mentions, no links, no tags;
//! 2. **JSON string escaping** ([`json_str`]): `"` `\` and every control character, so that no
//!    text can end the string or break the JSON document.
//!
//! Markup rules per platform:
//!
//! | platform | neutralised |
//! |---|---|
//! | Slack mrkdwn | `&`→`&amp;`, `<`→`&lt;`, `>`→`&gt;` (exactly the three entities Slack decodes; this disarms `<!channel>`, `<@U…>` and `<url\|text>`) |
//! | Feishu `lark_md` | `&`→`&amp;`, `<`→`&lt;`, `>`→`&gt;` (disarms `<at …>` and `<font …>`), and `](`→`]`U+200B`(` (no injected links) |
//! | WeCom markdown v1 | `<`→`<`U+200B (disarms `<@userid>` and `<font …>`), `](`→`]`U+200B`(` |
//! | DingTalk markdown | `<`→`<`U+200B (disarms `<font …>`/HTML), `](`→`]`U+200B`(`, `@`→`@`U+200B (disarms `@all`, `@<mobile>` and `@<userId>`) |
//!
//! Why U+200B (ZERO WIDTH SPACE) for WeCom and DingTalk: neither documents HTML entities in its
//! markdown, so `&lt;` may be shown literally; a zero-width space after `<` keeps the text
//! looking exactly as written while the tag/mention parsers no longer see `<font` or `<@`. The
//! same trick between `]` and `(` stops `[text](url)` from a commit message becoming a link (and
//! `![](url)` an image) on every markdown platform, with no visible change.
//!
//! DingTalk highlights `@<mobile>`/`@<userId>` anywhere in the text when the id is also listed
//! in the body's `at` object, and `@all` can go with `isAtAll`; a zero-width space after every
//! `@` of user text means only the relay's own `@id`s (written by the `mention`/`who` helpers,
//! which bypass this escape) can ever match.
//!
//! Text in `plain_text` fields (Slack header/button, Feishu card header/button/note) is not
//! markup at all; templates write those with the `json` helper, which only JSON-escapes.

use std::borrow::Cow;

use crate::platform::PlatformKind;

/// ZERO WIDTH SPACE, inserted to break markup sequences without a visible change.
pub const ZWSP: char = '\u{200B}';

/// Escapes `s` for use inside a JSON string literal (the quotes are not added).
///
/// `"` and `\` are backslash-escaped; `\n`, `\r`, `\t` use their short forms; every other
/// control character U+0000–U+001F, DEL and the line/paragraph separators U+2028/U+2029 (which
/// break JavaScript-based consumers) become `\u00XX` / `\u2028` / `\u2029`.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    json_str_into(&mut out, s);
    out
}

/// [`json_str`] appending to `out`.
pub fn json_str_into(out: &mut String, s: &str) {
    // Most text needs no escape at all: copied whole. 0xE2 leads U+2028/U+2029 (and other
    // punctuation, which the loop below then copies as it is).
    if !s
        .bytes()
        .any(|b| b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f || b == 0xe2)
    {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
}

/// Neutralises the platform's markup in user text (see the module documentation).
pub fn markup(platform: PlatformKind, s: &str) -> Cow<'_, str> {
    match platform {
        PlatformKind::Slack => entities(s),
        PlatformKind::Feishu => {
            let s = entities(s);
            if s.contains("](") {
                Cow::Owned(s.replace("](", "]\u{200B}("))
            } else {
                s
            }
        }
        PlatformKind::Wecom | PlatformKind::Dingtalk => {
            let at = platform == PlatformKind::Dingtalk;
            if !(s.contains('<') || s.contains("](") || (at && s.contains('@'))) {
                return Cow::Borrowed(s);
            }
            let mut out = String::with_capacity(s.len() + 6);
            let mut prev = '\0';
            for c in s.chars() {
                if prev == ']' && c == '(' {
                    out.push(ZWSP);
                }
                out.push(c);
                if c == '<' || (at && c == '@') {
                    out.push(ZWSP);
                }
                prev = c;
            }
            Cow::Owned(out)
        }
    }
}

/// The complete escape for a `{{x}}` of `platform`: [`markup`] then [`json_str`].
pub fn escape(platform: PlatformKind, s: &str) -> String {
    json_str(&markup(platform, s))
}

/// Escapes `&`, `<`, `>` as HTML entities.
fn entities(s: &str) -> Cow<'_, str> {
    if !s.contains(['&', '<', '>']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Sanitises a URL for a link target or a button: only `http://` and `https://` URLs pass
/// (anything else, including `javascript:` and empty strings, gives `None`); surrounding
/// whitespace is trimmed; every character that could end a markdown link or a Slack
/// `<url|text>`, or that is not valid in a URL, is percent-encoded: space, `"` `'` `(` `)` `<`
/// `>` `|` `\` `^` `` ` `` `{` `}`, control characters and non-ASCII (as UTF-8 bytes). A `%`
/// that does not start a `%XX` escape becomes `%25`. `&`, `?`, `#`, `=` and the rest of the URL
/// syntax are kept.
pub fn sanitize_url(url: &str) -> Option<String> {
    let url = url.trim();
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return None;
    }
    let bytes = url.as_bytes();
    let mut out = String::with_capacity(url.len() + 8);
    for (i, &b) in bytes.iter().enumerate() {
        let keep = match b {
            b'%' => {
                bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => true,
            b'-' | b'.' | b'_' | b'~' | b':' | b'/' | b'?' | b'#' | b'[' | b']' | b'@' | b'!'
            | b'$' | b'&' | b'*' | b'+' | b',' | b';' | b'=' => true,
            _ => false,
        };
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Some(out)
}

/// Link text: markup-neutralised, on one line, and unable to end the link early.
///
/// Markdown platforms: `[`/`]` become the full-width `［`/`］` (renderers such as DingTalk's do
/// not balance brackets, so `[WIP] fix` would otherwise end the link text at its `]`). Slack:
/// `<>&` are entities already, and a `|` after the first one is part of the label.
fn link_text(platform: PlatformKind, text: &str) -> String {
    let one_line: Cow<'_, str> = if text.contains(['\n', '\r']) {
        Cow::Owned(
            text.split(['\n', '\r'])
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
        )
    } else {
        Cow::Borrowed(text)
    };
    let text = markup(platform, &one_line);
    if platform == PlatformKind::Slack || !text.contains(['[', ']']) {
        text.into_owned()
    } else {
        text.replace('[', "［").replace(']', "］")
    }
}

/// A link in the platform's markup, **not yet JSON-escaped**: `[text](url)` for DingTalk,
/// WeCom and Feishu, `<url|text>` for Slack. When the URL is not an http(s) URL the text is
/// returned alone (still neutralised). An empty text shows the URL.
pub fn link_markup(platform: PlatformKind, url: &str, text: &str) -> String {
    let Some(url) = sanitize_url(url) else {
        return link_text(platform, text);
    };
    let text = if text.trim().is_empty() {
        url.as_str()
    } else {
        text
    };
    let text = link_text(platform, text);
    match platform {
        PlatformKind::Slack => format!("<{url}|{text}>"),
        _ => format!("[{text}]({url})"),
    }
}

/// [`link_markup`] JSON-escaped, ready to be written inside a JSON string.
pub fn link(platform: PlatformKind, url: &str, text: &str) -> String {
    json_str(&link_markup(platform, url, text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use PlatformKind::*;

    fn parse_in_string(escaped: &str) -> String {
        let doc = format!("\"{escaped}\"");
        serde_json::from_str::<String>(&doc).unwrap_or_else(|e| panic!("{doc}: {e}"))
    }

    #[test]
    fn json_str_round_trips_every_control_char_and_specials() {
        let mut s: String = (0u32..0x20).map(|c| char::from_u32(c).unwrap()).collect();
        s.push_str("\"\\/\u{7f}\u{2028}\u{2029}}}{{ 中文 🎉 \u{200B}");
        let e = json_str(&s);
        assert!(!e.chars().any(|c| (c as u32) < 0x20), "{e}");
        assert!(e.contains("\\n") && e.contains("\\r") && e.contains("\\t"));
        assert!(e.contains("\\u0000") && e.contains("\\u001f") && e.contains("\\u007f"));
        assert!(e.contains("\\u2028") && e.contains("\\u2029"));
        assert!(e.contains("\\\"") && e.contains("\\\\"));
        assert_eq!(parse_in_string(&e), s);
    }

    #[test]
    fn slack_escapes_exactly_three_entities() {
        assert_eq!(
            markup(Slack, "a & b <!channel> <@U1> \"q\" 'x' *b*"),
            "a &amp; b &lt;!channel&gt; &lt;@U1&gt; \"q\" 'x' *b*"
        );
        assert_eq!(markup(Slack, "plain"), "plain");
        assert!(matches!(markup(Slack, "plain"), Cow::Borrowed(_)));
        // [x](y) is not a link in mrkdwn, so it is left alone.
        assert_eq!(markup(Slack, "[x](http://a)"), "[x](http://a)");
    }

    #[test]
    fn feishu_neutralises_tags_and_links() {
        assert_eq!(
            markup(
                Feishu,
                "<at user_id=\"all\">所有人</at> & <font color='red'>x</font>"
            ),
            "&lt;at user_id=\"all\"&gt;所有人&lt;/at&gt; &amp; &lt;font color='red'&gt;x&lt;/font&gt;"
        );
        assert_eq!(
            markup(Feishu, "see [here](http://evil)"),
            "see [here]\u{200B}(http://evil)"
        );
    }

    #[test]
    fn wecom_and_dingtalk_insert_zero_width_space() {
        for p in [Wecom, Dingtalk] {
            let at = if p == Dingtalk { "@\u{200B}" } else { "@" };
            assert_eq!(
                markup(p, "<@zhangsan> <font color=\"warning\">x</font>"),
                format!("<\u{200B}{at}zhangsan> <\u{200B}font color=\"warning\">x<\u{200B}/font>")
            );
            assert_eq!(
                markup(p, "![i](http://x) [a](b)"),
                "![i]\u{200B}(http://x) [a]\u{200B}(b)"
            );
            assert_eq!(markup(p, "a & b > c"), "a & b > c");
            assert!(matches!(markup(p, "no markup here"), Cow::Borrowed(_)));
        }
    }

    #[test]
    fn dingtalk_disarms_at_in_user_text() {
        assert_eq!(
            markup(Dingtalk, "@all @13800000000 mail bob@x.io"),
            "@\u{200B}all @\u{200B}13800000000 mail bob@\u{200B}x.io"
        );
        // WeCom pings only with <@id>, which `<` already disarms.
        assert_eq!(markup(Wecom, "@all"), "@all");
    }

    #[test]
    fn escape_is_markup_then_json() {
        assert_eq!(escape(Slack, "<\"a\">\n"), "&lt;\\\"a\\\"&gt;\\n");
        assert_eq!(escape(Feishu, "x\\y"), "x\\\\y");
        assert_eq!(escape(Wecom, "}}{{"), "}}{{");
    }

    #[test]
    fn sanitize_url_keeps_http_and_encodes_breakers() {
        assert_eq!(
            sanitize_url(" https://gitee.com/o/r/pulls/1 ").as_deref(),
            Some("https://gitee.com/o/r/pulls/1")
        );
        assert_eq!(
            sanitize_url("https://x.io/a b(c)|d<e>\"f\\g`h{i}^j'k?q=1&r=2#frag").as_deref(),
            Some("https://x.io/a%20b%28c%29%7Cd%3Ce%3E%22f%5Cg%60h%7Bi%7D%5Ej%27k?q=1&r=2#frag")
        );
        assert_eq!(
            sanitize_url("https://gitee.com/o/r/tree/功能").as_deref(),
            Some("https://gitee.com/o/r/tree/%E5%8A%9F%E8%83%BD")
        );
        assert_eq!(
            sanitize_url("https://x.io/%E5%8A/100%").as_deref(),
            Some("https://x.io/%E5%8A/100%25")
        );
        assert_eq!(sanitize_url("HTTP://X.IO").as_deref(), Some("HTTP://X.IO"));
        assert_eq!(
            sanitize_url("https://x.io/\n").as_deref(),
            Some("https://x.io/")
        );
        assert_eq!(
            sanitize_url("https://x.io/a\nb").as_deref(),
            Some("https://x.io/a%0Ab")
        );
        assert_eq!(sanitize_url("javascript:alert(1)"), None);
        assert_eq!(sanitize_url("ftp://x"), None);
        assert_eq!(sanitize_url(""), None);
        assert_eq!(
            sanitize_url("dingtalk://dingtalkclient/page/link?url=x"),
            None
        );
    }

    #[test]
    fn links_per_platform() {
        assert_eq!(
            link_markup(Dingtalk, "https://g.com/a", "main"),
            "[main](https://g.com/a)"
        );
        assert_eq!(
            link_markup(Slack, "https://g.com/a|b", "x|y <z>"),
            "<https://g.com/a%7Cb|x|y &lt;z&gt;>"
        );
        assert_eq!(
            link_markup(Feishu, "https://g.com/a)b", "[WIP] a & b"),
            "[［WIP］ a &amp; b](https://g.com/a%29b)"
        );
        assert_eq!(
            link_markup(Wecom, "https://g.com/", "<@all>\nline2"),
            "[<\u{200B}@all> line2](https://g.com/)"
        );
        // Not http(s): text only.
        assert_eq!(link_markup(Dingtalk, "javascript:x()", "t"), "t");
        assert_eq!(link_markup(Slack, "", "a<b"), "a&lt;b");
        // Empty text shows the URL.
        assert_eq!(
            link_markup(Slack, "https://g.com", ""),
            "<https://g.com|https://g.com>"
        );
        // JSON-escaped form parses back.
        let l = link(Feishu, "https://g.com/\"x\"", "say \"hi\"\\");
        assert_eq!(parse_in_string(&l), "[say \"hi\"\\](https://g.com/%22x%22)");
    }

    #[test]
    fn handlebars_style_braces_need_nothing() {
        for p in PlatformKind::ALL {
            assert_eq!(escape(p, "{{x}} }} {{"), "{{x}} }} {{");
        }
    }
}
