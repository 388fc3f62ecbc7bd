//! A channel's worker loop: wait for the pacer's next slot, claim a due delivery, send it,
//! record the attempt, repeat; sleep until the next due time or a notification when idle.

use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tracing::Instrument;

use super::ChannelRuntime;
use super::retry::{History, decide};
use super::sender;
use crate::config::DeliverySettings;
use crate::message;
use crate::platform::{Reply, RetryClass, SendTarget, Verdict, excerpt, mask_url};
use crate::store::{AttemptRecord, ClaimedDelivery, Completion, Store};
use crate::time_util::now_ms;

/// How often an idle worker looks for work it was not told about (another replica's
/// expired leases, clock-driven retries).
const IDLE_POLL: Duration = Duration::from_secs(1);

pub struct Worker {
    pub runtime: Arc<ChannelRuntime>,
    pub store: Arc<dyn Store>,
    pub settings: DeliverySettings,
    pub owner: String,
    pub permits: Arc<Semaphore>,
    pub shutdown: watch::Receiver<bool>,
}

pub async fn run(mut w: Worker) {
    let channel = w.runtime.channel.name.clone();
    let lease_ms = (w.runtime.channel.timeout + Duration::from_secs(10)).as_millis() as i64;
    loop {
        if *w.shutdown.borrow() {
            break;
        }
        // Dry-run channels post nothing, so they have no quota to keep.
        if !w.runtime.channel.dry_run && !wait_for_slot(&mut w).await {
            break;
        }
        let claimed = match w
            .store
            .claim_next(&channel, now_ms(), lease_ms, &w.owner)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(channel = %channel, error = %e, "cannot claim deliveries; retrying");
                if !sleep_or_shutdown(&mut w.shutdown, IDLE_POLL).await {
                    break;
                }
                continue;
            }
        };
        match claimed {
            Some(delivery) => {
                let Ok(_permit) = w.permits.clone().acquire_owned().await else {
                    break;
                };
                let span = tracing::info_span!(
                    "deliver",
                    delivery = delivery.id,
                    event = delivery.event_id,
                    channel = %channel
                );
                process(&w, delivery).instrument(span).await;
            }
            None => {
                if !idle(&mut w, &channel).await {
                    break;
                }
            }
        }
    }
    tracing::debug!(channel = %channel, "worker stopped");
}

/// Waits until the pacer allows a send. Returns false on shutdown.
async fn wait_for_slot(w: &mut Worker) -> bool {
    loop {
        let slot = w
            .runtime
            .pacer
            .lock()
            .expect("pacer lock")
            .next_slot(Instant::now());
        let wait = match slot {
            Some(at) if at <= Instant::now() => return true,
            Some(at) => at - Instant::now(),
            // Another channel on the same robot has a send in flight.
            None => Duration::from_millis(50),
        };
        if !sleep_or_shutdown(&mut w.shutdown, wait).await {
            return false;
        }
    }
}

/// Sleeps until the next due delivery, a notification or the idle poll. False on shutdown.
async fn idle(w: &mut Worker, channel: &str) -> bool {
    let wait = match w.store.next_due_ms(channel).await {
        Ok(Some(due)) => {
            Duration::from_millis((due - now_ms()).clamp(0, IDLE_POLL.as_millis() as i64) as u64)
        }
        _ => IDLE_POLL,
    };
    tokio::select! {
        _ = w.runtime.notify.notified() => true,
        _ = tokio::time::sleep(wait) => true,
        _ = w.shutdown.changed() => false,
    }
}

async fn sleep_or_shutdown(shutdown: &mut watch::Receiver<bool>, wait: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(wait) => !*shutdown.borrow(),
        _ = shutdown.changed() => false,
    }
}

/// One attempt at one delivery, recorded whatever happens.
async fn process(w: &Worker, delivery: ClaimedDelivery) {
    let rt = &w.runtime;
    let channel = &rt.channel;
    let started = SystemTime::now();
    let started_ms = now_ms();
    let clock = Instant::now();
    let mut attempt = AttemptRecord {
        started_ms,
        request_url: mask_url(channel.url.expose()),
        ..Default::default()
    };
    let event = &delivery.event;
    let rendered = message::render(
        &rt.templates,
        event.kind,
        &event.payload,
        &event.source,
        event.is_test,
        event.received_ms,
    );
    let verdict = match rendered {
        Err(e) => Verdict::dead(format!("cannot build the message: {e}")),
        Ok(body) => {
            let target = SendTarget {
                url: channel.url.expose(),
                secret: channel.secret.as_ref().map(|s| s.expose()),
                keyword: channel.keyword.as_deref(),
            };
            match rt.platform.prepare(&target, body, started) {
                Err(e) => Verdict::dead(e.to_string()),
                Ok(request) if channel.dry_run => {
                    tracing::info!(
                        platform = %channel.platform,
                        url = %mask_url(request.url.as_str()),
                        body = %request.body,
                        "dry run: rendered and signed, not posted"
                    );
                    attempt.reply_excerpt = "dry run: not posted".into();
                    Verdict::Delivered
                }
                Ok(request) => {
                    attempt.request_url = mask_url(request.url.as_str());
                    let pace_id = rt.pacer.lock().expect("pacer lock").started();
                    let result = sender::post(&rt.client, &request).await;
                    let verdict = match result {
                        Ok(reply) => {
                            attempt.http_status = Some(reply.status);
                            attempt.reply_excerpt = excerpt(&reply.body);
                            rt.platform.classify(&Reply {
                                status: reply.status,
                                retry_after: reply.retry_after,
                                body: &reply.body,
                            })
                        }
                        Err(e) => Verdict::retry(RetryClass::Transient, e),
                    };
                    let mut pacer = rt.pacer.lock().expect("pacer lock");
                    pacer.finished(pace_id, Instant::now());
                    if let Verdict::Retry {
                        class: RetryClass::RateLimited,
                        after,
                        ..
                    } = &verdict
                    {
                        let pause = after.unwrap_or(Duration::from_secs(60));
                        pacer.pause_until(Instant::now() + pause);
                        tracing::warn!(
                            pause_s = pause.as_secs(),
                            "robot rate limit hit: pausing the channel"
                        );
                    }
                    verdict
                }
            }
        }
    };
    attempt.duration_ms = clock.elapsed().as_millis() as i64;
    let completion = decide(
        &verdict,
        History {
            attempts_before: delivery.attempts,
            created_ms: delivery.created_ms,
            last_class: delivery.last_retry_class.as_deref(),
        },
        now_ms(),
        &w.settings,
        fastrand::f64(),
    );
    match &completion {
        Completion::Delivered => tracing::info!(ms = attempt.duration_ms, "delivered"),
        Completion::Retry { at_ms, error, .. } => tracing::warn!(
            error = %error,
            retry_in_ms = at_ms - now_ms(),
            "delivery failed, will retry"
        ),
        Completion::Dead { error } => {
            tracing::error!(error = %error, "delivery failed permanently")
        }
    }
    match w
        .store
        .complete(delivery.id, &w.owner, &attempt, &completion)
        .await
    {
        Ok(true) => {}
        Ok(false) => tracing::warn!("lease was lost before the attempt was recorded"),
        // The lease will expire and the delivery will be sent again: at-least-once.
        Err(e) => tracing::error!(error = %e, "cannot record the attempt"),
    }
}
