//! `gitee-relay check` and the start-up gate: every template a configured channel would use
//! must render valid JSON for every built-in sample event, so a broken template is found
//! before the first real webhook, never at 3 a.m.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use crate::config::Config;
use crate::dispatch::channel_templates;
use crate::message;
use crate::platform::{SendTarget, platform};
use crate::render::TemplateStore;
use crate::samples;

/// All problems found, one line each, naming the channel, the template file and the reason.
pub fn check_templates(config: &Config) -> Vec<String> {
    let templates = match channel_templates(config) {
        Ok(t) => t,
        Err(e) => return vec![e.to_string()],
    };
    let mut problems = Vec::new();
    // Channels sharing one template set are checked once.
    let mut seen: HashMap<*const TemplateStore, ()> = HashMap::new();
    let audience = message::Audience::from_config(config);
    for (name, channel) in &config.channels {
        let Some(set) = templates.get(name) else {
            continue;
        };
        if seen.insert(Arc::as_ptr(set), ()).is_some() {
            continue;
        }
        for sample in samples::all() {
            let rendered = message::render(
                &set.current(),
                sample.kind,
                sample.body.as_bytes(),
                "sample",
                sample.is_test,
                0,
                &message::Target {
                    audience: &audience,
                    channel: name,
                },
            );
            match rendered {
                Err(e) => problems.push(format!("channel {name}: sample {}: {e}", sample.name)),
                Ok(body) => {
                    let target = SendTarget {
                        url: channel.url.expose(),
                        secret: channel.secret.as_ref().map(|s| s.expose()),
                        keyword: channel.keyword.as_deref(),
                    };
                    if let Err(e) =
                        platform(channel.platform).prepare(&target, body, SystemTime::now())
                    {
                        problems.push(format!("channel {name}: sample {}: {e}", sample.name));
                    }
                }
            }
        }
    }
    problems
}

/// How many (channel, sample) renders a successful check made, for the summary line.
pub fn render_count(config: &Config) -> usize {
    config.channels.len() * samples::all().len()
}
