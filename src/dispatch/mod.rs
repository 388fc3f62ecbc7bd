//! The dispatcher: one task per channel claims that channel's due deliveries, paces them to
//! the robot's quota, renders, signs, sends, and records the outcome. A slow or failing robot
//! only ever holds up its own channel.

pub mod digest;
mod pacer;
mod retention;
pub mod retry;
pub mod sender;
mod shorten;
mod worker;

pub use pacer::{Pacer, Quota, default_quotas};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinHandle;

use crate::config::{Channel, Config};
use crate::message::Audience;
use crate::platform::{Platform, mask_url, platform};
use crate::render::{Reloader, TemplateSet, TemplateStore};
use crate::store::Store;
use crate::time_util::now_ms;

/// Everything a channel's worker needs.
pub struct ChannelRuntime {
    pub channel: Channel,
    /// The channel's URL with its secrets masked, for attempt records and logs: masked once
    /// here, not parsed again for every message.
    pub masked_url: String,
    pub platform: &'static dyn Platform,
    /// Hot-swappable: take `templates.current()` for each message.
    pub templates: Arc<TemplateStore>,
    /// `people:` and the routes, for @mentions.
    pub audience: Arc<Audience>,
    pub client: reqwest::Client,
    /// Shared by every channel that posts to the same robot URL: one robot, one budget.
    pub pacer: Arc<Mutex<Pacer>>,
    /// The robot's name in a shared store's pacing table: a hash of its URL, never the
    /// URL itself (it holds the token).
    pub robot_key: String,
    pub quotas: Vec<Quota>,
    pub notify: Arc<Notify>,
}

pub struct Dispatcher {
    channels: HashMap<String, Arc<ChannelRuntime>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    owner: String,
    store: Arc<dyn Store>,
}

/// Resolves each channel's templates: its own folder, else the config's, else built-ins.
pub fn channel_templates(
    config: &Config,
) -> Result<HashMap<String, Arc<TemplateStore>>, crate::render::TemplateError> {
    type Source = (crate::platform::PlatformKind, Option<std::path::PathBuf>);
    let source = |channel: &Channel| -> Source {
        let dir = channel
            .templates
            .clone()
            .or_else(|| config.templates.clone());
        (channel.platform, dir)
    };
    // Each distinct set is loaded (compiled and checked against the samples, most of the
    // start-up time) once, the sets in parallel; the first error in channel order wins.
    let mut sources: Vec<Source> = Vec::new();
    for channel in config.channels.values() {
        let key = source(channel);
        if !sources.contains(&key) {
            sources.push(key);
        }
    }
    let loaded: Vec<Result<TemplateStore, crate::render::TemplateError>> =
        std::thread::scope(|scope| {
            let loads: Vec<_> = sources
                .iter()
                .map(|(platform, dir)| {
                    scope.spawn(|| TemplateStore::load(*platform, dir.as_deref(), &config.timezone))
                })
                .collect();
            loads
                .into_iter()
                .map(|l| l.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
    let mut by_source: HashMap<Source, Arc<TemplateStore>> = HashMap::new();
    for (key, set) in sources.into_iter().zip(loaded) {
        by_source.insert(key, Arc::new(set?));
    }
    Ok(config
        .channels
        .iter()
        .map(|(name, channel)| (name.clone(), by_source[&source(channel)].clone()))
        .collect())
}

impl Dispatcher {
    /// Starts one worker per channel on the current runtime.
    pub fn start(
        config: &Config,
        store: Arc<dyn Store>,
        templates: &HashMap<String, Arc<TemplateStore>>,
    ) -> Dispatcher {
        let owner = format!("{}-{:016x}", std::process::id(), fastrand::u64(..));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let permits = Arc::new(Semaphore::new(config.delivery.workers as usize));
        let mut pacers: HashMap<String, Arc<Mutex<Pacer>>> = HashMap::new();
        // One HTTP client per distinct pair of timeouts: building one loads the system's CA
        // certificates (a few ms each), and connections are pooled per robot host anyway.
        let mut clients: HashMap<(Duration, Duration), reqwest::Client> = HashMap::new();
        let mut channels = HashMap::new();
        let mut tasks = Vec::new();
        let audience = Arc::new(Audience::from_config(config));
        for (name, channel) in &config.channels {
            let robot = robot_identity(channel.url.expose());
            let pacer = pacers
                .entry(robot.clone())
                .or_insert_with(|| Arc::new(Mutex::new(Pacer::new(channel_quotas(channel)))))
                .clone();
            let runtime = Arc::new(ChannelRuntime {
                channel: channel.clone(),
                masked_url: mask_url(channel.url.expose()),
                platform: platform(channel.platform),
                templates: templates.get(name).cloned().unwrap_or_else(|| {
                    Arc::new(TemplateStore::fixed(
                        TemplateSet::builtin(channel.platform).with_timezone(&config.timezone),
                    ))
                }),
                audience: audience.clone(),
                client: clients
                    .entry((channel.connect_timeout, channel.timeout))
                    .or_insert_with(|| sender::client(channel.connect_timeout, channel.timeout))
                    .clone(),
                pacer,
                robot_key: robot_key(&robot),
                quotas: channel_quotas(channel),
                notify: Arc::new(Notify::new()),
            });
            channels.insert(name.clone(), runtime.clone());
            let digest_threshold = channel
                .digest_after
                .map(|after| digest::capacity(&channel_quotas(channel), after));
            tasks.push(tokio::spawn(worker::run(worker::Worker {
                digest_threshold,
                runtime,
                store: store.clone(),
                settings: config.delivery.clone(),
                owner: owner.clone(),
                permits: permits.clone(),
                shutdown: shutdown_rx.clone(),
            })));
        }
        // Template hot reload: SIGHUP and file changes in the override folders.
        tasks.push(tokio::spawn(
            Reloader::new(channels.values().map(|rt| rt.templates.clone()))
                .run(shutdown_rx.clone()),
        ));
        tasks.push(tokio::spawn(retention::run(
            store.clone(),
            config.retention,
            shutdown_rx.clone(),
        )));
        Dispatcher {
            channels,
            shutdown,
            tasks,
            owner,
            store,
        }
    }

    /// A cheap handle for the HTTP side: wake workers, check they are alive.
    pub fn handle(&self) -> DispatcherHandle {
        DispatcherHandle {
            notifies: Arc::new(
                self.channels
                    .iter()
                    .map(|(name, rt)| (name.clone(), rt.notify.clone()))
                    .collect(),
            ),
            tasks: Arc::new(self.tasks.iter().map(JoinHandle::abort_handle).collect()),
        }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Stops claiming, lets in-flight sends finish within `deadline`, then releases every
    /// lease this process still holds so the next start (or another replica) sends them.
    pub async fn shutdown(self, deadline: Duration) {
        let _ = self.shutdown.send(true);
        let aborts: Vec<_> = self.tasks.iter().map(JoinHandle::abort_handle).collect();
        let all = futures_util::future::join_all(self.tasks);
        if tokio::time::timeout(deadline, all).await.is_err() {
            tracing::warn!("in-flight sends did not finish before the shutdown deadline");
            for task in aborts {
                task.abort();
            }
        }
        match self.store.release_leases(Some(&self.owner), now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                released = n,
                "released unsent deliveries for the next start"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "could not release leases; they expire by themselves")
            }
        }
    }
}

#[derive(Clone)]
pub struct DispatcherHandle {
    notifies: Arc<HashMap<String, Arc<Notify>>>,
    tasks: Arc<Vec<tokio::task::AbortHandle>>,
}

impl DispatcherHandle {
    /// Wakes a channel's worker: new deliveries were committed for it.
    pub fn notify(&self, channel: &str) {
        if let Some(n) = self.notifies.get(channel) {
            n.notify_one();
        }
    }

    /// True while every worker task is running.
    pub fn alive(&self) -> bool {
        self.tasks.iter().all(|t| !t.is_finished())
    }
}

/// The channel's configured rate, else its platform's documented quotas.
pub fn channel_quotas(channel: &Channel) -> Vec<Quota> {
    match &channel.rate {
        Some(limits) => limits
            .iter()
            .map(|l| Quota {
                max: l.max,
                per: l.per,
            })
            .collect(),
        None => default_quotas(channel.platform),
    }
}

fn robot_key(identity: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(identity.as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Channels posting to the same robot share a quota: the robot is the URL without the
/// signature parameters a user might have pasted along.
fn robot_identity(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let kept: Vec<(String, String)> = u
                .query_pairs()
                .filter(|(k, _)| k != "timestamp" && k != "sign")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            u.set_query(None);
            if !kept.is_empty() {
                u.query_pairs_mut().extend_pairs(kept);
            }
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => url.to_owned(),
    }
}
