//! A broadcast channel made on first subscription. A pod's event and log
//! streams mostly have no listener; `tokio::sync::broadcast` allocates and
//! initialises its whole ring up front (hundreds of KiB for the log ring),
//! which would dominate the cost and the memory of a small pod.

use std::sync::OnceLock;

use tokio::sync::broadcast;

/// Sends to the subscribers there are; nothing is kept for later ones.
pub(crate) struct Fanout<T> {
    capacity: usize,
    sender: OnceLock<broadcast::Sender<T>>,
}

impl<T: Clone> Fanout<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            sender: OnceLock::new(),
        }
    }

    /// A receiver of every value sent from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<T> {
        self.sender
            .get_or_init(|| broadcast::channel(self.capacity).0)
            .subscribe()
    }

    /// Whether anyone listens (so that a sender can skip building a value).
    pub(crate) fn has_subscribers(&self) -> bool {
        self.sender.get().is_some_and(|s| s.receiver_count() > 0)
    }

    pub(crate) fn send(&self, value: T) {
        if let Some(s) = self.sender.get() {
            let _ = s.send(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivers_only_after_subscription() {
        let f = Fanout::new(4);
        f.send(1);
        assert!(!f.has_subscribers());
        let mut rx = f.subscribe();
        assert!(f.has_subscribers());
        f.send(2);
        assert_eq!(rx.try_recv().unwrap(), 2);
        assert!(rx.try_recv().is_err());
    }
}
