//! The only writer of a pod's status and events (the kubelet's status
//! manager): every change goes through here, and the phase and conditions
//! are derived again after each.

use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, watch};

use crate::api::status::{
    self, ContainerStatus, Event, EventReason, EventType, PodEvent, PodStatus,
};
use crate::fanout::Fanout;
use crate::spec::{ContainerKind, ContainerSpec, RestartPolicy};
use crate::sync::lock;

/// A pod's status and events.
pub(crate) struct StatusWriter {
    policy: RestartPolicy,
    /// Read by the pod's handles (`Pod::status`, `Pod::watch`).
    status: watch::Sender<PodStatus>,
    /// Every event so far.
    events: Mutex<Vec<Event>>,
    /// Events from now on, to `Pod::subscribe_events`.
    events_tx: Fanout<Event>,
    /// The runtime's feed of every pod's events (`Runtime::watch_events`),
    /// with this pod's identity as a template.
    feed: Option<(Arc<Fanout<PodEvent>>, PodEvent)>,
}

impl StatusWriter {
    pub(crate) fn new(policy: RestartPolicy, initial: PodStatus) -> Self {
        Self {
            policy,
            status: watch::channel(initial).0,
            events: Mutex::new(Vec::new()),
            events_tx: Fanout::new(1024),
            feed: None,
        }
    }

    /// Also sends each event to `feed`, as an event of pod
    /// `namespace/name` with `uid`.
    pub(crate) fn with_feed(
        mut self,
        feed: Arc<Fanout<PodEvent>>,
        namespace: &str,
        name: &str,
        uid: &str,
    ) -> Self {
        let template = PodEvent {
            namespace: namespace.to_string(),
            name: name.to_string(),
            uid: uid.to_string(),
            index: 0,
            event: Event {
                time: status::now(),
                type_: EventType::Normal,
                reason: String::new(),
                object: String::new(),
                message: String::new(),
            },
        };
        self.feed = Some((feed, template));
        self
    }

    /// A snapshot.
    pub(crate) fn get(&self) -> PodStatus {
        self.status.borrow().clone()
    }

    /// Follows changes.
    pub(crate) fn subscribe(&self) -> watch::Receiver<PodStatus> {
        self.status.subscribe()
    }

    /// Every event so far.
    pub(crate) fn events(&self) -> Vec<Event> {
        lock(&self.events).clone()
    }

    /// Events from now on.
    pub(crate) fn subscribe_events(&self) -> broadcast::Receiver<Event> {
        self.events_tx.subscribe()
    }

    /// Records an event about `object` (`pod` or a container, see
    /// [`object`]).
    pub(crate) fn event(
        &self,
        type_: EventType,
        reason: EventReason,
        object: &str,
        message: String,
    ) {
        self.event_at(chrono::Utc::now(), type_, reason, object, message);
    }

    /// Records an event that happened at `time`.
    pub(crate) fn event_at(
        &self,
        time: status::Time,
        type_: EventType,
        reason: EventReason,
        object: &str,
        message: String,
    ) {
        let event = Event {
            time,
            type_,
            reason: reason.as_str().to_string(),
            object: object.to_string(),
            message,
        };
        let index = {
            let mut events = lock(&self.events);
            events.push(event.clone());
            events.len() - 1
        };
        if let Some((feed, template)) = &self.feed
            && feed.has_subscribers()
        {
            feed.send(PodEvent {
                index,
                event: event.clone(),
                ..template.clone()
            });
        }
        self.events_tx.send(event);
    }

    /// Changes the status and re-derives phase and conditions.
    pub(crate) fn update(&self, f: impl FnOnce(&mut PodStatus)) {
        let policy = self.policy;
        self.status.send_modify(|s| {
            f(s);
            s.derive(policy, false, false, status::now());
        });
    }

    /// Changes the status as it is, deriving nothing (the final settlement
    /// derives itself).
    pub(crate) fn update_raw(&self, f: impl FnOnce(&mut PodStatus)) {
        self.status.send_modify(f);
    }

    /// Updates one container's status (a transition of its state machine;
    /// a refused one is a bug, logged).
    pub(crate) fn update_container(
        &self,
        c: &ContainerSpec,
        f: impl FnOnce(&mut ContainerStatus) -> Result<(), crate::error::TransitionError>,
    ) {
        self.update(|s| {
            let list = match c.kind {
                ContainerKind::Init => &mut s.init_container_statuses,
                ContainerKind::App => &mut s.container_statuses,
            };
            if let Some(cs) = list.iter_mut().find(|cs| cs.name == c.name)
                && let Err(e) = f(cs)
            {
                tracing::error!(error = %e, "container state machine refused a transition");
            }
        });
    }

    /// Sets `started` / `ready` of a running container (probe results).
    pub(crate) fn set_probe_state(
        &self,
        c: &ContainerSpec,
        started: Option<bool>,
        ready: Option<bool>,
    ) {
        self.update_container(c, |cs| {
            if cs.state.is_running() {
                if let Some(s) = started {
                    cs.started = Some(s);
                }
                if let Some(r) = ready {
                    cs.ready = r;
                }
            }
            Ok(())
        });
    }
}

/// A container as events name it: `spec.containers{web}`.
pub(crate) fn object(c: &ContainerSpec) -> String {
    let list = match c.kind {
        ContainerKind::Init => "initContainers",
        ContainerKind::App => "containers",
    };
    format!("spec.{list}{{{}}}", c.name)
}
