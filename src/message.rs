//! From a stored webhook body to the JSON body for one platform: parse the typed payload,
//! build the normalised context and render the channel's template. Used by the dispatcher at
//! send time (so a retry or redelivery uses today's templates) and by `gitee-relay render`.

use serde_json::Value;

use crate::gitee::{EventContext, EventKind, payload};
use crate::render::TemplateSet;

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("{0}")]
    Payload(#[from] payload::PayloadError),
    #[error("{0}")]
    Render(#[from] crate::render::RenderError),
}

/// The normalised view of a webhook body.
pub fn context(
    kind: EventKind,
    body: &[u8],
    source: &str,
    is_test: bool,
    received_ms: i64,
) -> Result<EventContext, MessageError> {
    // One parse: the typed view is read from the same JSON value the templates get as `raw`.
    let raw: Value = payload::parse_json(body)?;
    let delivery = payload::parse_value(kind, &raw)?;
    Ok(delivery.context(source, is_test, received_ms, raw))
}

/// The exact body that would be posted (before the platform adds keyword and signature).
pub fn render(
    templates: &TemplateSet,
    kind: EventKind,
    body: &[u8],
    source: &str,
    is_test: bool,
    received_ms: i64,
) -> Result<Value, MessageError> {
    let ctx = context(kind, body, source, is_test, received_ms)?;
    Ok(templates.render(&ctx)?)
}
