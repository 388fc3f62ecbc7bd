//! The template playground's endpoints: `POST /api/preview`, `GET /api/samples`,
//! `GET /api/templates/{name}`; and rendering a stored event for a channel now.
//!
//! An edited template is compiled into a one-off set: the channel's override folder copied
//! into a temporary folder with the edited file on top, loaded like any override folder (so
//! it is checked against every sample exactly as `check` and a reload would).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{error, reply};
use crate::gitee::EventKind;
use crate::http::AppState;
use crate::message::{self, Audience, Target};
use crate::platform::PlatformKind;
use crate::render::{TemplateSet, TemplateSource, builtin};
use crate::samples;
use crate::time_util::now_ms;

/// Renders a stored event for `channel` with the channel's current templates (what the
/// dispatcher would send now, before keyword and signature).
pub fn render_for_channel(
    state: &AppState,
    channel: &str,
    kind: EventKind,
    payload: &[u8],
    source: &str,
    is_test: bool,
    received_ms: i64,
) -> Result<Value, String> {
    let store = state
        .templates
        .get(channel)
        .ok_or_else(|| format!("channel `{channel}` is not configured"))?;
    let audience = Audience::from_config(&state.config);
    message::render(
        &store.current(),
        kind,
        payload,
        source,
        is_test,
        received_ms,
        &Target {
            audience: &audience,
            channel,
        },
    )
    .map_err(|e| e.to_string())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// Render for this channel (its platform, templates and people)...
    pub channel: Option<String>,
    /// ...or for a platform with the config's template folder.
    pub platform: Option<String>,
    /// A built-in sample (`GET /api/samples`)...
    pub sample: Option<String>,
    /// ...or a Gitee payload: a JSON object, or a string holding the body.
    pub payload: Option<Value>,
    /// The event (`push`, `Push Hook`...); default: the sample's, else the payload's
    /// `hook_name`.
    pub event: Option<String>,
    /// Render as the hook settings' Test button delivery (default: the sample's, else false).
    pub is_test: Option<bool>,
    /// The edited text of the event's template; absent: the current template.
    pub template: Option<String>,
}

/// Where a preview's templates come from.
struct Base {
    platform: PlatformKind,
    channel: Option<String>,
    dir: Option<std::path::PathBuf>,
    current: Option<Arc<TemplateSet>>,
}

fn base(state: &AppState, req: &PreviewRequest) -> Result<Base, (StatusCode, String)> {
    let bad = |m: String| (StatusCode::BAD_REQUEST, m);
    match (&req.channel, &req.platform) {
        (Some(c), _) if !c.is_empty() => {
            let store = state
                .templates
                .get(c)
                .ok_or_else(|| (StatusCode::NOT_FOUND, format!("no channel named `{c}`")))?;
            Ok(Base {
                platform: store.platform(),
                channel: Some(c.clone()),
                dir: store.dir().map(Path::to_path_buf),
                current: Some(store.current()),
            })
        }
        (_, Some(p)) if !p.is_empty() => {
            let platform = PlatformKind::parse(p).ok_or_else(|| {
                bad(format!(
                    "`{p}` is not a platform: use dingtalk, wecom, feishu (or lark) or slack"
                ))
            })?;
            let dir = state.config.templates.clone();
            // A channel of that platform on the config's folder already holds the set.
            let current = state
                .config
                .channels
                .values()
                .filter(|c| c.platform == platform && c.templates.is_none())
                .find_map(|c| state.templates.get(&c.name))
                .map(|s| s.current());
            Ok(Base {
                platform,
                channel: None,
                dir,
                current,
            })
        }
        _ => Err(bad("say which `channel` or `platform` to render for".into())),
    }
}

/// The payload bytes, its event kind and whether it is a test delivery.
fn payload(req: &PreviewRequest) -> Result<(Vec<u8>, EventKind, bool), String> {
    let (body, sample_kind, sample_test) = match (&req.sample, &req.payload) {
        (Some(_), Some(_)) => return Err("give a `sample` or a `payload`, not both".into()),
        (Some(name), None) => {
            let s = samples::find(name).ok_or_else(|| {
                let known: Vec<&str> = samples::all().iter().map(|s| s.name).collect();
                format!("no sample named `{name}` (samples: {})", known.join(", "))
            })?;
            (s.body.as_bytes().to_vec(), Some(s.kind), s.is_test)
        }
        (None, Some(Value::String(text))) => (text.clone().into_bytes(), None, false),
        (None, Some(v)) => (
            serde_json::to_vec(v).map_err(|e| e.to_string())?,
            None,
            false,
        ),
        (None, None) => return Err("give a `sample` name or a `payload`".into()),
    };
    let kind = match &req.event {
        Some(e) if !e.trim().is_empty() => EventKind::parse(e).ok_or_else(|| {
            format!("`{e}` is not an event: use push, tag_push, issue, merge_request or note")
        })?,
        _ => match sample_kind {
            Some(k) => k,
            None => crate::gitee::payload::detect_kind(None, &body).ok_or(
                "the payload has no known `hook_name`: say which `event` it is (push, tag_push, issue, merge_request, note)",
            )?,
        },
    };
    Ok((body, kind, req.is_test.unwrap_or(sample_test)))
}

/// Compiles `text` as template `name` over the overrides of `dir`, in a temporary folder.
/// Errors name the template `(edited) <platform>/<name>.hbs`.
pub fn compile_edited(
    platform: PlatformKind,
    dir: Option<&Path>,
    name: &str,
    text: &str,
    timezone: &str,
) -> Result<TemplateSet, String> {
    let tmp = TempDir::new().map_err(|e| format!("cannot create a temporary folder: {e}"))?;
    let pdir = tmp.path().join(platform.as_str());
    std::fs::create_dir_all(&pdir).map_err(|e| e.to_string())?;
    if let Some(dir) = dir
        && let Ok(entries) = std::fs::read_dir(dir.join(platform.as_str()))
    {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|x| x == "hbs") && path.is_file() {
                let _ = std::fs::copy(&path, pdir.join(entry.file_name()));
            }
        }
    }
    std::fs::write(pdir.join(format!("{name}.hbs")), text).map_err(|e| e.to_string())?;
    TemplateSet::load(platform, Some(tmp.path()))
        .map(|set| set.with_timezone(timezone))
        .map_err(|e| {
            let shown = format!("{}/", tmp.path().display());
            e.to_string().replace(&shown, "(edited) ")
        })
}

/// A folder under the system's temporary folder, deleted with its contents when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<TempDir> {
        let path =
            std::env::temp_dir().join(format!("gitee-relay-playground-{:016x}", fastrand::u64(..)));
        std::fs::create_dir(&path)?;
        Ok(TempDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Loads (and validates) a template set off the async workers: it renders every sample.
async fn load_blocking(
    platform: PlatformKind,
    dir: Option<PathBuf>,
    edited: Option<(String, String)>,
    timezone: String,
) -> Result<TemplateSet, String> {
    web::block(move || match edited {
        Some((name, text)) => compile_edited(platform, dir.as_deref(), &name, &text, &timezone),
        None => TemplateSet::load(platform, dir.as_deref())
            .map(|set| set.with_timezone(&timezone))
            .map_err(|e| e.to_string()),
    })
    .await
    .map_err(|e| format!("the template check did not finish: {e}"))?
}

/// `POST /api/preview`: the exact body (before keyword and signature), or why not (422).
pub async fn preview(state: web::Data<AppState>, req: web::Json<PreviewRequest>) -> HttpResponse {
    let req = req.into_inner();
    let base = match base(&state, &req) {
        Ok(b) => b,
        Err((status, m)) => return error(&state, status, m),
    };
    let (body, kind, is_test) = match payload(&req) {
        Ok(p) => p,
        Err(m) => return error(&state, StatusCode::BAD_REQUEST, m),
    };
    let name = kind.as_str();
    let unprocessable = |stage: &str, message: String| {
        reply(
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({ "error": message, "stage": stage, "event": name, "platform": base.platform.as_str() }),
        )
    };
    let set = match (&req.template, &base.current) {
        (None, Some(current)) => current.clone(),
        (edited, _) => {
            let edited = edited.clone().map(|text| (name.to_owned(), text));
            let loaded = load_blocking(
                base.platform,
                base.dir.clone(),
                edited,
                state.config.timezone.clone(),
            )
            .await;
            match loaded {
                Ok(set) => Arc::new(set),
                Err(e) => return unprocessable("template", e),
            }
        }
    };
    let audience = Audience::from_config(&state.config);
    let target = Target {
        audience: &audience,
        channel: base.channel.as_deref().unwrap_or(""),
    };
    let source = if req.sample.is_some() {
        "sample"
    } else {
        "preview"
    };
    match message::render(&set, kind, &body, source, is_test, now_ms(), &target) {
        Ok(rendered) => reply(
            &state,
            StatusCode::OK,
            json!({
                "platform": base.platform.as_str(),
                "channel": base.channel,
                "event": name,
                "is_test": is_test,
                "template": source_label(&set.source_of(name), req.template.is_some()),
                "body": rendered,
            }),
        ),
        Err(e @ message::MessageError::Payload(_)) => unprocessable("payload", e.to_string()),
        Err(e) => unprocessable("render", e.to_string()),
    }
}

fn source_label(source: &TemplateSource, edited: bool) -> String {
    match source {
        _ if edited => "edited".to_owned(),
        TemplateSource::Builtin { platform, name } => format!("built-in {platform}/{name}.hbs"),
        TemplateSource::File(p) => p.display().to_string(),
    }
}

/// `GET /api/samples`: the built-in sample deliveries.
pub async fn samples(state: web::Data<AppState>) -> HttpResponse {
    let list: Vec<Value> = samples::all()
        .iter()
        .map(|s| {
            json!({
                "name": s.name,
                "event": s.kind.as_str(),
                "is_test": s.is_test,
                "description": s.description,
                "body": super::events::masked_payload(s.body.as_bytes()),
            })
        })
        .collect();
    reply(&state, StatusCode::OK, json!({ "samples": list }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateQuery {
    pub channel: Option<String>,
    pub platform: Option<String>,
}

/// `GET /api/templates/{name}?channel=` (or `?platform=`): the text of the template a channel
/// (or a platform with the config's folder) renders `name` with, and where it comes from.
pub async fn template(
    state: web::Data<AppState>,
    name: web::Path<String>,
    q: web::Query<TemplateQuery>,
) -> HttpResponse {
    let name = name.into_inner();
    let name = match EventKind::parse(&name) {
        Some(k) => k.as_str().to_owned(),
        None if builtin::NAMES.contains(&name.as_str()) => name,
        None => {
            return error(
                &state,
                StatusCode::NOT_FOUND,
                format!(
                    "no template `{name}`: use one of {}",
                    builtin::NAMES.join(", ")
                ),
            );
        }
    };
    let req = PreviewRequest {
        channel: q.channel.clone(),
        platform: q.platform.clone(),
        ..Default::default()
    };
    let base = match base(&state, &req) {
        Ok(b) => b,
        Err((status, m)) => return error(&state, status, m),
    };
    let set = match base.current {
        Some(set) => set,
        None => {
            let loaded = load_blocking(
                base.platform,
                base.dir.clone(),
                None,
                state.config.timezone.clone(),
            )
            .await;
            match loaded {
                Ok(set) => Arc::new(set),
                Err(e) => return error(&state, StatusCode::UNPROCESSABLE_ENTITY, e),
            }
        }
    };
    let source = set.source_of(&name);
    let text = match &source {
        TemplateSource::File(path) => match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                return error(
                    &state,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot read {}: {e}", path.display()),
                );
            }
        },
        TemplateSource::Builtin { platform, name } => {
            builtin::get(*platform, name).unwrap_or_default().to_owned()
        }
    };
    reply(
        &state,
        StatusCode::OK,
        json!({
            "name": name,
            "platform": base.platform.as_str(),
            "channel": base.channel,
            "source": source_label(&source, false),
            "text": text,
        }),
    )
}
