//! Rendering events into platform request bodies with Handlebars.
//!
//! A [`TemplateSet`] is one Handlebars registry for one platform: the built-in templates
//! (`templates/<platform>/<name>.hbs`, embedded in the binary), with the files of an override
//! folder replacing them. A template renders the **whole JSON body**; the result is parsed,
//! checked against the platform's shape and size limits ([`limits`]) and returned as a
//! [`serde_json::Value`]. A body over a size limit is rendered again from shortened text until
//! it fits ([`fit`]). [`reload::TemplateStore`] holds a set that can be replaced while the
//! relay runs (SIGHUP, file changes).
//!
//! # The context
//!
//! A template renders an [`EventContext`] (serialised as is, including `raw`, the payload as
//! Gitee sent it) plus two fields added by the renderer: `mentions` (who this message pings on
//! this platform, see [`mention`]) and `timezone` (the config's `timezone:`, the default zone
//! of the `time` helper). README.md ("The template context") documents every field with an example.
//!
//! # Override folder layout
//!
//! ```text
//! <dir>/                    the `templates:` folder of the config
//!   dingtalk/push.hbs       replaces the built-in dingtalk push template
//!   slack/note.hbs
//!   slack/_footer.hbs       a partial, usable as {{> _footer}} by the slack templates
//! ```
//!
//! `<dir>/<platform>/<name>.hbs`, with the canonical platform names `dingtalk`, `wecom`,
//! `feishu`, `slack`. `<name>` must be a built-in name (`push`, `tag_push`, `issue`,
//! `merge_request`, `note`) or start with `_` (a partial); any other name is an error, so a
//! misspelt file name cannot be silently ignored. Files not ending in `.hbs` and names starting
//! with `.` are ignored. A missing platform folder means "no overrides"; a missing `<dir>` is an
//! error, and so are `.hbs` files directly in `<dir>` and platform folders under an alias name
//! (`lark/`, `ding/`).
//!
//! # Writing templates
//!
//! * Strict mode is on: a field that does not exist is an error. Every field of
//!   [`EventContext`] is always present (null when it does not apply), so test optional parts
//!   with `{{#if issue.assignee}}` before reading inside them.
//! * `{{x}}` is escaped for a JSON string **and** for the platform's markup ([`escape`]), so it
//!   must sit inside a JSON string (numbers and booleans may also stand alone). `{{{x}}}`
//!   disables escaping: don't.
//! * Use `{{url x}}` for URL fields (buttons), `{{link url text}}` for links in text, `{{json x}}`
//!   for `plain_text` fields; see [`helpers`] for the full list. A helper name shadows a field
//!   of the same name in `{{name}}` (`url`, `time`, `link`...): write `{{this.url}}` there.
//! * Templates are checked when loaded: each is rendered against the [`sample`] events, so
//!   misspelt fields, invalid JSON and over-limit bodies are errors at `check` and at startup.

pub mod builtin;
pub mod error;
pub mod escape;
pub mod fit;
pub mod helpers;
mod inline;
pub mod limits;
pub mod mention;
pub mod reload;
pub mod sample;

#[cfg(test)]
mod prop_tests;
#[cfg(test)]
mod snapshot_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use handlebars::{Handlebars, RenderErrorReason};
use serde::Serialize;
use serde_json::Value;

pub use error::{RenderError, TemplateError, TemplateSource};
pub use mention::{Mentions, People};
pub use reload::{Reloader, TemplateStore};

use crate::gitee::EventContext;
use crate::platform::PlatformKind;

/// One compiled set of templates for one platform. `Send + Sync`; share it with an `Arc`.
#[derive(Clone)]
pub struct TemplateSet {
    platform: PlatformKind,
    registry: Handlebars<'static>,
    sources: BTreeMap<String, TemplateSource>,
    /// The context's `timezone`: the `time` helper's default zone.
    timezone: String,
    /// Whether any template of the set may read `raw` (its text contains `raw`). When none
    /// does, messages are rendered from the typed view alone, without building `raw` (half the
    /// parse) or copying it into every partial's context (most of the rendering time).
    uses_raw: bool,
}

/// What a message is rendered for besides the event: who may be pinged.
#[derive(Debug, Clone, Copy, Default)]
pub struct RenderOptions<'a> {
    /// `people:` of the config (None: nobody is mapped).
    pub people: Option<&'a People>,
    /// False when the routes turned mentions off for this channel and event.
    pub mention: bool,
}

impl fmt::Debug for TemplateSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemplateSet")
            .field("platform", &self.platform)
            .field("sources", &self.sources)
            .field("timezone", &self.timezone)
            .finish_non_exhaustive()
    }
}

impl TemplateSet {
    /// The built-in templates of `platform` with the files of `<overrides>/<platform>/`
    /// replacing them, compiled and checked against the [`sample`] events.
    pub fn load(
        platform: PlatformKind,
        overrides: Option<&Path>,
    ) -> Result<TemplateSet, TemplateError> {
        // The built-ins are compiled once per process and validated by the unit tests; only
        // override files are compiled here, on top of a copy.
        let mut set = Self::builtin(platform);
        let Some(dir) = overrides else {
            return Ok(set);
        };
        for (name, path, text) in read_overrides(platform, dir)? {
            let source = TemplateSource::File(path);
            set.uses_raw |= mentions_raw(&text);
            set.registry
                .register_template_string(&name, &text)
                .map_err(|e| syntax_error(&source, &text, &e))?;
            set.sources.insert(name, source);
        }
        set.validate()?;
        Ok(set)
    }

    /// Every platform's set, loaded with [`TemplateSet::load`].
    pub fn load_all(
        overrides: Option<&Path>,
    ) -> Result<BTreeMap<PlatformKind, TemplateSet>, TemplateError> {
        PlatformKind::ALL
            .into_iter()
            .map(|p| Ok((p, Self::load(p, overrides)?)))
            .collect()
    }

    /// The built-in templates only. Panics only if a built-in template does not compile, which
    /// the unit tests rule out.
    pub fn builtin(platform: PlatformKind) -> TemplateSet {
        static COMPILED: OnceLock<Vec<TemplateSet>> = OnceLock::new();
        let all = COMPILED.get_or_init(|| {
            PlatformKind::ALL
                .into_iter()
                .map(|p| Self::compile_builtin(p, true))
                .collect()
        });
        all.iter()
            .find(|s| s.platform == platform)
            .cloned()
            .unwrap_or_else(|| Self::compile_builtin(platform, true))
    }

    /// The built-in set, with its inline partials spliced into their calls when `splice`
    /// (see [`inline`]: same output, no context copy per call).
    fn compile_builtin(platform: PlatformKind, splice: bool) -> TemplateSet {
        let texts = builtin::templates(platform)
            .iter()
            .map(|(name, text)| {
                let source = TemplateSource::Builtin {
                    platform,
                    name: (*name).to_owned(),
                };
                let text = match splice {
                    true => inline::splice(text).unwrap_or_else(|| (*text).to_owned()),
                    false => (*text).to_owned(),
                };
                ((*name).to_owned(), (source, text))
            })
            .collect();
        Self::compile(platform, texts).unwrap_or_else(|e| panic!("built-in templates: {e}"))
    }

    fn compile(
        platform: PlatformKind,
        texts: BTreeMap<String, (TemplateSource, String)>,
    ) -> Result<TemplateSet, TemplateError> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        // Partials are spliced in verbatim: indenting their lines would put spaces into JSON
        // strings.
        registry.set_prevent_indent(true);
        registry.register_escape_fn(move |s| escape::escape(platform, s));
        helpers::register(&mut registry, platform);
        let mut sources = BTreeMap::new();
        let uses_raw = texts.values().any(|(_, text)| mentions_raw(text));
        for (name, (source, text)) in texts {
            registry
                .register_template_string(&name, &text)
                .map_err(|e| syntax_error(&source, &text, &e))?;
            sources.insert(name, source);
        }
        Ok(TemplateSet {
            platform,
            registry,
            sources,
            timezone: helpers::DEFAULT_TIME_ZONE.to_owned(),
            uses_raw,
        })
    }

    /// The same set with another default zone for the `time` helper (`+08:00`, `-05:30`,
    /// `UTC`; see [`helpers::parse_zone`]). An invalid zone is kept and reported by the `time`
    /// helper; the config validates `timezone:` before it gets here.
    pub fn with_timezone(mut self, zone: &str) -> TemplateSet {
        self.timezone = zone.trim().to_owned();
        self
    }

    /// The `time` helper's default zone.
    pub fn timezone(&self) -> &str {
        &self.timezone
    }

    /// Whether a template of the set may read the context's `raw`; when false, a context
    /// whose `raw` is null renders exactly like the full one.
    pub fn uses_raw(&self) -> bool {
        self.uses_raw
    }

    /// Renders every template that has [`sample`] events against all of them, once without
    /// and once with mentions: unknown fields, helper misuse, invalid JSON and bodies that
    /// cannot be made to fit become errors naming the template.
    pub fn validate(&self) -> Result<(), TemplateError> {
        let people = sample::people();
        let with_mentions = RenderOptions {
            people: Some(&people),
            mention: true,
        };
        for (label, ctx) in sample::contexts() {
            if self.registry.has_template(ctx.event.as_str()) {
                for opts in [RenderOptions::default(), with_mentions] {
                    self.render_with(&ctx, &opts)
                        .map_err(|error| TemplateError::Sample {
                            sample: label.clone(),
                            error,
                        })?;
                }
            }
        }
        Ok(())
    }

    pub fn platform(&self) -> PlatformKind {
        self.platform
    }

    /// Renders the template of `ctx.event` into the request body, pinging nobody.
    pub fn render(&self, ctx: &EventContext) -> Result<Value, RenderError> {
        self.render_with(ctx, &RenderOptions::default())
    }

    /// Renders the template of `ctx.event` into the request body, with the `mentions` that
    /// `opts` allow, fitted to the platform's size limits ([`fit`]).
    pub fn render_with(
        &self,
        ctx: &EventContext,
        opts: &RenderOptions<'_>,
    ) -> Result<Value, RenderError> {
        let data = self.context_value(ctx, opts);
        self.render_owned(ctx.event.as_str(), data)
    }

    /// Renders template `name` with arbitrary data, fitted to the platform's size limits like
    /// [`TemplateSet::render_with`]. `timezone` and an empty `mentions` are added to object
    /// data that has none.
    pub fn render_data(&self, name: &str, data: &Value) -> Result<Value, RenderError> {
        self.render_owned(name, data.clone())
    }

    fn render_owned(&self, name: &str, mut data: Value) -> Result<Value, RenderError> {
        self.add_defaults(&mut data);
        fit::fit(data, |d| self.render_checked(name, d))
    }

    fn add_defaults(&self, data: &mut Value) {
        if let Value::Object(map) = data {
            map.entry("timezone")
                .or_insert_with(|| Value::String(self.timezone.clone()));
            map.entry("mentions").or_insert_with(|| {
                serde_json::to_value(Mentions::default()).unwrap_or(Value::Null)
            });
        }
    }

    /// The exact data a template of `ctx` sees: the context, `mentions` and `timezone`.
    pub fn context_value(&self, ctx: &EventContext, opts: &RenderOptions<'_>) -> Value {
        let mentions = match opts.people {
            Some(people) => mention::compute(self.platform, ctx, people, opts.mention),
            None => Mentions {
                enabled: opts.mention,
                ..Mentions::default()
            },
        };
        let mut data = serde_json::to_value(ctx).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut data {
            map.insert(
                "mentions".into(),
                serde_json::to_value(mentions).unwrap_or(Value::Null),
            );
            map.insert("timezone".into(), Value::String(self.timezone.clone()));
        }
        data
    }

    /// Renders template `name` with any data (for digests, test messages...): parses the JSON
    /// and checks the platform's shape and limits (keeping room for a keyword and a
    /// signature, see [`limits::check_fitted`]). No size fitting: a body over a limit is
    /// [`RenderError::TooLarge`]. `timezone` and an empty `mentions` are added to object data
    /// that has none (so an event template can render a bare context).
    pub fn render_named(&self, name: &str, data: &impl Serialize) -> Result<Value, RenderError> {
        let mut data = serde_json::to_value(data).map_err(|e| RenderError::Template {
            template: self.source_of(name),
            line: None,
            column: None,
            reason: format!("the data cannot be serialised: {e}"),
        })?;
        self.add_defaults(&mut data);
        self.render_checked(name, &handlebars::Context::from(data))
    }

    fn render_checked(&self, name: &str, data: &handlebars::Context) -> Result<Value, RenderError> {
        let text = self.render_context(name, data)?;
        let template = self.source_of(name);
        let value: Value = serde_json::from_str(&text).map_err(|e| RenderError::InvalidJson {
            template: template.clone(),
            line: e.line(),
            column: e.column(),
            reason: json_reason(&e),
            excerpt: error::json_excerpt(&text, e.line(), e.column(), 60),
        })?;
        if !value.is_object() {
            return Err(RenderError::NotAnObject {
                template,
                found: json_kind(&value),
            });
        }
        limits::check_fitted(self.platform, &value).map_err(|v| match v {
            limits::Violation::Schema(reason) => RenderError::Schema {
                template: template.clone(),
                platform: self.platform,
                reason,
            },
            limits::Violation::TooLarge(exceeded) => RenderError::TooLarge {
                template: template.clone(),
                platform: self.platform,
                exceeded,
            },
        })?;
        Ok(value)
    }

    /// The rendered text of template `name`, not parsed (for debugging a template). The data
    /// is used as is (see [`TemplateSet::context_value`] for what event templates expect).
    pub fn render_text(&self, name: &str, data: &impl Serialize) -> Result<String, RenderError> {
        let ctx = handlebars::Context::wraps(data).map_err(|e| RenderError::Template {
            template: self.source_of(name),
            line: None,
            column: None,
            reason: format!("the data cannot be serialised: {e}"),
        })?;
        self.render_context(name, &ctx)
    }

    fn render_context(&self, name: &str, ctx: &handlebars::Context) -> Result<String, RenderError> {
        if !self.registry.has_template(name) {
            return Err(RenderError::NoTemplate {
                platform: self.platform,
                name: name.to_owned(),
            });
        }
        self.registry.render_with_context(name, ctx).map_err(|e| {
            let template = e
                .template_name
                .as_deref()
                .map_or_else(|| self.source_of(name), |n| self.source_of(n));
            RenderError::Template {
                template,
                line: e.line_no,
                column: e.column_no,
                reason: render_reason(e.reason()),
            }
        })
    }

    /// The names of all templates of the set (built-in names and override partials), sorted.
    pub fn names(&self) -> Vec<String> {
        self.sources.keys().cloned().collect()
    }

    /// Where template `name` comes from. A name that is not in the set is reported as
    /// built-in.
    pub fn source_of(&self, name: &str) -> TemplateSource {
        self.sources
            .get(name)
            .cloned()
            .unwrap_or_else(|| TemplateSource::Builtin {
                platform: self.platform,
                name: name.to_owned(),
            })
    }
}

/// Whether a template's text may read `raw` (`raw.x`, `@root.raw`, `lookup this "raw"`...):
/// any occurrence counts, so a false positive only costs speed.
fn mentions_raw(text: &str) -> bool {
    text.contains("raw")
}

fn syntax_error(
    source: &TemplateSource,
    text: &str,
    e: &handlebars::TemplateError,
) -> TemplateError {
    let (line, column) = match e.pos() {
        Some((l, c)) => (Some(l), Some(c)),
        None => (None, None),
    };
    TemplateError::Syntax {
        template: source.clone(),
        line,
        column,
        reason: e.reason().to_string(),
        snippet: match (line, column) {
            (Some(l), Some(c)) => error::caret_snippet(text, l, c),
            _ => String::new(),
        },
    }
}

fn render_reason(reason: &RenderErrorReason) -> String {
    match reason {
        RenderErrorReason::MissingVariable(Some(path)) => format!(
            "`{path}` does not exist (strict mode: check the spelling; test optional values with {{{{#if}}}} first)"
        ),
        RenderErrorReason::MissingVariable(None) => {
            "a value does not exist (strict mode)".to_owned()
        }
        other => other.to_string(),
    }
}

fn json_reason(e: &serde_json::Error) -> String {
    // serde_json's Display appends " at line L column C", reported separately here.
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The override files of `platform` in `dir`: `(name, path, text)`, sorted by name.
fn read_overrides(
    platform: PlatformKind,
    dir: &Path,
) -> Result<Vec<(String, PathBuf, String)>, TemplateError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TemplateError::Io { path, source }
    };
    let meta = fs::metadata(dir).map_err(io(dir))?;
    if !meta.is_dir() {
        return Err(TemplateError::Layout {
            path: dir.to_path_buf(),
            reason: "the templates folder is not a folder".into(),
        });
    }
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if path.is_file() && name.ends_with(".hbs") {
            return Err(TemplateError::Layout {
                reason: format!(
                    "templates go in a platform folder: {}/<platform>/{name} (platform: dingtalk, wecom, feishu or slack)",
                    dir.display()
                ),
                path,
            });
        }
        if path.is_dir()
            && let Some(p) = PlatformKind::parse(&name).filter(|p| p.as_str() != name)
        {
            return Err(TemplateError::Layout {
                reason: format!("name the platform folder `{p}`"),
                path,
            });
        }
    }
    let pdir = dir.join(platform.as_str());
    if !pdir.is_dir() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in fs::read_dir(&pdir).map_err(io(&pdir))? {
        let entry = entry.map_err(io(&pdir))?;
        let path = entry.path();
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(name) = file_name.strip_suffix(".hbs") else {
            continue;
        };
        if file_name.starts_with('.') || !path.is_file() {
            continue;
        }
        if !(builtin::NAMES.contains(&name) || name.starts_with('_')) {
            return Err(TemplateError::UnknownName {
                name: name.to_owned(),
                known: builtin::NAMES.iter().map(|n| (*n).to_owned()).collect(),
                path,
            });
        }
        let text = fs::read_to_string(&path).map_err(io(&path))?;
        out.push((name.to_owned(), path, text));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
