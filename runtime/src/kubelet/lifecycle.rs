//! Where a pod is in its life, as one value in one watch channel: the
//! worker, deletion and the handles all read and move it.

use std::time::Duration;

/// A pod's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// Prepared (images loaded, sandbox made); its worker has not started.
    Created,
    /// Its worker runs containers.
    Running,
    /// Its containers are being stopped; nothing starts or restarts.
    Terminating {
        /// Deleted, with this grace period (`None`: it finished by itself
        /// or passed its deadline).
        deleted: Option<Duration>,
        /// Deleted again with grace 0: what still runs is killed at once.
        kill_now: bool,
    },
    /// Nothing of it runs any more.
    Terminated {
        /// Whether it was deleted (then it leaves its runtime's registry).
        deleted: bool,
    },
}

/// A transition the lifecycle does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a pod cannot {action} when it is {from:?}")]
pub(crate) struct LifecycleError {
    action: &'static str,
    from: Lifecycle,
}

impl Lifecycle {
    /// Created → Running.
    pub(crate) fn start(self) -> Result<Self, LifecycleError> {
        match self {
            Lifecycle::Created => Ok(Lifecycle::Running),
            from => Err(LifecycleError {
                action: "start",
                from,
            }),
        }
    }

    /// A deletion with `grace`: a pod never started ends at once; a running
    /// one starts terminating; a terminating one is killed at once if
    /// `grace` is zero.
    pub(crate) fn delete(self, grace: Duration) -> Self {
        match self {
            Lifecycle::Created => Lifecycle::Terminated { deleted: true },
            Lifecycle::Running => Lifecycle::Terminating {
                deleted: Some(grace),
                kill_now: grace.is_zero(),
            },
            Lifecycle::Terminating { deleted, kill_now } => Lifecycle::Terminating {
                deleted: deleted.or(Some(grace)),
                kill_now: kill_now || grace.is_zero(),
            },
            Lifecycle::Terminated { .. } => Lifecycle::Terminated { deleted: true },
        }
    }

    /// The worker is done running containers (they finished, an init
    /// container failed, the deadline passed): Running → Terminating. A
    /// deletion that came first stays as it is.
    pub(crate) fn stop_running(self) -> Self {
        match self {
            Lifecycle::Running | Lifecycle::Created => Lifecycle::Terminating {
                deleted: None,
                kill_now: false,
            },
            other => other,
        }
    }

    /// Nothing runs any more.
    pub(crate) fn finish(self) -> Self {
        Lifecycle::Terminated {
            deleted: self.deleted(),
        }
    }

    /// Whether containers are being stopped or have been (nothing may
    /// start or restart).
    pub(crate) fn is_stopping(self) -> bool {
        matches!(
            self,
            Lifecycle::Terminating { .. } | Lifecycle::Terminated { .. }
        )
    }

    /// Whether what still runs is to be killed at once.
    pub(crate) fn kill_now(self) -> bool {
        matches!(self, Lifecycle::Terminating { kill_now: true, .. })
    }

    /// Whether it was deleted.
    pub(crate) fn deleted(self) -> bool {
        match self {
            Lifecycle::Terminating { deleted, .. } => deleted.is_some(),
            Lifecycle::Terminated { deleted } => deleted,
            _ => false,
        }
    }

    /// The grace period of a deletion, if it was deleted.
    pub(crate) fn deletion_grace(self) -> Option<Duration> {
        match self {
            Lifecycle::Terminating { deleted, .. } => deleted,
            _ => None,
        }
    }

    /// Whether nothing of it runs any more.
    pub(crate) fn is_terminated(self) -> bool {
        matches!(self, Lifecycle::Terminated { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletion_moves_every_state_forward() {
        let s = Duration::from_secs;
        assert_eq!(
            Lifecycle::Created.delete(s(30)),
            Lifecycle::Terminated { deleted: true }
        );
        let deleting = Lifecycle::Running.delete(s(30));
        assert_eq!(deleting.deletion_grace(), Some(s(30)));
        assert!(!deleting.kill_now());
        assert!(deleting.delete(Duration::ZERO).kill_now());
        // A pod stopping by itself that is then deleted keeps stopping and
        // leaves the registry when done.
        let finishing = Lifecycle::Running.stop_running();
        assert!(finishing.is_stopping() && !finishing.deleted());
        assert!(finishing.delete(s(5)).finish().deleted());
        assert!(Lifecycle::Running.start().is_err());
        assert_eq!(Lifecycle::Created.start(), Ok(Lifecycle::Running));
        // A deletion that came first is not undone by the worker finishing.
        assert_eq!(deleting.stop_running(), deleting);
    }
}
