//! Sustained end to end: webhooks offered at fixed rates (open loop), one step after another,
//! while the relay delivers each to the unthrottled robot.
//!
//! The closed-loop end-to-end run shows how fast the relay accepts a burst and how long it
//! takes to deliver it; it cannot say what rate the relay can take *and* deliver for as long as
//! it lasts, because a closed loop sends as fast as the relay answers and the relay answers
//! faster than it delivers. Here each step offers a fixed rate for a few seconds: a rate is
//! kept up when every webhook was accepted, the robot received at least [`DELIVERED_SHARE`]
//! of the rate while it was offered, and the last webhook reached the robot within
//! [`LAG_BOUND`] of the step's scheduled end: no backlog built up. The highest rate kept up is
//! the relay's sustained end-to-end throughput on this machine.

use std::time::{Duration, Instant};

use crate::client::LoadResult;
use crate::relay::Commits;

/// How soon after a step's scheduled end its last webhook must reach the robot for the rate
/// to count as kept up: the few dozen milliseconds of work in flight at any time (6–96 ms in
/// this machine's runs at rates kept up), not seconds of backlog.
pub const LAG_BOUND: Duration = Duration::from_millis(250);

/// The share of the offered rate the robot must receive while it is offered. (Falling 2 %
/// behind for 5 s leaves 100 ms of backlog, within [`LAG_BOUND`]; rates the relay could not
/// keep up with fell 7–17 % behind in this machine's runs.)
pub const DELIVERED_SHARE: f64 = 0.98;

/// The rates to offer: `from`, `from + step`, … until one is not kept up; then once more
/// halfway between the last rate kept up and that one.
pub struct Plan {
    pub from: f64,
    pub step: f64,
    pub secs: u64,
    /// At most this many rates on the way up.
    pub max_steps: usize,
}

pub struct Step {
    /// Webhooks offered a second.
    pub rate: f64,
    pub load: LoadResult,
    /// Deliveries a second at the robot while the rate was offered.
    pub delivered_per_s: f64,
    /// From the step's scheduled end to its last webhook's delivery.
    pub lag: Duration,
    /// The relay's group commits during the step: mean webhooks each, mean milliseconds.
    pub per_commit: f64,
    pub commit_ms: f64,
}

impl Step {
    pub fn kept_up(&self) -> bool {
        let due = self.rate * self.load.seconds;
        self.load.failed == 0
            && self.load.ok as f64 >= 0.99 * due
            && self.delivered_per_s >= DELIVERED_SHARE * self.rate
            && self.lag <= LAG_BOUND
    }
}

/// What a step needs from the harness.
pub struct Harness<'a> {
    /// Offers a rate (webhooks/s) for the plan's seconds; returns when the last answer is read.
    pub offer: &'a dyn Fn(f64) -> LoadResult,
    /// Messages the robot has accepted so far.
    pub delivered: &'a dyn Fn() -> usize,
    /// Waits until the robot has accepted this many messages; returns when it had.
    pub wait_delivered: &'a dyn Fn(usize) -> Instant,
    /// The relay's group-commit counters.
    pub commits: &'a dyn Fn() -> Commits,
}

/// Offers the plan's rates in turn, each after the previous step's webhooks were all delivered.
pub fn run(plan: &Plan, h: &Harness) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut rate = plan.from;
    while steps.len() < plan.max_steps {
        let step = one(rate, plan, h);
        let kept_up = step.kept_up();
        steps.push(step);
        if !kept_up {
            let last_kept = steps.iter().rev().find(|s| s.kept_up()).map(|s| s.rate);
            if let Some(kept) = last_kept {
                steps.push(one((kept + rate) / 2.0, plan, h));
            }
            break;
        }
        rate += plan.step;
    }
    steps
}

fn one(rate: f64, plan: &Plan, h: &Harness) -> Step {
    eprintln!("  offering {rate:.0} webhooks/s for {} s", plan.secs);
    let before = (h.delivered)();
    let commits = (h.commits)();
    let started = Instant::now();
    let load = (h.offer)(rate);
    let offered_for = started.elapsed().as_secs_f64();
    let during = (h.delivered)().saturating_sub(before);
    let scheduled_end = started + Duration::from_secs(plan.secs);
    let done = (h.wait_delivered)(before + load.ok as usize);
    // Read once the step is over: a scrape of `/metrics` counts the store's deliveries, which
    // takes the relay tens of milliseconds once a hundred thousand are kept, and would delay
    // the step's last deliveries. No webhook is committed after the load, so the figures are
    // the step's.
    let (per_commit, commit_ms) = (h.commits)().since(&commits);
    let step = Step {
        rate,
        delivered_per_s: during as f64 / offered_for.max(1e-3),
        lag: done.saturating_duration_since(scheduled_end),
        load,
        per_commit,
        commit_ms,
    };
    eprintln!(
        "    {} accepted ({} failed), ack p99 {:.2} ms, {:.0} deliveries/s, lag {:.0} ms",
        step.load.ok,
        step.load.failed,
        step.load.p99_ms(),
        step.delivered_per_s,
        step.lag.as_secs_f64() * 1000.0
    );
    step
}

/// The highest rate kept up, if any.
pub fn sustained(steps: &[Step]) -> Option<f64> {
    steps
        .iter()
        .filter(|s| s.kept_up())
        .map(|s| s.rate)
        .max_by(f64::total_cmp)
}
