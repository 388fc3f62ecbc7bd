//! Errors of loading and rendering templates. Every message names the template (a file path
//! or `built-in <platform>/<name>.hbs`), the line and column where known, and the reason.

use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

use super::limits::Exceeded;
use crate::platform::PlatformKind;

/// Where a template came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TemplateSource {
    /// Embedded in the binary (`templates/<platform>/<name>.hbs` of the source tree).
    Builtin {
        platform: PlatformKind,
        name: String,
    },
    /// An override file.
    File(PathBuf),
}

impl fmt::Display for TemplateSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateSource::Builtin { platform, name } => {
                write!(f, "built-in {platform}/{name}.hbs")
            }
            TemplateSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// `source:line:column` (or less when unknown).
pub(crate) struct At<'a>(pub &'a TemplateSource, pub Option<usize>, pub Option<usize>);

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.1, self.2) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}", self.0),
            (Some(l), None) => write!(f, "{}:{l}", self.0),
            _ => write!(f, "{}", self.0),
        }
    }
}

/// A template set could not be loaded: unreadable or misplaced files, invalid Handlebars, or a
/// template that fails on the sample events (bad field names, invalid JSON, over the limits).
#[derive(Debug, Error)]
pub enum TemplateError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Layout { path: PathBuf, reason: String },
    #[error(
        "{}: unknown template name {name:?}: expected one of {} (or a partial whose name starts with `_`)",
        path.display(), known.join(", ")
    )]
    UnknownName {
        path: PathBuf,
        name: String,
        known: Vec<String>,
    },
    #[error("{}: invalid template: {reason}{}", At(template, *line, *column), snippet_suffix(snippet))]
    Syntax {
        template: TemplateSource,
        line: Option<usize>,
        column: Option<usize>,
        reason: String,
        /// The offending line with a caret under the column.
        snippet: String,
    },
    #[error(
        "{error}{}(while rendering the sample {sample} event)",
        sample_sep(error)
    )]
    Sample {
        sample: String,
        #[source]
        error: RenderError,
    },
}

/// The note about the sample goes on its own line after a multi-line error (an excerpt).
fn sample_sep(error: &RenderError) -> &'static str {
    if error.to_string().contains('\n') {
        "\n    "
    } else {
        " "
    }
}

fn snippet_suffix(snippet: &str) -> String {
    if snippet.is_empty() {
        String::new()
    } else {
        format!("\n{snippet}")
    }
}

/// Rendering one message failed.
#[derive(Debug, Error)]
pub enum RenderError {
    #[error("no template {name:?} for {platform}")]
    NoTemplate {
        platform: PlatformKind,
        name: String,
    },
    /// Handlebars failed: a field that does not exist (strict mode), a helper error...
    #[error("{}: {reason}", At(template, *line, *column))]
    Template {
        template: TemplateSource,
        line: Option<usize>,
        column: Option<usize>,
        reason: String,
    },
    /// The rendered text is not JSON. `line`/`column` are positions in the rendered text.
    #[error(
        "{template}: the rendered text is not valid JSON: {reason} at rendered line {line}, column {column}:\n{excerpt}"
    )]
    InvalidJson {
        template: TemplateSource,
        line: usize,
        column: usize,
        reason: String,
        excerpt: String,
    },
    #[error("{template}: the rendered JSON is {found}, not an object")]
    NotAnObject {
        template: TemplateSource,
        found: &'static str,
    },
    /// The body is JSON but not a message the platform accepts.
    #[error("{template}: not a valid {platform} message: {reason}")]
    Schema {
        template: TemplateSource,
        platform: PlatformKind,
        reason: String,
    },
    /// The body exceeds one of the platform's size limits.
    #[error("{template}: too large for {platform}: {exceeded}")]
    TooLarge {
        template: TemplateSource,
        platform: PlatformKind,
        exceeded: Exceeded,
    },
}

impl RenderError {
    /// The template the error is about, when there is one.
    pub fn template(&self) -> Option<&TemplateSource> {
        match self {
            RenderError::NoTemplate { .. } => None,
            RenderError::Template { template, .. }
            | RenderError::InvalidJson { template, .. }
            | RenderError::NotAnObject { template, .. }
            | RenderError::Schema { template, .. }
            | RenderError::TooLarge { template, .. } => Some(template),
        }
    }
}

/// The line `line` (1-based) of `text` with a caret under `column` (1-based, in characters).
pub(crate) fn caret_snippet(text: &str, line: usize, column: usize) -> String {
    let Some(content) = text.lines().nth(line.saturating_sub(1)) else {
        return String::new();
    };
    let pad = content
        .chars()
        .take(column.saturating_sub(1))
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect::<String>();
    format!("{line:5} | {content}\n      | {pad}^")
}

/// Up to `width` characters either side of byte offset `col0` on `line`, control characters
/// shown escaped, and a caret line under the position.
pub(crate) fn json_excerpt(text: &str, line: usize, column: usize, width: usize) -> String {
    let Some(content) = text.split('\n').nth(line.saturating_sub(1)) else {
        return String::new();
    };
    // serde_json reports a 1-based column counted in bytes; snap to a char boundary.
    let mut byte = column.saturating_sub(1).min(content.len());
    while !content.is_char_boundary(byte) {
        byte -= 1;
    }
    let (before, after) = content.split_at(byte);
    let before: Vec<char> = before.chars().collect();
    let skip = before.len().saturating_sub(width);
    let show = |c: char| -> String {
        if c.is_control() {
            c.escape_debug().to_string()
        } else {
            c.to_string()
        }
    };
    let mut head = String::new();
    if skip > 0 {
        head.push('…');
    }
    head.extend(before[skip..].iter().map(|&c| show(c)));
    let mut tail: String = after.chars().take(width).map(show).collect();
    if after.chars().count() > width {
        tail.push('…');
    }
    let caret = " ".repeat(head.chars().count());
    format!("    {head}{tail}\n    {caret}^")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_display_like_paths() {
        let b = TemplateSource::Builtin {
            platform: PlatformKind::Dingtalk,
            name: "push".into(),
        };
        assert_eq!(b.to_string(), "built-in dingtalk/push.hbs");
        assert_eq!(
            At(&b, Some(3), Some(7)).to_string(),
            "built-in dingtalk/push.hbs:3:7"
        );
        let f = TemplateSource::File(PathBuf::from("/etc/relay/templates/slack/note.hbs"));
        assert_eq!(
            At(&f, None, None).to_string(),
            "/etc/relay/templates/slack/note.hbs"
        );
    }

    #[test]
    fn snippets_point_at_the_column() {
        assert_eq!(caret_snippet("a\nbcd\n", 2, 3), "    2 | bcd\n      |   ^");
        assert_eq!(caret_snippet("a", 5, 1), "");
        let ex = json_excerpt("{\"a\": \"x\ny\"}", 1, 10, 40);
        assert_eq!(ex, "    {\"a\": \"x\n            ^");
        let long = format!("{}X{}", "a".repeat(100), "b".repeat(100));
        let ex = json_excerpt(&long, 1, 101, 10);
        assert_eq!(ex, "    …aaaaaaaaaaXbbbbbbbbb…\n               ^");
        let ex = json_excerpt("中文\u{1}x", 1, 7, 10);
        assert_eq!(ex, "    中文\\u{1}x\n      ^");
    }
}
