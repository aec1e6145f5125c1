//! Restart decisions: whether a container that ended runs again, and after
//! what back-off.

use std::time::Duration;

use crate::config::RuntimeConfig;
use crate::spec::{ContainerKind, RestartPolicy};

/// Back-off between restarts, as the kubelet's `flowcontrol.Backoff` keyed
/// by container: a container with no entry (it never needed a restart, or
/// its entry expired) restarts at once, and that creates the entry with
/// `initial`; each later restart waits the entry's delay, which then
/// doubles up to `max`. The entry expires when a run lasts longer than
/// `reset` (the kubelet: 2 × 300 s between the last restart and the exit).
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    reset: Duration,
    entry: Option<Duration>,
}

impl Backoff {
    pub(crate) fn new(cfg: &RuntimeConfig) -> Self {
        Self {
            initial: cfg.backoff_initial,
            max: cfg.backoff_max,
            reset: cfg.backoff_reset,
            entry: None,
        }
    }

    /// The delay before restarting a container whose last run lasted
    /// `ran` (zero: at once).
    pub(crate) fn next(&mut self, ran: Duration) -> Duration {
        match self.entry {
            Some(delay) if ran <= self.reset => {
                self.entry = Some(delay.saturating_mul(2).min(self.max));
                delay
            }
            _ => {
                self.entry = Some(self.initial);
                Duration::ZERO
            }
        }
    }
}

/// Whether a container that exited with `code` runs again: a native sidecar
/// always; a failed init container unless the policy is `Never`; an app
/// container as the policy says. Never once the pod is stopping.
pub(crate) fn restarts(
    kind: ContainerKind,
    sidecar: bool,
    policy: RestartPolicy,
    code: i32,
    stopping: bool,
) -> bool {
    if stopping {
        return false;
    }
    match kind {
        ContainerKind::Init if sidecar => true,
        ContainerKind::Init => code != 0 && policy != RestartPolicy::Never,
        ContainerKind::App => policy.restarts(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let cfg = RuntimeConfig::default();
        let mut b = Backoff::new(&cfg);
        let short = Duration::from_secs(1);
        let got: Vec<u64> = (0..8).map(|_| b.next(short).as_secs()).collect();
        assert_eq!(
            got,
            [0, 10, 20, 40, 80, 160, 300, 300],
            "first restart at once"
        );
        assert_eq!(
            b.next(Duration::from_secs(600)).as_secs(),
            300,
            "10 minutes exactly: kept"
        );
        assert_eq!(
            b.next(Duration::from_secs(601)).as_secs(),
            0,
            "a run over 10 minutes expires the entry: at once again"
        );
        assert_eq!(b.next(short).as_secs(), 10);
    }

    #[test]
    fn restart_decisions_follow_the_kubelet() {
        use ContainerKind::{App, Init};
        use RestartPolicy::{Always, Never, OnFailure};
        // App containers: the policy.
        assert!(restarts(App, false, Always, 0, false));
        assert!(!restarts(App, false, OnFailure, 0, false));
        assert!(restarts(App, false, OnFailure, 1, false));
        assert!(!restarts(App, false, Never, 1, false));
        // Init containers: retried when failed, unless Never; a success is final.
        assert!(restarts(Init, false, Always, 1, false));
        assert!(!restarts(Init, false, Always, 0, false));
        assert!(!restarts(Init, false, Never, 1, false));
        // Native sidecars: always, whatever the policy and code.
        assert!(restarts(Init, true, Never, 0, false));
        // Nothing once the pod is stopping.
        assert!(!restarts(App, false, Always, 1, true));
        assert!(!restarts(Init, true, Always, 1, true));
    }
}
