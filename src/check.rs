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
    match channel_templates(config) {
        Ok(templates) => check_loaded(config, &templates),
        Err(e) => vec![e.to_string()],
    }
}

/// [`check_templates`] with the channels' templates already loaded (the start-up gate loads
/// them once for both the check and the dispatcher).
pub fn check_loaded(
    config: &Config,
    templates: &HashMap<String, Arc<TemplateStore>>,
) -> Vec<String> {
    // Channels sharing one template set are checked once.
    let mut seen: HashMap<*const TemplateStore, ()> = HashMap::new();
    let audience = message::Audience::from_config(config);
    let mut channels = Vec::new();
    for (name, channel) in &config.channels {
        let Some(set) = templates.get(name) else {
            continue;
        };
        if seen.insert(Arc::as_ptr(set), ()).is_some() {
            continue;
        }
        channels.push((name, channel, set));
    }
    // Every (channel, sample) render is independent: spread them over the cores (this is
    // most of the start-up time), then report in channel and sample order.
    let jobs: Vec<(usize, usize)> = (0..channels.len())
        .flat_map(|c| (0..samples::all().len()).map(move |s| (c, s)))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let check = |(c, s): (usize, usize)| -> Option<String> {
        let (name, channel, set) = channels[c];
        let sample = &samples::all()[s];
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
        let problem = match rendered {
            Err(e) => e.to_string(),
            Ok(body) => {
                let target = SendTarget {
                    url: channel.url.expose(),
                    secret: channel.secret.as_ref().map(|s| s.expose()),
                    keyword: channel.keyword.as_deref(),
                };
                platform(channel.platform)
                    .prepare(&target, body, SystemTime::now())
                    .err()?
                    .to_string()
            }
        };
        Some(format!("channel {name}: sample {}: {problem}", sample.name))
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len().max(1));
    let mut found: Vec<((usize, usize), String)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut found = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&job) = jobs.get(i) else {
                            return found;
                        };
                        if let Some(problem) = check(job) {
                            found.push((job, problem));
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    found.sort_by_key(|(job, _)| *job);
    found.into_iter().map(|(_, problem)| problem).collect()
}

/// How many (channel, sample) renders a successful check made, for the summary line.
pub fn render_count(config: &Config) -> usize {
    config.channels.len() * samples::all().len()
}
