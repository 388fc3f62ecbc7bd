//! gitee-relay: Gitee webhooks in, signed group-chat robot messages out.
//!
//! The path of one event: `http::ingress` verifies and parses a delivery, `route` picks the
//! channels, `store` commits the event and its deliveries durably, `dispatch` claims due
//! deliveries, `render` turns the event into the platform's JSON body and `platform` signs,
//! sends and classifies the reply.

pub mod admin_cli;
pub mod check;
pub mod cli;
pub mod config;
pub mod dispatch;
pub mod gitee;
pub mod http;
pub mod message;
pub mod metrics;
pub mod platform;
pub mod render;
pub mod route;
pub mod samples;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod time_util;
