//! CPU for guests, as the kernel's CFS gives it to containers: a guest with
//! `limits.cpu` gets at most that share of each 100 ms period (a quota:
//! `250m` is 25 ms per period) and is throttled, never killed, beyond it;
//! `requests.cpu` weights how much of a contended thread a guest gets
//! between yields (the `cpu.shares` model).
//!
//! Both ride on the epoch machinery. Every epoch tick a running guest
//! reaches its deadline and this module's callback runs: it charges the
//! guest the time it ran since it last resumed (at most one slice: a guest
//! blocked in a host call is not running, and is charged at most one slice
//! for the wait), then yields — to the next period's start when the quota
//! is spent, otherwise at once, through tokio's `yield_now`. A guest
//! resumes for a slice of `weight` ticks: a guest requesting more CPU runs
//! longer between yields, so it gets a larger share of a thread that other
//! guests also want.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::UpdateDeadline;

/// CFS's period.
pub(crate) const PERIOD: Duration = Duration::from_millis(100);

/// A request of this many millicores is one tick per slice (and the
/// smallest slice is one tick).
const MILLIS_PER_TICK: u64 = 100;

/// The longest slice, in ticks.
const MAX_SLICE_TICKS: u64 = 10;

/// A guest's CPU settings (`resources` of its container).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CpuShare {
    /// `limits.cpu` in millicores: the quota per period.
    pub limit_millis: Option<u64>,
    /// `requests.cpu` in millicores: the weight under contention.
    pub request_millis: Option<u64>,
}

/// One guest's CPU account.
pub(crate) struct CpuAccount {
    /// Most CPU time per period, if limited.
    quota: Option<Duration>,
    /// Ticks per slice.
    slice_ticks: u64,
    /// Longest time one slice can run.
    slice: Duration,
    /// CPU time the guest may still use (a token bucket refilled at the
    /// quota's rate, holding at most one period's quota; negative: owed).
    budget: f64,
    /// When the budget was last refilled.
    refilled: Instant,
    /// When the guest last resumed (set by the yield's future, just before
    /// the guest runs again).
    resumed: Arc<Mutex<Instant>>,
}

impl CpuAccount {
    pub(crate) fn new(share: CpuShare, tick: Duration) -> Self {
        let slice_ticks = share
            .request_millis
            .map_or(1, |m| (m / MILLIS_PER_TICK).clamp(1, MAX_SLICE_TICKS));
        let now = Instant::now();
        Self {
            quota: share
                .limit_millis
                .filter(|&m| m > 0)
                .map(|m| PERIOD.mul_f64(m as f64 / 1000.0)),
            slice_ticks,
            slice: tick.saturating_mul(slice_ticks as u32),
            budget: share
                .limit_millis
                .map_or(0.0, |m| PERIOD.as_secs_f64() * m as f64 / 1000.0),
            refilled: now,
            resumed: Arc::new(Mutex::new(now)),
        }
    }

    /// The epoch deadline a guest starts with.
    pub(crate) fn slice_ticks(&self) -> u64 {
        self.slice_ticks
    }

    /// At an epoch deadline: charge the slice that ran, then yield — when
    /// the quota is spent, until the guest's budget is back to zero.
    ///
    /// The budget is a token bucket: it refills at the quota's rate (`250m`:
    /// 25 ms per 100 ms) up to one period's quota, and each slice is taken
    /// from it. A guest is checked once per slice, not continuously, so a
    /// slice may overdraw the budget; the debt is slept off before the next
    /// one, and over time the guest gets its quota and no more. A limited
    /// guest's next slice is no longer than its budget.
    pub(crate) fn on_deadline(&mut self) -> UpdateDeadline {
        let now = Instant::now();
        let resumed = *crate::sync::lock(&self.resumed);
        let ran = now.saturating_duration_since(resumed).min(self.slice);
        let mut wake = None;
        let mut ticks = self.slice_ticks;
        if let Some(q) = self.quota {
            let rate = q.as_secs_f64() / PERIOD.as_secs_f64();
            let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
            self.refilled = now;
            self.budget = (self.budget + elapsed * rate).min(q.as_secs_f64()) - ran.as_secs_f64();
            if self.budget < 0.0 {
                wake = Some(now + Duration::from_secs_f64(-self.budget / rate));
            }
            let tick = (self.slice / self.slice_ticks as u32).as_secs_f64();
            let fit = (self.budget.max(0.0) / tick).ceil() as u64;
            ticks = fit.clamp(1, self.slice_ticks);
        }
        let resumed = self.resumed.clone();
        UpdateDeadline::YieldCustom(
            ticks,
            Box::pin(async move {
                match wake {
                    Some(until) => tokio::time::sleep_until(until.into()).await,
                    // Through tokio's `yield_now`, which lets the worker
                    // poll its timer and I/O driver before the guest runs
                    // again. A plain yield (`UpdateDeadline::Yield`) would
                    // put the guest straight back in the run queue: with as
                    // many CPU-bound guests as worker threads, tokio would
                    // then check its timers only every few dozen polls, and
                    // grace periods, probe periods and sleeps would come
                    // most of a second late.
                    None => tokio::task::yield_now().await,
                }
                *crate::sync::lock(&resumed) = Instant::now();
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_weigh_slices_and_limits_set_quotas() {
        let tick = Duration::from_millis(10);
        let a = CpuAccount::new(CpuShare::default(), tick);
        assert_eq!((a.slice_ticks, a.quota), (1, None));
        let b = CpuAccount::new(
            CpuShare {
                limit_millis: Some(250),
                request_millis: Some(500),
            },
            tick,
        );
        assert_eq!(
            (b.slice_ticks, b.quota),
            (5, Some(Duration::from_millis(25)))
        );
        let c = CpuAccount::new(
            CpuShare {
                limit_millis: None,
                request_millis: Some(64_000),
            },
            tick,
        );
        assert_eq!(c.slice_ticks, MAX_SLICE_TICKS);
    }
}
