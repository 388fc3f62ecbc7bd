//! Prometheus metrics (prometheus-client), served at `/metrics`.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `gitee_relay_events_received_total` | source, kind, result | webhooks answered, by outcome |
//! | `gitee_relay_deliveries_total` | channel, platform, outcome | deliveries per attempt outcome: delivered, retry, dead |
//! | `gitee_relay_attempt_duration_seconds` | channel, platform | histogram of robot requests (a digest is one) |
//! | `gitee_relay_digests_total` | channel, platform | digest messages sent (merging a backlog) |
//! | `gitee_relay_rate_limit_pauses_total` | channel, platform | a robot reported its rate limit and the channel paused |
//! | `gitee_relay_queue_deliveries` | channel, state | deliveries in the store per state (read at each scrape) |
//! | `gitee_relay_queue_oldest_waiting_seconds` | channel | age of the oldest delivery not yet sent (read at each scrape) |
//! | `gitee_relay_ingest_commit_seconds` | | histogram of group commits: from the start of the write to durable |
//! | `gitee_relay_ingest_commit_events` | | histogram of events per group commit |
//! | `gitee_relay_build_info` | version | always 1 |
//!
//! Each relay has its own [`Metrics`] (in the HTTP state). The dispatcher's families
//! ([`DispatchMetrics`]) and the ingest writer's ([`IngestMetrics`]) are process-wide
//! ([`dispatch`], [`ingest`]) because those tasks have no handle on the HTTP state; every
//! relay's registry shows them. One process runs one relay, so the numbers are that relay's;
//! in tests that start several relays in one process they add up.
//!
//! Label values come from the config (channel and source names, platforms) or from fixed
//! lists (kinds, results, outcomes, states), so a client cannot create series at will: an
//! unknown source or event is counted as `unknown`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::LazyLock;

use crate::config::{Channel, Config};
use crate::store::admin::QueueCount;
use crate::store::{Completion, DeliveryState};

/// Label sets.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub source: String,
    pub kind: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub channel: String,
    pub platform: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabels {
    pub channel: String,
    pub platform: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub channel: String,
    pub state: String,
}

/// The channel alone: a channel that left the config has no platform to name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WaitingLabels {
    pub channel: String,
}

/// A gauge of seconds (fractions kept).
type Seconds = Gauge<f64, std::sync::atomic::AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

/// Upper bounds of the attempt duration buckets, in seconds (robots answer in tens of
/// milliseconds; timeouts are seconds).
const DURATION_BUCKETS: [f64; 11] = [0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0];

type HistogramFamily = Family<ChannelLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// Upper bounds of the commit duration buckets, in seconds (one fsync is a fraction of a
/// millisecond on an SSD, tens of milliseconds on a busy disk).
const COMMIT_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024,
];

/// Upper bounds of the events-per-commit buckets (the writer takes at most 512).
const BATCH_BUCKETS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// What the ingest writer records: how long each group commit took and how many webhooks
/// it made durable (the batching that concurrency buys).
pub struct IngestMetrics {
    commit_seconds: Histogram,
    commit_events: Histogram,
}

static INGEST: LazyLock<IngestMetrics> = LazyLock::new(|| IngestMetrics {
    commit_seconds: Histogram::new(COMMIT_BUCKETS),
    commit_events: Histogram::new(BATCH_BUCKETS),
});

/// The process's ingest metrics.
pub fn ingest() -> &'static IngestMetrics {
    &INGEST
}

impl IngestMetrics {
    /// A group commit of `events` webhooks ended (committed or failed) after `seconds`.
    pub fn commit(&self, events: usize, seconds: f64) {
        self.commit_seconds.observe(seconds);
        self.commit_events.observe(events as f64);
    }
}

/// What the dispatcher records: one family each, shared by every registry in the process.
pub struct DispatchMetrics {
    deliveries: Family<DeliveryLabels, Counter>,
    attempt_duration: HistogramFamily,
    digests: Family<ChannelLabels, Counter>,
    rate_limit_pauses: Family<ChannelLabels, Counter>,
}

static DISPATCH: LazyLock<DispatchMetrics> = LazyLock::new(|| DispatchMetrics {
    deliveries: Family::default(),
    attempt_duration: Family::new_with_constructor(duration_histogram),
    digests: Family::default(),
    rate_limit_pauses: Family::default(),
});

/// The process's dispatcher metrics.
pub fn dispatch() -> &'static DispatchMetrics {
    &DISPATCH
}

fn channel_labels(channel: &Channel) -> ChannelLabels {
    ChannelLabels {
        channel: channel.name.clone(),
        platform: channel.platform.as_str().to_owned(),
    }
}

/// The `outcome` label of a completion.
pub fn outcome(completion: &Completion) -> &'static str {
    match completion {
        Completion::Delivered => "delivered",
        Completion::Retry { .. } => "retry",
        Completion::Dead { .. } => "dead",
    }
}

impl DispatchMetrics {
    /// One attempt that carried `deliveries` deliveries (more than one for a digest) ended
    /// with `completion` after `duration_ms`. `duration_ms` None: nothing was sent (the
    /// message could not be built), so no duration is observed.
    pub fn attempt(
        &self,
        channel: &Channel,
        completion: &Completion,
        duration_ms: Option<i64>,
        deliveries: usize,
    ) {
        let labels = channel_labels(channel);
        self.deliveries
            .get_or_create(&DeliveryLabels {
                channel: labels.channel.clone(),
                platform: labels.platform.clone(),
                outcome: outcome(completion).to_owned(),
            })
            .inc_by(deliveries as u64);
        if let Some(ms) = duration_ms {
            self.attempt_duration
                .get_or_create(&labels)
                .observe(ms.max(0) as f64 / 1000.0);
        }
    }

    /// A digest message was sent (whatever its outcome).
    pub fn digest(&self, channel: &Channel) {
        self.digests.get_or_create(&channel_labels(channel)).inc();
    }

    /// The robot reported its rate limit and the channel paused.
    pub fn rate_limit_pause(&self, channel: &Channel) {
        self.rate_limit_pauses
            .get_or_create(&channel_labels(channel))
            .inc();
    }
}

/// The metrics of one relay: its registry, the webhook counters and the queue gauges.
pub struct Metrics {
    registry: Registry,
    events: Family<EventLabels, Counter>,
    queue: Family<QueueLabels, Gauge>,
    oldest_waiting: Family<WaitingLabels, Seconds>,
    /// The channels `oldest_waiting` had a series for at the last scrape.
    waiting_channels: std::sync::Mutex<Vec<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("gitee_relay");
        let events = Family::<EventLabels, Counter>::default();
        let queue = Family::<QueueLabels, Gauge>::default();
        let oldest_waiting = Family::<WaitingLabels, Seconds>::default();
        let d = dispatch();
        registry.register(
            "events_received",
            "Webhooks answered, by source, event kind and result (accepted, unauthorized, bad_request, ...)",
            events.clone(),
        );
        registry.register(
            "deliveries",
            "Deliveries by the outcome of their attempt: delivered, retry (will be tried again) or dead",
            d.deliveries.clone(),
        );
        registry.register(
            "attempt_duration_seconds",
            "Time from the start of an attempt to the robot's reply (or the failure)",
            d.attempt_duration.clone(),
        );
        registry.register(
            "digests",
            "Digest messages sent: a backlog merged into one message to stay within the robot's quota",
            d.digests.clone(),
        );
        registry.register(
            "rate_limit_pauses",
            "Times a robot reported its rate limit and the channel paused",
            d.rate_limit_pauses.clone(),
        );
        registry.register(
            "ingest_commit_seconds",
            "Group commits of webhooks: time from the start of the write until it is durable",
            ingest().commit_seconds.clone(),
        );
        registry.register(
            "ingest_commit_events",
            "Webhooks made durable per group commit",
            ingest().commit_events.clone(),
        );
        registry.register(
            "queue_deliveries",
            "Deliveries in the store by channel and state, read at each scrape",
            queue.clone(),
        );
        registry.register(
            "queue_oldest_waiting_seconds",
            "Age of the oldest delivery not yet sent (pending, sending or retrying) by channel, read at each scrape; 0 when none waits",
            oldest_waiting.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            })
            .set(1);
        registry.register("build_info", "The relay's version", build);
        Metrics {
            registry,
            events,
            queue,
            oldest_waiting,
            waiting_channels: std::sync::Mutex::default(),
        }
    }

    /// A webhook was answered. `source` and `kind` must already be bounded (configured names,
    /// known kinds, or `unknown`).
    pub fn event_received(&self, source: &str, kind: &str, result: &str) {
        self.events
            .get_or_create(&EventLabels {
                source: source.to_owned(),
                kind: kind.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// Sets the queue gauges from the store's counts: every configured channel in every
    /// state (0 when absent), plus channels that only the store still knows; and per channel
    /// the age at `now_ms` of its oldest delivery not yet sent (0 when none waits): the
    /// relay's lag behind Gitee for that chat, whatever holds it back (a backlog, a robot
    /// that keeps failing, a paused quota).
    pub fn set_queue(&self, config: &Config, counts: &[QueueCount], now_ms: i64) {
        const STATES: [DeliveryState; 5] = [
            DeliveryState::Pending,
            DeliveryState::Sending,
            DeliveryState::Retrying,
            DeliveryState::Delivered,
            DeliveryState::Dead,
        ];
        for channel in config.channels.keys() {
            for state in STATES {
                self.queue
                    .get_or_create(&QueueLabels {
                        channel: channel.clone(),
                        state: state.as_str().to_owned(),
                    })
                    .set(0);
            }
        }
        for c in counts {
            self.queue
                .get_or_create(&QueueLabels {
                    channel: c.channel.clone(),
                    state: c.state.as_str().to_owned(),
                })
                .set(c.count);
        }
        let mut oldest: std::collections::BTreeMap<&str, Option<i64>> = config
            .channels
            .keys()
            .map(|name| (name.as_str(), None))
            .collect();
        for c in counts {
            let waiting = !matches!(c.state, DeliveryState::Delivered | DeliveryState::Dead);
            let entry = oldest.entry(c.channel.as_str()).or_default();
            if waiting && c.count > 0 {
                *entry = Some(entry.map_or(c.oldest_created_ms, |o| o.min(c.oldest_created_ms)));
            }
        }
        let mut previous = self
            .waiting_channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A channel that left the config and whose deliveries the store no longer holds
        // reads no more (its series is removed, not left at its last age).
        for gone in previous.iter().filter(|c| !oldest.contains_key(c.as_str())) {
            self.oldest_waiting.remove(&WaitingLabels {
                channel: gone.clone(),
            });
        }
        *previous = oldest.keys().map(|c| (*c).to_owned()).collect();
        for (channel, created_ms) in oldest {
            let age_ms = created_ms.map_or(0, |ms| now_ms.saturating_sub(ms).max(0));
            self.oldest_waiting
                .get_or_create(&WaitingLabels {
                    channel: channel.to_owned(),
                })
                .set(age_ms as f64 / 1000.0);
        }
    }

    /// The Prometheus text format (0.0.4), or OpenMetrics text when `openmetrics`.
    pub fn encode(&self, openmetrics: bool) -> String {
        let mut out = String::new();
        let written = if openmetrics {
            prometheus_client::encoding::text::encode(&mut out, &self.registry)
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        };
        // Writing into a String cannot fail.
        written.expect("metrics encode into a String");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config with one source and `channels` (YAML lines under `channels:`).
    fn config(channels: &str) -> Config {
        let yaml = format!("sources: {{ gitee: {{ secret: s }} }}\nchannels:\n{channels}");
        Config::from_yaml(std::path::Path::new("c.yaml"), &yaml, &|_| None).unwrap()
    }

    #[test]
    fn encodes_every_family_with_help_and_type() {
        let config = config("  ding: { platform: dingtalk, url: 'https://x/y?access_token=t' }\n");
        let ding = &config.channels["ding"];
        let m = Metrics::new();
        m.event_received("gitee", "push", "accepted");
        dispatch().attempt(ding, &Completion::Delivered, Some(120), 1);
        dispatch().digest(ding);
        dispatch().rate_limit_pause(ding);
        m.set_queue(
            &config,
            &[QueueCount {
                channel: "ding".into(),
                state: DeliveryState::Dead,
                count: 3,
                oldest_created_ms: 1_000,
            }],
            9_000,
        );
        let text = m.encode(false);
        for name in [
            "gitee_relay_events_received_total",
            "gitee_relay_deliveries_total",
            "gitee_relay_attempt_duration_seconds",
            "gitee_relay_digests_total",
            "gitee_relay_rate_limit_pauses_total",
            "gitee_relay_queue_deliveries",
            "gitee_relay_queue_oldest_waiting_seconds",
            "gitee_relay_build_info",
        ] {
            assert!(text.contains(&format!("# TYPE {name}")), "{name}:\n{text}");
        }
        assert!(
            text.contains(
                r#"gitee_relay_events_received_total{source="gitee",kind="push",result="accepted"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"gitee_relay_queue_deliveries{channel="ding",state="dead"} 3"#));
        assert!(text.contains(r#"gitee_relay_queue_deliveries{channel="ding",state="pending"} 0"#));
        // Dead deliveries do not wait: nothing does.
        assert!(
            text.contains(r#"gitee_relay_queue_oldest_waiting_seconds{channel="ding"} 0.0"#),
            "{text}"
        );
        assert!(text.contains(r#"gitee_relay_attempt_duration_seconds_bucket{channel="ding",platform="dingtalk",le="0.25"} 1"#), "{text}");
        assert!(m.encode(true).trim_end().ends_with("# EOF"));
    }

    fn count(channel: &str, state: DeliveryState, count: i64, oldest: i64) -> QueueCount {
        QueueCount {
            channel: channel.into(),
            state,
            count,
            oldest_created_ms: oldest,
        }
    }

    #[test]
    fn the_oldest_waiting_delivery_is_the_oldest_not_yet_sent() {
        let config = config(
            "  ding: { platform: dingtalk, url: 'https://x/y?access_token=t' }
  lark: { platform: feishu, url: 'https://x/hook/z' }
  idle: { platform: slack, url: 'https://hooks.slack.com/services/T/B/x' }
",
        );
        let m = Metrics::new();
        let gauge = |m: &Metrics, channel: &str| {
            let text = m.encode(false);
            let prefix =
                format!("gitee_relay_queue_oldest_waiting_seconds{{channel=\"{channel}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(prefix.as_str()))
                .unwrap_or_else(|| panic!("no gauge for {channel}:\n{text}"))
                .parse::<f64>()
                .unwrap()
        };
        m.set_queue(
            &config,
            &[
                // Finished deliveries are older still, and do not count.
                count("ding", DeliveryState::Delivered, 9, 1_000),
                count("ding", DeliveryState::Dead, 1, 2_000),
                count("ding", DeliveryState::Pending, 4, 60_000),
                count("ding", DeliveryState::Retrying, 2, 30_500),
                count("lark", DeliveryState::Sending, 1, 89_000),
                // Deliveries of a channel that left the config still wait.
                count("gone", DeliveryState::Pending, 1, 0),
            ],
            90_000,
        );
        assert_eq!(gauge(&m, "ding"), 59.5);
        assert_eq!(gauge(&m, "lark"), 1.0);
        assert_eq!(gauge(&m, "idle"), 0.0);
        assert_eq!(gauge(&m, "gone"), 90.0);
        // The next scrape: ding's backlog was sent, only its retry waits; a clock behind a
        // delivery's creation (another replica's) reads 0, not a negative age.
        m.set_queue(
            &config,
            &[
                count("ding", DeliveryState::Retrying, 1, 80_000),
                count("lark", DeliveryState::Pending, 1, 95_000),
            ],
            90_000,
        );
        assert_eq!(gauge(&m, "ding"), 10.0);
        assert_eq!(gauge(&m, "lark"), 0.0);
        assert!(
            !m.encode(false)
                .contains(r#"waiting_seconds{channel="gone"}"#)
        );
    }
}
