//! The Gitee side: authenticating deliveries, typed payloads and the normalised event view.

pub mod auth;
pub mod context;
pub mod kind;
pub mod payload;

pub use context::EventContext;
pub use kind::EventKind;
