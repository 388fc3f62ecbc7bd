//! A channel's worker loop: wait for the pacer's next slot, claim a due delivery (or, when the
//! backlog cannot drain in time, a batch to merge into a digest), send it, record the attempt,
//! repeat; sleep until the next due time or a notification when idle.

use futures_util::future::OptionFuture;
use serde_json::Value;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tracing::Instrument;

use super::digest::{self, DigestItem};
use super::retry::{History, decide};
use super::{ChannelRuntime, sender, shorten};
use crate::config::DeliverySettings;
use crate::message;
use crate::platform::{Reply, RetryClass, SendTarget, Verdict, excerpt, mask_url};
use crate::render::RenderError;
use crate::store::{AttemptRecord, ClaimedDelivery, Completion, SharedQuota, Store};
use crate::time_util::now_ms;

/// How often an idle worker looks for work it was not told about (another replica's
/// expired leases, clock-driven retries).
const IDLE_POLL: Duration = Duration::from_secs(1);

/// A channel whose every quota allows at least this many messages per second (e.g.
/// `rate: { per_second: 10000 }`) has an unthrottled robot and sends in bursts: it claims up
/// to [`BURST_CLAIM`] due deliveries in one transaction, keeps up to [`BURST_IN_FLIGHT`] sends
/// in flight (each still paced and holding one of the `delivery.workers` permits), claims the
/// next batch before the pipe runs dry, and records attempts [`BURST_CLAIM`] per transaction
/// while later ones are sent. Other channels send one message at a time, so a crash repeats
/// at most the one in flight; a bursting channel may repeat the attempts made since its last
/// recorded transaction and the sends in flight, and its messages may arrive out of order
/// within [`BURST_IN_FLIGHT`] of each other. Only with a single-process store (with a
/// shared one, every send takes a cluster-wide reservation) and not in dry-run mode.
const BURST_MIN_RATE: f64 = 10_000.0;
/// Deliveries claimed, and recorded, together by a burst.
const BURST_CLAIM: i64 = 64;
/// Sends of one channel in flight at once during a burst (at most half the
/// `delivery.workers` permits, so other channels always find one soon).
const BURST_IN_FLIGHT: usize = 16;

#[derive(Clone)]
pub struct Worker {
    pub runtime: Arc<ChannelRuntime>,
    pub store: Arc<dyn Store>,
    pub settings: DeliverySettings,
    pub owner: String,
    pub permits: Arc<Semaphore>,
    pub shutdown: watch::Receiver<bool>,
    /// Backlog above which waiting events are merged into a digest (None: never).
    pub digest_threshold: Option<u64>,
}

impl Worker {
    fn lease_ms(&self) -> i64 {
        (self.runtime.channel.timeout + Duration::from_secs(10)).as_millis() as i64
    }

    fn burst_in_flight(&self) -> usize {
        BURST_IN_FLIGHT.min((self.settings.workers as usize / 2).max(1))
    }

    /// A burst may send its claim in several rounds.
    fn burst_lease_ms(&self) -> i64 {
        let rounds = (BURST_CLAIM as u32).div_ceil(self.burst_in_flight() as u32);
        (self.runtime.channel.timeout * rounds + Duration::from_secs(10)).as_millis() as i64
    }

    fn bursts(&self) -> bool {
        !self.runtime.channel.dry_run
            && self.store.shared_pacing().is_none()
            && self.runtime.quotas.iter().all(|q| {
                q.max as usize >= 4 * BURST_IN_FLIGHT
                    && f64::from(q.max) >= BURST_MIN_RATE * q.per.as_secs_f64()
            })
    }
}

pub async fn run(mut w: Worker) {
    let channel = w.runtime.channel.name.clone();
    loop {
        if *w.shutdown.borrow() {
            break;
        }
        // Dry-run channels post nothing, so they have no quota to keep.
        let paced = !w.runtime.channel.dry_run;
        if paced && !wait_for_slot(&mut w).await {
            break;
        }
        // With a store shared by several relays, the robot's quota is kept cluster-wide: a
        // send is reserved before any delivery is claimed, so no lease ticks while waiting.
        let mut reservation = None;
        if paced && w.store.shared_pacing().is_some() {
            match w.store.count_due(&channel, now_ms()).await {
                Ok(0) => {
                    if !idle(&mut w, &channel).await {
                        break;
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot count due deliveries"),
            }
            match reserve_shared(&mut w).await {
                Some(r) => reservation = Some(r),
                None => break,
            }
        }
        let work = if w.bursts() {
            next_burst(&w, &channel).await
        } else {
            next_work(&w, &channel).await
        };
        if let (Some(r), Ok(Work::Idle) | Err(_)) = (reservation, &work) {
            if let Some(shared) = w.store.shared_pacing()
                && let Err(e) = shared.cancel_send(r).await
            {
                tracing::warn!(error = %e, "cannot give back a send reservation");
            }
            reservation = None;
        }
        match work {
            Err(e) => {
                tracing::warn!(channel = %channel, error = %e, "cannot claim deliveries; retrying");
                if !sleep_or_shutdown(&mut w.shutdown, IDLE_POLL).await {
                    break;
                }
            }
            Ok(Work::Idle) => {
                if !idle(&mut w, &channel).await {
                    break;
                }
            }
            Ok(Work::Burst(batch)) => send_burst(&w, batch).await,
            Ok(work) => {
                let Ok(_permit) = w.permits.clone().acquire_owned().await else {
                    break;
                };
                match work {
                    Work::Single(delivery) => {
                        let span = tracing::info_span!(
                            "deliver",
                            delivery = delivery.id,
                            event = delivery.event_id,
                            channel = %channel
                        );
                        send_single(&w, delivery).instrument(span).await;
                    }
                    Work::Digest(batch) => {
                        let span =
                            tracing::info_span!("digest", channel = %channel, events = batch.len());
                        send_digest(&w, batch).instrument(span).await;
                    }
                    Work::Idle | Work::Burst(_) => {}
                }
                if let (Some(r), Some(shared)) = (reservation, w.store.shared_pacing())
                    && let Err(e) = shared.finish_send(r, now_ms()).await
                {
                    tracing::warn!(error = %e, "cannot record the end of a send");
                }
            }
        }
    }
    tracing::debug!(channel = %channel, "worker stopped");
}

enum Work {
    Idle,
    Single(ClaimedDelivery),
    Digest(Vec<ClaimedDelivery>),
    /// Sent concurrently by [`send_burst`].
    Burst(Vec<ClaimedDelivery>),
}

/// Waits for a cluster-wide send reservation. None on shutdown.
async fn reserve_shared(w: &mut Worker) -> Option<i64> {
    let quotas: Vec<SharedQuota> = w
        .runtime
        .quotas
        .iter()
        .map(|q| SharedQuota {
            max: q.max,
            per_ms: q.per.as_millis() as i64,
        })
        .collect();
    let max_send_ms = (w.runtime.channel.timeout + Duration::from_secs(5)).as_millis() as i64;
    loop {
        let shared = w.store.shared_pacing()?;
        let wait = match shared
            .reserve_send(&w.runtime.robot_key, &quotas, now_ms(), max_send_ms)
            .await
        {
            Ok(Ok(reservation)) => return Some(reservation),
            Ok(Err(retry_at)) => Duration::from_millis((retry_at - now_ms()).clamp(1, 1000) as u64),
            Err(e) => {
                tracing::warn!(error = %e, "cannot reserve a send; retrying");
                IDLE_POLL
            }
        };
        if !sleep_or_shutdown(&mut w.shutdown, wait).await {
            return None;
        }
    }
}

async fn next_work(w: &Worker, channel: &str) -> Result<Work, crate::store::StoreError> {
    let now = now_ms();
    if let Some(threshold) = w.digest_threshold {
        let backlog = w.store.count_due(channel, now).await?;
        // With several relays on one store, one of them at a time builds the digests.
        let leader = backlog as u64 > threshold
            && match w.store.shared_pacing() {
                None => true,
                Some(shared) => {
                    shared
                        .lead_digests(channel, &w.owner, now, w.lease_ms())
                        .await?
                }
            };
        if leader {
            let batch = w
                .store
                .claim_batch(
                    channel,
                    now,
                    w.lease_ms(),
                    &w.owner,
                    digest::MAX_ITEMS as i64,
                )
                .await?;
            if batch.len() > 1 {
                tracing::info!(backlog, "backlog cannot drain in time: sending a digest");
                return Ok(Work::Digest(batch));
            }
            return Ok(batch.into_iter().next().map_or(Work::Idle, Work::Single));
        }
    }
    Ok(w.store
        .claim_next(channel, now, w.lease_ms(), &w.owner)
        .await?
        .map_or(Work::Idle, Work::Single))
}

/// The next burst of an unthrottled channel ([`BURST_MIN_RATE`]), or a digest when its
/// backlog cannot drain in time (as [`next_work`] decides).
async fn next_burst(w: &Worker, channel: &str) -> Result<Work, crate::store::StoreError> {
    if let Some(threshold) = w.digest_threshold
        && w.store.count_due(channel, now_ms()).await? as u64 > threshold
    {
        return next_work(w, channel).await;
    }
    let batch = w
        .store
        .claim_batch(channel, now_ms(), w.burst_lease_ms(), &w.owner, BURST_CLAIM)
        .await?;
    Ok(if batch.is_empty() {
        Work::Idle
    } else {
        Work::Burst(batch)
    })
}

/// How long until the pacer allows one more send (zero: now; an in-flight send that must
/// end first is polled every 50 ms).
fn pacer_wait(runtime: &ChannelRuntime) -> Duration {
    let now = Instant::now();
    match runtime.pacer.lock().expect("pacer lock").next_slot(now) {
        Some(at) => at.saturating_duration_since(now),
        None => Duration::from_millis(50),
    }
}

/// One attempt of a burst, awaiting its record.
type Done = (i64, AttemptRecord, Completion);

/// Sends a claimed batch and whatever else the channel has due, in order, with up to
/// [`BURST_IN_FLIGHT`] requests in flight, each paced and holding a permit. The pipe never
/// runs dry between batches: the next batch is claimed while the last sends of this one are
/// in flight, and attempts are recorded ([`BURST_CLAIM`] per transaction) while the next
/// ones are sent. Ends when the channel has nothing more due (or needs a digest, see
/// [`next_burst`]) and every attempt is recorded. On shutdown, the sends in flight finish
/// and the rest is handed back, due at once.
async fn send_burst(w: &Worker, batch: Vec<ClaimedDelivery>) {
    let channel = &w.runtime.channel.name;
    let mut queue: VecDeque<ClaimedDelivery> = batch.into();
    let mut done: Vec<Done> = Vec::with_capacity(BURST_CLAIM as usize);
    // Each send is a task of its own, so the sends of one burst are rendered and signed on
    // every runtime thread rather than one after another in this task (which held a burst to
    // one core). Dropping the set (the worker aborted at shutdown) aborts them, as dropping
    // their futures did.
    let mut in_flight = tokio::task::JoinSet::new();
    // What the send tasks share: the worker's handles, cloned once per burst.
    let shared = Arc::new(w.clone());
    let mut refill: Option<Pin<Box<dyn Future<Output = Refill> + Send + '_>>> = None;
    let mut record: Option<Pin<Box<dyn Future<Output = ()> + Send + '_>>> = None;
    let mut exhausted = false;
    let mut shutdown = w.shutdown.clone();
    let mut stopping = *shutdown.borrow();
    loop {
        if stopping && !queue.is_empty() {
            let ids: Vec<i64> = queue.drain(..).map(|d| d.id).collect();
            release(w, &ids).await;
        }
        if refill.is_none() && !exhausted && !stopping && queue.len() < w.burst_in_flight() {
            refill = Some(Box::pin(claim_more(w)));
        }
        let sending = !in_flight.is_empty() || !queue.is_empty() || refill.is_some();
        if record.is_none() && !done.is_empty() && (done.len() >= BURST_CLAIM as usize || !sending)
        {
            record = Some(Box::pin(record_attempts(w, std::mem::take(&mut done))));
        }
        if !sending && record.is_none() {
            break;
        }
        let may_start = !stopping && in_flight.len() < w.burst_in_flight() && !queue.is_empty();
        let wait = if may_start {
            pacer_wait(&w.runtime)
        } else {
            Duration::ZERO
        };
        tokio::select! {
            biased;
            Some(result) = in_flight.join_next(), if !in_flight.is_empty() => match result {
                Ok(result) => done.push(result),
                // A send that panicked: its lease expires and the delivery is sent again.
                Err(e) => tracing::error!(channel = %channel, error = %e, "a send failed unexpectedly; it will be retried when its lease expires"),
            },
            Some(()) = OptionFuture::from(record.as_mut()), if record.is_some() => record = None,
            Some(more) = OptionFuture::from(refill.as_mut()), if refill.is_some() => {
                refill = None;
                match more {
                    Refill::More(batch) => queue.extend(batch),
                    Refill::Exhausted => exhausted = true,
                }
            }
            _ = shutdown.changed(), if !stopping => stopping = true,
            permit = w.permits.clone().acquire_owned(), if may_start && wait.is_zero() => {
                let (Ok(permit), Some(delivery)) = (permit, queue.pop_front()) else {
                    stopping = true;
                    continue;
                };
                let span = tracing::info_span!(
                    "deliver",
                    delivery = delivery.id,
                    event = delivery.event_id,
                    channel = %channel
                );
                let shared = shared.clone();
                in_flight.spawn(
                    async move {
                        let (attempt, completion) = attempt(&shared, &delivery).await;
                        drop(permit);
                        (delivery.id, attempt, completion)
                    }
                    .instrument(span),
                );
            }
            _ = tokio::time::sleep(wait), if may_start && !wait.is_zero() => {}
        }
    }
}

/// What a burst's refill found.
enum Refill {
    More(Vec<ClaimedDelivery>),
    /// Nothing more due, a digest is needed, or the store failed (the outer loop decides).
    Exhausted,
}

/// The next batch of a burst, claimed while the current one is still being sent.
async fn claim_more(w: &Worker) -> Refill {
    match next_burst(w, &w.runtime.channel.name).await {
        Ok(Work::Burst(batch)) => Refill::More(batch),
        Ok(_) => Refill::Exhausted,
        Err(e) => {
            tracing::warn!(channel = %w.runtime.channel.name, error = %e, "cannot claim deliveries; retrying");
            Refill::Exhausted
        }
    }
}

/// Records a burst's attempts in one transaction.
async fn record_attempts(w: &Worker, done: Vec<Done>) {
    let channel = &w.runtime.channel.name;
    match w.store.complete_each(&w.owner, &done).await {
        Ok(moved) if moved < done.len() as u64 => tracing::warn!(
            channel = %channel,
            lost = done.len() as u64 - moved,
            "leases were lost before the attempts were recorded"
        ),
        Ok(_) => {}
        // The leases will expire and the deliveries will be sent again: at-least-once.
        Err(e) => tracing::error!(channel = %channel, error = %e, "cannot record the attempts"),
    }
}

/// Hands claimed but unsent deliveries back, due at once.
async fn release(w: &Worker, ids: &[i64]) {
    if ids.is_empty() {
        return;
    }
    if let Err(e) = w.store.release(ids, &w.owner, now_ms()).await {
        tracing::error!(channel = %w.runtime.channel.name, error = %e, "cannot hand back unsent deliveries; their leases expire by themselves");
    }
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

fn history(d: &ClaimedDelivery) -> History<'_> {
    History {
        attempts_before: d.attempts,
        created_ms: d.created_ms,
        last_class: d.last_retry_class.as_deref(),
    }
}

fn new_attempt(w: &Worker) -> AttemptRecord {
    AttemptRecord {
        started_ms: now_ms(),
        request_url: w.runtime.masked_url.clone(),
        ..Default::default()
    }
}

/// One attempt at one delivery, recorded whatever happens.
async fn send_single(w: &Worker, delivery: ClaimedDelivery) {
    let (attempt, completion) = attempt(w, &delivery).await;
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

/// Renders, signs and sends one delivery and decides what becomes of it (not yet recorded).
async fn attempt(w: &Worker, delivery: &ClaimedDelivery) -> (AttemptRecord, Completion) {
    let clock = Instant::now();
    let mut attempt = new_attempt(w);
    let event = &delivery.event;
    let rendered = message::render(
        &w.runtime.templates.current(),
        event.kind,
        &event.payload,
        &event.source,
        event.is_test,
        event.received_ms,
        &message::Target {
            audience: &w.runtime.audience,
            channel: &w.runtime.channel.name,
        },
    );
    let verdict = match rendered {
        Err(e) => Verdict::dead(format!("cannot build the message: {e}")),
        Ok(mut body) => {
            // The platform refused this body's size last time: send it shortened.
            if delivery.last_retry_class.as_deref() == Some("too_large") {
                shorten::shorten(&mut body);
            }
            send_body(w, body, &mut attempt).await
        }
    };
    attempt.duration_ms = clock.elapsed().as_millis() as i64;
    let completion = decide(
        &verdict,
        history(delivery),
        now_ms(),
        &w.settings,
        fastrand::f64(),
    );
    log_completion(&completion, attempt.duration_ms);
    crate::metrics::dispatch().attempt(
        &w.runtime.channel,
        &completion,
        Some(attempt.duration_ms),
        1,
    );
    (attempt, completion)
}

/// Merges a batch into as few digest messages as the platform's size limit allows: the
/// oldest events that fit go now, the rest are handed back for the next slot.
async fn send_digest(w: &Worker, batch: Vec<ClaimedDelivery>) {
    let clock = Instant::now();
    let mut attempt = new_attempt(w);
    // Events that cannot even be parsed are dead on their own, not part of the digest.
    let mut included: Vec<(ClaimedDelivery, DigestItem)> = Vec::with_capacity(batch.len());
    for d in batch {
        let e = &d.event;
        // A digest item reads only the normalised fields.
        match message::context_without_raw(e.kind, &e.payload, &e.source, e.is_test, e.received_ms)
        {
            Ok(ctx) => {
                let item = DigestItem::from_context(&ctx);
                included.push((d, item));
            }
            Err(err) => {
                let dead = Completion::Dead {
                    error: format!("cannot build the message: {err}"),
                };
                crate::metrics::dispatch().attempt(&w.runtime.channel, &dead, None, 1);
                if let Err(e) = w.store.complete(d.id, &w.owner, &attempt, &dead).await {
                    tracing::error!(error = %e, "cannot record the attempt");
                }
            }
        }
    }
    if included.is_empty() {
        return;
    }
    let (body, fitted) = match fit_digest(w, &included) {
        Ok(fit) => fit,
        Err(e) => {
            // The digest template is unusable: hand everything back and send one by one.
            tracing::error!(error = %e, "digest template failed; sending events one by one");
            let ids: Vec<i64> = included.iter().map(|(d, _)| d.id).collect();
            release(w, &ids).await;
            let first = included.into_iter().next().map(|(d, _)| d);
            if let Some(d) = first
                && let Ok(Some(again)) = w
                    .store
                    .claim_next(&d.channel, now_ms(), w.lease_ms(), &w.owner)
                    .await
            {
                send_single(w, again).await;
            }
            return;
        }
    };
    let rest: Vec<i64> = included[fitted..].iter().map(|(d, _)| d.id).collect();
    release(w, &rest).await;
    let ids: Vec<i64> = included[..fitted].iter().map(|(d, _)| d.id).collect();
    let verdict = send_body(w, body, &mut attempt).await;
    attempt.duration_ms = clock.elapsed().as_millis() as i64;
    let oldest = &included[0].0;
    let completion = decide(
        &verdict,
        history(oldest),
        now_ms(),
        &w.settings,
        fastrand::f64(),
    );
    tracing::info!(events = ids.len(), handed_back = rest.len(), "digest");
    log_completion(&completion, attempt.duration_ms);
    crate::metrics::dispatch().attempt(
        &w.runtime.channel,
        &completion,
        Some(attempt.duration_ms),
        ids.len(),
    );
    crate::metrics::dispatch().digest(&w.runtime.channel);
    if let Err(e) = w
        .store
        .complete_many(&ids, &w.owner, &attempt, &completion)
        .await
    {
        tracing::error!(error = %e, "cannot record the digest attempt");
    }
}

/// Renders the digest with as many of the oldest items as fit the platform's limits.
fn fit_digest(
    w: &Worker,
    included: &[(ClaimedDelivery, DigestItem)],
) -> Result<(Value, usize), RenderError> {
    let items: Vec<DigestItem> = included.iter().map(|(_, i)| i.clone()).collect();
    let mut n = items.len();
    loop {
        let ctx = digest::build(&items[..n]);
        match w.runtime.templates.current().render_named("digest", &ctx) {
            Ok(body) => return Ok((body, n)),
            Err(RenderError::TooLarge { .. }) if n > 1 => n = (n * 3 / 4).clamp(1, n - 1),
            Err(e) => return Err(e),
        }
    }
}

/// Signs and posts a rendered body (or logs it in dry-run mode) and reads the reply.
async fn send_body(w: &Worker, body: Value, attempt: &mut AttemptRecord) -> Verdict {
    let rt = &w.runtime;
    let channel = &rt.channel;
    let target = SendTarget {
        url: channel.url.expose(),
        secret: channel.secret.as_ref().map(|s| s.expose()),
        keyword: channel.keyword.as_deref(),
    };
    let request = match rt.platform.prepare(&target, body, SystemTime::now()) {
        Ok(r) => r,
        Err(e) => return Verdict::dead(e.to_string()),
    };
    // Platforms that sign in the query (DingTalk) post to a URL of their own each time.
    if request.url.as_str() != channel.url.expose() {
        attempt.request_url = mask_url(request.url.as_str());
    }
    if channel.dry_run {
        tracing::info!(
            platform = %channel.platform,
            url = %attempt.request_url,
            body = %request.body,
            "dry run: rendered and signed, not posted"
        );
        attempt.reply_excerpt = "dry run: not posted".into();
        return Verdict::Delivered;
    }
    let pace_id = rt.pacer.lock().expect("pacer lock").started();
    let verdict = match sender::post(&rt.client, &request).await {
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
        let pause = after.unwrap_or(w.settings.rate_limit_pause);
        pacer.pause_until(Instant::now() + pause);
        if w.store.shared_pacing().is_some() {
            let store = w.store.clone();
            let robot = rt.robot_key.clone();
            let until = now_ms() + pause.as_millis() as i64;
            tokio::spawn(async move {
                if let Some(shared) = store.shared_pacing()
                    && let Err(e) = shared.pause_robot(&robot, until).await
                {
                    tracing::warn!(error = %e, "cannot share the rate-limit pause");
                }
            });
        }
        crate::metrics::dispatch().rate_limit_pause(channel);
        tracing::warn!(
            pause_s = pause.as_secs(),
            "robot rate limit hit: pausing the channel"
        );
    }
    verdict
}

fn log_completion(completion: &Completion, duration_ms: i64) {
    match completion {
        Completion::Delivered => tracing::info!(ms = duration_ms, "delivered"),
        Completion::Retry { at_ms, error, .. } => tracing::warn!(
            error = %error,
            retry_in_ms = at_ms - now_ms(),
            "delivery failed, will retry"
        ),
        Completion::Dead { error } => {
            tracing::error!(error = %error, "delivery failed permanently")
        }
    }
}

#[cfg(test)]
#[path = "burst_tests.rs"]
mod burst_tests;
