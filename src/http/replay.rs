//! Replay protection for signature-mode sources.
//!
//! Gitee signs only `timestamp + "\n" + secret`, never the body (spec §3.2), so whoever
//! captures one delivery holds a token that stays valid, with any body, until the freshness
//! window (`max_skew`) closes. This cache remembers every accepted `(source, timestamp,
//! token)` pair until that window has closed for it, with a fingerprint of the request it was
//! accepted with (body, `X-Gitee-Event`, `X-Gitee-Ping`) and the receipt it got:
//!
//! * the same pair with the same fingerprint is Gitee re-sending the delivery (its retry, or
//!   "redeliver" in the hook log): answered with the ORIGINAL receipt, nothing is stored again;
//! * the same pair with another fingerprint is a replay with a forged body: refused (409).
//!
//! A pair is reserved while its event is being committed, so two copies arriving at once are
//! not both stored: the second waits for the first and gets its receipt (or, if the first
//! could not be stored, tries itself).
//!
//! The pair is all Gitee authenticates, so two genuinely different deliveries signed in the
//! same millisecond (events fired together, e.g. several refs in one push) look exactly like
//! a replay, and the second is refused as one.
//!
//! Limitations (documented, deliberate for now): the cache lives in this process's memory, so
//! it is empty after a restart and not shared between replicas behind a load balancer; a pair
//! accepted just before a restart, or by another replica, can be replayed within its window.
//! The cure is a store-backed dedup (a unique `(source, timestamp, token hash)` row written in
//! the event's transaction), which can come later. The cache is also bounded
//! ([`DEFAULT_CAPACITY`] pairs, oldest evicted first), so a flood of fresh authenticated
//! deliveries can push a pair out before its window closes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};

use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::AppState;
use crate::store::EventReceipt;

/// How many accepted pairs are remembered. At ~200 bytes each this is a few MB at most; Gitee
/// sends far fewer deliveries per skew window than this to one relay.
pub const DEFAULT_CAPACITY: usize = 16_384;

/// Kept a little past the skew window, so a pair is never forgotten while still acceptable.
const MARGIN_MS: i64 = 1_000;

/// An accepted `(source, timestamp, token)` pair. The token is kept only as a SHA-256 hash:
/// the cache never holds a usable credential.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ReplayKey {
    source: String,
    timestamp: String,
    token_hash: [u8; 32],
}

impl std::fmt::Debug for ReplayKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayKey")
            .field("source", &self.source)
            .field("timestamp", &self.timestamp)
            .finish_non_exhaustive()
    }
}

impl ReplayKey {
    /// `timestamp` is the `X-Gitee-Timestamp` text exactly as signed.
    pub fn new(source: &str, timestamp: &str, token: &[u8]) -> ReplayKey {
        ReplayKey {
            source: source.to_owned(),
            timestamp: timestamp.to_owned(),
            token_hash: Sha256::digest(token).into(),
        }
    }
}

/// What identifies one delivery's content: its body and the headers that change its meaning.
pub fn fingerprint(body: &[u8], event: Option<&[u8]>, ping: Option<&[u8]>) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [Some(body), event, ping] {
        match part {
            // Length-prefixed, so no two different inputs hash the same concatenation.
            Some(bytes) => {
                h.update([1]);
                h.update((bytes.len() as u64).to_le_bytes());
                h.update(bytes);
            }
            None => h.update([0]),
        }
    }
    h.finalize().into()
}

enum State {
    /// Being committed; the receiver learns the receipt (or that the attempt was given up).
    InFlight(watch::Receiver<Option<EventReceipt>>),
    Done(EventReceipt),
}

struct Entry {
    fingerprint: [u8; 32],
    expires_ms: i64,
    generation: u64,
    state: State,
}

#[derive(Default)]
struct Inner {
    map: HashMap<ReplayKey, Entry>,
    /// Insertion order, for evicting the oldest; records whose generation no longer matches
    /// the map are stale and skipped.
    order: VecDeque<(ReplayKey, u64)>,
    next_generation: u64,
}

/// The outcome of [`ReplayCache::begin`].
pub enum Begin {
    /// First time: go on, then [`Reservation::commit`] the receipt (dropping the reservation
    /// instead gives the pair up, e.g. when the body is refused or the store fails).
    Fresh(Reservation),
    /// Already accepted with the same content: answer with this receipt, store nothing.
    Duplicate(EventReceipt),
    /// Already accepted, or being accepted, with different content: a replay.
    Conflict,
    /// The same content is being committed right now by another request: wait on this, then
    /// call `begin` again.
    Wait(watch::Receiver<Option<EventReceipt>>),
}

pub struct ReplayCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl ReplayCache {
    pub fn new(capacity: usize) -> ReplayCache {
        ReplayCache {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Looks the pair up and, when it is new, reserves it until `expires_ms` (the end of its
    /// skew window).
    pub fn begin(
        self: &Arc<Self>,
        key: &ReplayKey,
        fingerprint: [u8; 32],
        expires_ms: i64,
        now_ms: i64,
    ) -> Begin {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = inner.map.get(key)
            && entry.expires_ms >= now_ms
        {
            if entry.fingerprint != fingerprint {
                return Begin::Conflict;
            }
            return match &entry.state {
                State::Done(receipt) => Begin::Duplicate(*receipt),
                State::InFlight(rx) => Begin::Wait(rx.clone()),
            };
        }
        let (tx, rx) = watch::channel(None);
        let generation = inner.next_generation;
        inner.next_generation += 1;
        inner.map.insert(
            key.clone(),
            Entry {
                fingerprint,
                expires_ms: expires_ms.saturating_add(MARGIN_MS),
                generation,
                state: State::InFlight(rx),
            },
        );
        inner.order.push_back((key.clone(), generation));
        inner.prune(self.capacity, now_ms);
        Begin::Fresh(Reservation {
            cache: self.clone(),
            key: key.clone(),
            generation,
            tx: Some(tx),
        })
    }

    /// Pairs currently remembered (in flight or done).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn finish(&self, key: &ReplayKey, generation: u64, receipt: Option<EventReceipt>) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = inner.map.get_mut(key) else {
            return;
        };
        if entry.generation != generation {
            return;
        }
        match receipt {
            Some(receipt) => entry.state = State::Done(receipt),
            None => {
                inner.map.remove(key);
            }
        }
    }
}

impl Inner {
    /// Drops expired entries from the front and the oldest entries beyond `capacity`.
    fn prune(&mut self, capacity: usize, now_ms: i64) {
        while let Some((key, generation)) = self.order.front() {
            let live = self.map.get(key).filter(|e| e.generation == *generation);
            let drop_it = match live {
                None => true,
                Some(entry) => entry.expires_ms < now_ms || self.map.len() > capacity,
            };
            if !drop_it {
                break;
            }
            let (key, generation) = self.order.pop_front().expect("front exists");
            if self
                .map
                .get(&key)
                .is_some_and(|e| e.generation == generation)
            {
                self.map.remove(&key);
            }
        }
        // Stale records behind a live front (pairs given up out of order) are compacted away
        // once they outnumber the live ones, so `order` stays bounded too.
        if self.order.len() > 2 * capacity.max(self.map.len()) {
            let map = &self.map;
            self.order
                .retain(|(k, g)| map.get(k).is_some_and(|e| e.generation == *g));
        }
    }
}

/// A pair reserved by [`ReplayCache::begin`]. Dropped without [`commit`](Self::commit) (the
/// body was refused, the store failed, the client went away), it frees the pair again so
/// Gitee's retry of the same delivery is accepted.
pub struct Reservation {
    cache: Arc<ReplayCache>,
    key: ReplayKey,
    generation: u64,
    tx: Option<watch::Sender<Option<EventReceipt>>>,
}

impl Reservation {
    /// The event is durable: from now on the pair answers with this receipt.
    pub fn commit(mut self, receipt: EventReceipt) {
        self.cache.finish(&self.key, self.generation, Some(receipt));
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Some(receipt));
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.tx.is_some() {
            self.cache.finish(&self.key, self.generation, None);
            // Dropping the sender wakes the waiters, who then try for themselves.
            self.tx = None;
        }
    }
}

/// The cache of one running relay. (It lives beside the relay's [`AppState`] rather than in
/// it, keyed by the state's allocation; a `Weak` keeps that address from being reused while
/// it is registered, and entries of stopped relays are dropped on the next lookup.)
pub fn cache_for(state: &Arc<AppState>) -> Arc<ReplayCache> {
    static CACHES: Mutex<Vec<(Weak<AppState>, Arc<ReplayCache>)>> = Mutex::new(Vec::new());
    let mut caches = CACHES.lock().unwrap_or_else(|e| e.into_inner());
    caches.retain(|(w, _)| w.strong_count() > 0);
    let me = Arc::downgrade(state);
    if let Some((_, cache)) = caches.iter().find(|(w, _)| w.ptr_eq(&me)) {
        return cache.clone();
    }
    let cache = Arc::new(ReplayCache::new(DEFAULT_CAPACITY));
    caches.push((me, cache.clone()));
    cache
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(id: i64) -> EventReceipt {
        EventReceipt {
            event_id: id,
            deliveries: 2,
        }
    }

    fn key(ts: &str) -> ReplayKey {
        ReplayKey::new("gitee", ts, b"token")
    }

    #[test]
    fn same_content_is_a_duplicate_and_other_content_a_conflict() {
        let cache = Arc::new(ReplayCache::new(8));
        let fp = fingerprint(b"{}", Some(b"Push Hook"), None);
        let Begin::Fresh(r) = cache.begin(&key("1"), fp, 100, 0) else {
            panic!("first is fresh")
        };
        // In flight: the same content waits, other content conflicts at once.
        assert!(matches!(cache.begin(&key("1"), fp, 100, 0), Begin::Wait(_)));
        let other = fingerprint(b"{ }", Some(b"Push Hook"), None);
        assert!(matches!(
            cache.begin(&key("1"), other, 100, 0),
            Begin::Conflict
        ));
        r.commit(receipt(7));
        assert!(matches!(
            cache.begin(&key("1"), fp, 100, 50),
            Begin::Duplicate(r) if r == receipt(7)
        ));
        assert!(matches!(
            cache.begin(&key("1"), other, 100, 50),
            Begin::Conflict
        ));
        // Another token with the same timestamp is another pair.
        let k2 = ReplayKey::new("gitee", "1", b"other token");
        assert!(matches!(cache.begin(&k2, other, 100, 50), Begin::Fresh(_)));
    }

    #[test]
    fn a_dropped_reservation_frees_the_pair_and_wakes_waiters() {
        let cache = Arc::new(ReplayCache::new(8));
        let fp = fingerprint(b"x", None, None);
        let Begin::Fresh(r) = cache.begin(&key("1"), fp, 100, 0) else {
            panic!()
        };
        let Begin::Wait(rx) = cache.begin(&key("1"), fp, 100, 0) else {
            panic!()
        };
        drop(r);
        assert!(rx.has_changed().is_err(), "the sender is gone");
        assert!(cache.is_empty());
        assert!(matches!(
            cache.begin(&key("1"), fp, 100, 0),
            Begin::Fresh(_)
        ));
    }

    #[test]
    fn entries_expire_after_their_window() {
        let cache = Arc::new(ReplayCache::new(8));
        let fp = fingerprint(b"x", None, None);
        let Begin::Fresh(r) = cache.begin(&key("1"), fp, 100, 0) else {
            panic!()
        };
        r.commit(receipt(1));
        let other = fingerprint(b"y", None, None);
        assert!(matches!(
            cache.begin(&key("1"), other, 100, 100 + MARGIN_MS),
            Begin::Conflict
        ));
        // Past the window (the auth check refuses such a timestamp anyway) it is forgotten.
        assert!(matches!(
            cache.begin(&key("1"), other, 100, 101 + MARGIN_MS),
            Begin::Fresh(_)
        ));
    }

    #[test]
    fn capacity_evicts_the_oldest() {
        let cache = Arc::new(ReplayCache::new(3));
        let fp = fingerprint(b"x", None, None);
        for ts in ["1", "2", "3", "4", "5"] {
            let Begin::Fresh(r) = cache.begin(&key(ts), fp, 1_000, 0) else {
                panic!()
            };
            r.commit(receipt(ts.parse().unwrap()));
        }
        assert_eq!(cache.len(), 3);
        assert!(matches!(
            cache.begin(&key("1"), fp, 1_000, 0),
            Begin::Fresh(_)
        ));
        assert!(matches!(
            cache.begin(&key("5"), fp, 1_000, 0),
            Begin::Duplicate(r) if r.event_id == 5
        ));
        // Many given-up reservations do not grow the order queue without bound.
        for i in 0..1_000 {
            drop(cache.begin(&key(&format!("x{i}")), fp, 1_000, 0));
        }
        assert!(cache.inner.lock().unwrap().order.len() <= 2 * 3 + 1);
    }
}
