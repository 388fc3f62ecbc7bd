//! Pacing: never more than a quota's `max` sends in ANY window of its length, per robot.
//!
//! A sliding log, not a token bucket: a bucket that refills fully after a quiet minute lets a
//! burst land right behind the previous minute's sends, which DingTalk counts as over quota.
//! Each send is counted from its START until `per` after its END (the reply), so network
//! delay can never squeeze `max + 1` arrivals at the robot into one window.

use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub max: u32,
    pub per: Duration,
}

#[derive(Debug)]
pub struct Pacer {
    quotas: Vec<Quota>,
    /// Sends still inside the longest window: `None` while in flight, else when they ended.
    log: VecDeque<(u64, Option<Instant>)>,
    next_id: u64,
    paused_until: Option<Instant>,
}

impl Pacer {
    pub fn new(quotas: Vec<Quota>) -> Pacer {
        Pacer {
            quotas: quotas.into_iter().filter(|q| q.max > 0).collect(),
            log: VecDeque::new(),
            next_id: 0,
            paused_until: None,
        }
    }

    fn longest(&self) -> Duration {
        self.quotas.iter().map(|q| q.per).max().unwrap_or_default()
    }

    /// The earliest instant (≥ `now`) at which one more send keeps every quota; `None`
    /// means "not until an in-flight send finishes".
    pub fn next_slot(&mut self, now: Instant) -> Option<Instant> {
        let longest = self.longest();
        while let Some((_, Some(end))) = self.log.front() {
            if *end + longest <= now {
                self.log.pop_front();
            } else {
                break;
            }
        }
        let mut slot = now.max(self.paused_until.unwrap_or(now));
        for quota in &self.quotas {
            let max = quota.max as usize;
            if self.log.len() >= max {
                // The send that must leave the window before another may start.
                match self.log[self.log.len() - max].1 {
                    Some(end) => slot = slot.max(end + quota.per),
                    None => return None,
                }
            }
        }
        Some(slot)
    }

    /// Records that a send starts now; pass the id to [`Pacer::finished`].
    pub fn started(&mut self) -> u64 {
        self.next_id += 1;
        self.log.push_back((self.next_id, None));
        self.next_id
    }

    pub fn finished(&mut self, id: u64, at: Instant) {
        // From the back: a send in flight is among the latest, and an unthrottled robot's log
        // holds a whole window of sends (tens of thousands) before it.
        if let Some(entry) = self.log.iter_mut().rev().find(|(i, _)| *i == id) {
            entry.1 = Some(at);
        }
    }

    /// Stops all sends until `until` (the platform's penalty after a rate-limit reply).
    pub fn pause_until(&mut self, until: Instant) {
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
    }
}

/// The platforms' documented quotas per robot.
pub fn default_quotas(platform: crate::platform::PlatformKind) -> Vec<Quota> {
    use crate::platform::PlatformKind::*;
    let q = |max, secs| Quota {
        max,
        per: Duration::from_secs(secs),
    };
    match platform {
        Dingtalk | Wecom => vec![q(20, 60)],
        Feishu => vec![q(5, 1), q(100, 60)],
        Slack => vec![q(1, 1)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(p: &mut Pacer, at: Instant, took: Duration) {
        let id = p.started();
        p.finished(id, at + took);
    }

    #[test]
    fn never_more_than_max_in_any_window() {
        let t0 = Instant::now();
        let mut p = Pacer::new(vec![Quota {
            max: 3,
            per: Duration::from_secs(60),
        }]);
        let mut now = t0;
        let mut starts = Vec::new();
        for _ in 0..10 {
            let slot = p.next_slot(now).unwrap();
            now = slot;
            starts.push(now);
            send(&mut p, now, Duration::from_millis(10));
            now += Duration::from_millis(10);
        }
        for (i, s) in starts.iter().enumerate() {
            let in_window = starts[i..]
                .iter()
                .filter(|t| **t < *s + Duration::from_secs(60))
                .count();
            assert!(in_window <= 3, "window from send {i} holds {in_window}");
        }
        // The 4th send waits for the 1st's end + 60 s.
        assert_eq!(
            starts[3],
            starts[0] + Duration::from_millis(10) + Duration::from_secs(60)
        );
    }

    #[test]
    fn a_quiet_period_does_not_allow_a_double_burst() {
        let t0 = Instant::now();
        let mut p = Pacer::new(vec![Quota {
            max: 2,
            per: Duration::from_secs(60),
        }]);
        send(&mut p, t0 + Duration::from_secs(50), Duration::ZERO);
        send(&mut p, t0 + Duration::from_secs(59), Duration::ZERO);
        // At t=61 a token bucket would be refilled; the window still holds the send at 59.
        let slot = p.next_slot(t0 + Duration::from_secs(61)).unwrap();
        assert_eq!(slot, t0 + Duration::from_secs(110));
    }

    #[test]
    fn every_quota_holds() {
        let t0 = Instant::now();
        let mut p = Pacer::new(vec![
            Quota {
                max: 5,
                per: Duration::from_secs(1),
            },
            Quota {
                max: 100,
                per: Duration::from_secs(60),
            },
        ]);
        for i in 0..5 {
            send(&mut p, t0 + Duration::from_millis(i), Duration::ZERO);
        }
        assert_eq!(
            p.next_slot(t0 + Duration::from_millis(5)).unwrap(),
            t0 + Duration::from_secs(1)
        );
    }

    #[test]
    fn in_flight_sends_block_until_they_end() {
        let t0 = Instant::now();
        let mut p = Pacer::new(vec![Quota {
            max: 1,
            per: Duration::from_secs(1),
        }]);
        let id = p.started();
        assert_eq!(p.next_slot(t0), None);
        p.finished(id, t0 + Duration::from_secs(2));
        assert_eq!(p.next_slot(t0).unwrap(), t0 + Duration::from_secs(3));
    }

    #[test]
    fn pause_holds_everything() {
        let t0 = Instant::now();
        let mut p = Pacer::new(vec![]);
        assert_eq!(p.next_slot(t0).unwrap(), t0);
        p.pause_until(t0 + Duration::from_secs(60));
        assert_eq!(p.next_slot(t0).unwrap(), t0 + Duration::from_secs(60));
    }
}
