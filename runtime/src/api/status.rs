//! Pod status in Kubernetes' own shape (`status:` of a `v1 Pod`), the
//! container state machine, and the rules that derive the pod phase and
//! conditions from the containers.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use super::RestartPolicy;
use crate::error::TransitionError;

/// A timestamp, serialised as RFC 3339 in whole seconds like `metav1.Time`.
pub type Time = DateTime<Utc>;

pub(crate) fn now() -> Time {
    Utc::now().trunc_subsecs(0)
}

mod rfc3339 {
    use super::Time;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Time, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Time, D::Error> {
        let s = String::deserialize(d)?;
        chrono::DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(serde::de::Error::custom)
    }
    pub mod option {
        use super::super::Time;
        use serde::{Deserialize, Deserializer, Serializer};
        pub fn serialize<S: Serializer>(t: &Option<Time>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Time>, D::Error> {
            let s: Option<String> = Option::deserialize(d)?;
            s.map(|s| {
                chrono::DateTime::parse_from_rfc3339(&s)
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .map_err(serde::de::Error::custom)
            })
            .transpose()
        }
    }
}

/// `status.phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum PodPhase {
    /// Accepted; not every container has started.
    #[default]
    Pending,
    /// Bound and at least one container running or restarting.
    Running,
    /// Every container ended with exit code 0 and will not restart.
    Succeeded,
    /// Every container ended and at least one failed.
    Failed,
    /// Not known.
    Unknown,
}

impl PodPhase {
    /// Succeeded or Failed.
    pub fn is_terminal(self) -> bool {
        matches!(self, PodPhase::Succeeded | PodPhase::Failed)
    }
}

impl std::fmt::Display for PodPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// `status.conditions[].type`, in the order they become true.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConditionType {
    /// The pod was accepted by the runtime.
    PodScheduled,
    /// The sandbox (volumes, log files) is ready.
    PodReadyToStartContainers,
    /// Every init container succeeded.
    Initialized,
    /// Every app container is ready.
    ContainersReady,
    /// The pod is ready.
    Ready,
}

/// `status.conditions[].status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConditionStatus {
    /// True.
    True,
    /// False.
    False,
    /// Unknown.
    Unknown,
}

/// One of `status.conditions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodCondition {
    /// Which condition.
    #[serde(rename = "type")]
    pub type_: ConditionType,
    /// Its value.
    pub status: ConditionStatus,
    /// When `status` last changed.
    #[serde(with = "rfc3339")]
    pub last_transition_time: Time,
    /// Why, when False.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Details, when False.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `state.waiting`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateWaiting {
    /// ContainerCreating, PodInitializing, CrashLoopBackOff, …
    pub reason: String,
    /// Details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `state.running`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateRunning {
    /// When the guest started.
    #[serde(with = "rfc3339")]
    pub started_at: Time,
}

/// `state.terminated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateTerminated {
    /// The exit code (137 for OOMKilled or killed, 128 for StartError).
    pub exit_code: i32,
    /// Completed, Error, OOMKilled, StartError.
    pub reason: String,
    /// Details (the trap message, for instance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the guest started.
    #[serde(
        with = "rfc3339::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub started_at: Option<Time>,
    /// When it ended.
    #[serde(with = "rfc3339")]
    pub finished_at: Time,
}

/// A container's state: exactly one of waiting, running, terminated.
/// Serialises as Kubernetes does: `{waiting: {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ContainerState {
    /// Not running yet or waiting to restart.
    Waiting(StateWaiting),
    /// Running.
    Running(StateRunning),
    /// Ended.
    Terminated(StateTerminated),
}

impl ContainerState {
    fn name(&self) -> &'static str {
        match self {
            ContainerState::Waiting(_) => "Waiting",
            ContainerState::Running(_) => "Running",
            ContainerState::Terminated(_) => "Terminated",
        }
    }

    /// The terminated record, if terminated.
    pub fn terminated(&self) -> Option<&StateTerminated> {
        match self {
            ContainerState::Terminated(t) => Some(t),
            _ => None,
        }
    }

    /// The waiting reason, if waiting.
    pub fn waiting_reason(&self) -> Option<&str> {
        match self {
            ContainerState::Waiting(w) => Some(&w.reason),
            _ => None,
        }
    }

    /// Whether running.
    pub fn is_running(&self) -> bool {
        matches!(self, ContainerState::Running(_))
    }
}

mod empty_object {
    use super::ContainerState;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// `lastState: {}` when there is none, as Kubernetes prints it.
    pub fn serialize<S: Serializer>(s: &Option<ContainerState>, ser: S) -> Result<S::Ok, S::Error> {
        match s {
            Some(state) => state.serialize(ser),
            None => serde_json::Map::new().serialize(ser),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<ContainerState>, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        if v.as_object().is_some_and(|m| m.is_empty()) || v.is_null() {
            return Ok(None);
        }
        ContainerState::deserialize(v)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

/// One entry of `initContainerStatuses` / `containerStatuses`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus {
    /// The container's name.
    pub name: String,
    /// `image` as written in the manifest.
    pub image: String,
    /// `sha256:<hex>` of the wasm bytes.
    #[serde(rename = "imageID")]
    pub image_id: String,
    /// `wasipod://<pod uid>/<name>/<restart>` once started.
    #[serde(
        rename = "containerID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub container_id: Option<String>,
    /// Current state.
    pub state: ContainerState,
    /// The previous run's end, once restarted (`{}` before that, as
    /// Kubernetes prints it).
    #[serde(with = "empty_object", default)]
    pub last_state: Option<ContainerState>,
    /// Ready (running; no readiness probes yet).
    pub ready: bool,
    /// Started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<bool>,
    /// How many times the container was restarted.
    pub restart_count: u32,
}

impl ContainerStatus {
    /// A container that has not started: `Waiting` with `reason`.
    pub fn new(name: &str, image: &str, reason: WaitingReason) -> Self {
        Self {
            name: name.to_string(),
            image: image.to_string(),
            image_id: String::new(),
            container_id: None,
            state: ContainerState::Waiting(StateWaiting {
                reason: reason.as_str().to_string(),
                message: None,
            }),
            last_state: None,
            ready: false,
            started: Some(false),
            restart_count: 0,
        }
    }

    fn refuse(&self, action: &'static str) -> TransitionError {
        TransitionError {
            container: self.name.clone(),
            action,
            from: self.state.name(),
        }
    }

    /// Waiting → Waiting with another reason (ContainerCreating → PodInitializing).
    pub fn wait(
        &mut self,
        reason: WaitingReason,
        message: Option<String>,
    ) -> Result<(), TransitionError> {
        match &self.state {
            ContainerState::Waiting(_) => {
                self.state = ContainerState::Waiting(StateWaiting {
                    reason: reason.as_str().to_string(),
                    message,
                });
                Ok(())
            }
            _ => Err(self.refuse("wait")),
        }
    }

    /// Waiting → Running. A restart (after a back-off) counts in
    /// `restartCount`. `started` and `ready` are false while a startup or
    /// readiness probe has yet to pass.
    pub fn start(
        &mut self,
        at: Time,
        container_id: String,
        started: bool,
        ready: bool,
    ) -> Result<(), TransitionError> {
        match &self.state {
            ContainerState::Waiting(_) => {
                if self.last_state.is_some() {
                    self.restart_count += 1;
                }
                self.state = ContainerState::Running(StateRunning { started_at: at });
                self.container_id = Some(container_id);
                self.started = Some(started);
                self.ready = ready;
                Ok(())
            }
            _ => Err(self.refuse("start")),
        }
    }

    /// Running → Terminated (or Waiting → Terminated for a start error).
    pub fn terminate(&mut self, exit: &Exit, at: Time) -> Result<(), TransitionError> {
        let started_at = match &self.state {
            ContainerState::Running(r) => Some(r.started_at),
            ContainerState::Waiting(_) => None,
            ContainerState::Terminated(_) => return Err(self.refuse("terminate")),
        };
        self.state = ContainerState::Terminated(StateTerminated {
            exit_code: exit.code,
            reason: exit.reason.as_str().to_string(),
            message: exit.message.clone(),
            started_at,
            finished_at: at,
        });
        self.started = Some(false);
        self.ready = false;
        Ok(())
    }

    /// Terminated → Waiting(CrashLoopBackOff): the run moves to `lastState`.
    pub fn back_off(&mut self, message: String) -> Result<(), TransitionError> {
        self.retire(WaitingReason::CrashLoopBackOff, Some(message), "back off")
    }

    /// Terminated → Waiting(ContainerCreating), for a restart without
    /// back-off (the first one): the run moves to `lastState`.
    pub fn restart(&mut self) -> Result<(), TransitionError> {
        self.retire(WaitingReason::ContainerCreating, None, "restart")
    }

    fn retire(
        &mut self,
        reason: WaitingReason,
        message: Option<String>,
        verb: &'static str,
    ) -> Result<(), TransitionError> {
        match &self.state {
            ContainerState::Terminated(_) => {
                let previous = std::mem::replace(
                    &mut self.state,
                    ContainerState::Waiting(StateWaiting {
                        reason: reason.as_str().into(),
                        message,
                    }),
                );
                self.last_state = Some(previous);
                Ok(())
            }
            _ => Err(self.refuse(verb)),
        }
    }
}

/// Why a container ended (`state.terminated.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// Exit code 0.
    Completed,
    /// Non-zero exit, trap, or killed.
    Error,
    /// The guest went past `resources.limits.memory`.
    OomKilled,
    /// The guest could not be started.
    StartError,
}

impl ExitReason {
    /// Kubernetes' spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::Completed => "Completed",
            ExitReason::Error => "Error",
            ExitReason::OomKilled => "OOMKilled",
            ExitReason::StartError => "StartError",
        }
    }
}

/// How a guest run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// Exit code.
    pub code: i32,
    /// Reason.
    pub reason: ExitReason,
    /// Details (trap message).
    pub message: Option<String>,
}

impl Exit {
    /// An exit with `code` (Completed when 0, Error otherwise).
    pub fn code(code: i32) -> Self {
        Exit {
            code,
            reason: if code == 0 {
                ExitReason::Completed
            } else {
                ExitReason::Error
            },
            message: None,
        }
    }
}

/// One of `status.podIPs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodIp {
    /// The address.
    pub ip: String,
}

/// `status` of a pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    /// The phase.
    pub phase: PodPhase,
    /// Conditions.
    #[serde(default)]
    pub conditions: Vec<PodCondition>,
    /// A machine-readable reason for the phase (`DeadlineExceeded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Details for `reason`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The pod's address on the pod network.
    #[serde(rename = "podIP", default, skip_serializing_if = "Option::is_none")]
    pub pod_ip: Option<String>,
    /// The pod's addresses (one, IPv4).
    #[serde(rename = "podIPs", default, skip_serializing_if = "Vec::is_empty")]
    pub pod_ips: Vec<PodIp>,
    /// When the runtime accepted the pod.
    #[serde(
        with = "rfc3339::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub start_time: Option<Time>,
    /// `Guaranteed`, `Burstable` or `BestEffort`
    /// ([`QosClass`](crate::api::QosClass)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos_class: Option<String>,
    /// Init containers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_container_statuses: Vec<ContainerStatus>,
    /// App containers.
    #[serde(default)]
    pub container_statuses: Vec<ContainerStatus>,
    /// Names of the init containers that are native sidecars (not part of
    /// the Kubernetes document).
    #[serde(skip)]
    pub(crate) sidecars: Vec<String>,
}

impl PodStatus {
    /// The status of a container by name.
    pub fn container(&self, name: &str) -> Option<&ContainerStatus> {
        self.init_container_statuses
            .iter()
            .chain(&self.container_statuses)
            .find(|c| c.name == name)
    }

    /// The condition of that type.
    pub fn condition(&self, t: ConditionType) -> Option<&PodCondition> {
        self.conditions.iter().find(|c| c.type_ == t)
    }

    /// Sets a condition, keeping `lastTransitionTime` when the value does not change.
    pub(crate) fn set_condition(
        &mut self,
        t: ConditionType,
        status: ConditionStatus,
        reason: Option<&str>,
        message: Option<String>,
        at: Time,
    ) {
        let (reason, message) = match status {
            ConditionStatus::True => (None, None),
            _ => (reason.map(str::to_string), message),
        };
        match self.conditions.iter_mut().find(|c| c.type_ == t) {
            Some(c) => {
                if c.status != status {
                    c.last_transition_time = at;
                }
                c.status = status;
                c.reason = reason;
                c.message = message;
            }
            None => {
                let order = |c: ConditionType| c as usize;
                self.conditions.push(PodCondition {
                    type_: t,
                    status,
                    last_transition_time: at,
                    reason,
                    message,
                });
                self.conditions.sort_by_key(|c| order(c.type_));
            }
        }
    }

    /// Derives the phase and the Initialized/ContainersReady/Ready conditions
    /// from the container statuses, as the kubelet does. `settled` is true
    /// once nothing will be restarted any more (the pod finished or was
    /// deleted).
    pub(crate) fn derive(
        &mut self,
        policy: RestartPolicy,
        settled: bool,
        init_failed: bool,
        at: Time,
    ) {
        let sidecars = &self.sidecars;
        // A regular init container is done once it succeeded; a sidecar
        // once it has started.
        let init_done = |c: &ContainerStatus| {
            if sidecars.contains(&c.name) {
                c.started == Some(true)
                    || c.last_state.is_some()
                    || c.state.terminated().is_some_and(|t| t.started_at.is_some())
            } else {
                c.state.terminated().is_some_and(|t| t.exit_code == 0)
            }
        };
        let inits_done = self.init_container_statuses.iter().all(init_done);
        if !self.phase.is_terminal() {
            self.phase = if init_failed {
                PodPhase::Failed
            } else if !inits_done {
                if settled {
                    PodPhase::Failed
                } else {
                    PodPhase::Pending
                }
            } else {
                app_phase(&self.container_statuses, policy, settled)
            };
        }

        let incomplete: Vec<&str> = self
            .init_container_statuses
            .iter()
            .filter(|c| !init_done(c))
            .map(|c| c.name.as_str())
            .collect();
        if incomplete.is_empty() {
            self.set_condition(
                ConditionType::Initialized,
                ConditionStatus::True,
                None,
                None,
                at,
            );
        } else {
            self.set_condition(
                ConditionType::Initialized,
                ConditionStatus::False,
                Some("ContainersNotInitialized"),
                Some(format!(
                    "containers with incomplete status: [{}]",
                    incomplete.join(" ")
                )),
                at,
            );
        }
        // Sidecars' readiness counts toward the pod's.
        let running_sidecars = self
            .init_container_statuses
            .iter()
            .filter(|c| self.sidecars.contains(&c.name) && c.state.is_running());
        let unready: Vec<&str> = self
            .container_statuses
            .iter()
            .chain(running_sidecars)
            .filter(|c| !c.ready)
            .map(|c| c.name.as_str())
            .collect();
        let (status, reason, message) = if unready.is_empty() {
            (ConditionStatus::True, None, None)
        } else if self.phase.is_terminal() {
            (ConditionStatus::False, Some("PodCompleted"), None)
        } else {
            (
                ConditionStatus::False,
                Some("ContainersNotReady"),
                Some(format!(
                    "containers with unready status: [{}]",
                    unready.join(" ")
                )),
            )
        };
        self.set_condition(
            ConditionType::ContainersReady,
            status,
            reason,
            message.clone(),
            at,
        );
        self.set_condition(ConditionType::Ready, status, reason, message, at);
    }
}

/// The kubelet's phase rule for app containers.
fn app_phase(containers: &[ContainerStatus], policy: RestartPolicy, settled: bool) -> PodPhase {
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for c in containers {
        match &c.state {
            ContainerState::Running(_) => running += 1,
            ContainerState::Terminated(t) => {
                stopped += 1;
                if t.exit_code == 0 {
                    succeeded += 1;
                }
            }
            ContainerState::Waiting(_) if c.last_state.is_some() => stopped += 1,
            ContainerState::Waiting(_) => waiting += 1,
        }
    }
    if settled {
        return if running == 0 && waiting == 0 && stopped == succeeded && succeeded > 0 {
            PodPhase::Succeeded
        } else {
            PodPhase::Failed
        };
    }
    if waiting > 0 {
        return PodPhase::Pending;
    }
    if running > 0 {
        return PodPhase::Running;
    }
    if stopped == 0 {
        return PodPhase::Pending;
    }
    match policy {
        RestartPolicy::Always => PodPhase::Running,
        RestartPolicy::OnFailure if stopped != succeeded => PodPhase::Running,
        _ if stopped == succeeded => PodPhase::Succeeded,
        _ => PodPhase::Failed,
    }
}

/// `Normal` or `Warning`, as in Kubernetes events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    /// Expected progress.
    Normal,
    /// Something went wrong.
    Warning,
}

/// Why a container waits (`state.waiting.reason`), spelled as the kubelet
/// spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitingReason {
    /// Its image and sandbox are being prepared.
    ContainerCreating,
    /// It waits for the init containers.
    PodInitializing,
    /// It waits for its restart back-off.
    CrashLoopBackOff,
}

impl WaitingReason {
    /// The reason as Kubernetes writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            WaitingReason::ContainerCreating => "ContainerCreating",
            WaitingReason::PodInitializing => "PodInitializing",
            WaitingReason::CrashLoopBackOff => "CrashLoopBackOff",
        }
    }
}

/// The reason of an [`Event`], spelled as the kubelet spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventReason {
    /// The pod was given to this node.
    Scheduled,
    /// The pod's sandbox was made again (after a restart of the node).
    SandboxChanged,
    /// A host port forwards to the pod (wasipod's own).
    Published,
    /// An image is being loaded or compiled.
    Pulling,
    /// An image is ready (loaded or compiled).
    Pulled,
    /// A volume could not be prepared.
    FailedMount,
    /// A container was created.
    Created,
    /// A container started.
    Started,
    /// A container exited with code 0 (wasipod's own).
    Completed,
    /// A container passed its memory limit.
    OomKilled,
    /// A container could not start or exited with an error.
    Failed,
    /// A container waits before its restart.
    BackOff,
    /// A container is being stopped.
    Killing,
    /// A probe failed.
    Unhealthy,
    /// The postStart hook failed.
    FailedPostStartHook,
    /// The preStop hook failed or outlived the grace period.
    FailedPreStopHook,
    /// `activeDeadlineSeconds` passed.
    DeadlineExceeded,
    /// The pod went past an ephemeral storage limit and was evicted.
    Evicted,
    /// The runtime failed (a bug).
    InternalError,
}

impl EventReason {
    /// The reason as Kubernetes writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            EventReason::Scheduled => "Scheduled",
            EventReason::SandboxChanged => "SandboxChanged",
            EventReason::Published => "Published",
            EventReason::Pulling => "Pulling",
            EventReason::Pulled => "Pulled",
            EventReason::FailedMount => "FailedMount",
            EventReason::Created => "Created",
            EventReason::Started => "Started",
            EventReason::Completed => "Completed",
            EventReason::OomKilled => "OOMKilled",
            EventReason::Failed => "Failed",
            EventReason::BackOff => "BackOff",
            EventReason::Killing => "Killing",
            EventReason::Unhealthy => "Unhealthy",
            EventReason::FailedPostStartHook => "FailedPostStartHook",
            EventReason::FailedPreStopHook => "FailedPreStopHook",
            EventReason::DeadlineExceeded => "DeadlineExceeded",
            EventReason::Evicted => "Evicted",
            EventReason::InternalError => "InternalError",
        }
    }
}

impl std::fmt::Display for EventReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event of one of a runtime's pods, as
/// [`Runtime::watch_events`](crate::Runtime::watch_events) reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct PodEvent {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// The pod's uid.
    pub uid: String,
    /// Its place among the pod's events (0 for the first), as
    /// [`Pod::events`](crate::Pod::events) lists them.
    pub index: usize,
    /// The event.
    pub event: Event,
}

/// A pod event, like those `kubectl describe pod` lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// When it happened (sub-second precision, unlike status times).
    pub time: Time,
    /// Normal or Warning.
    #[serde(rename = "type")]
    pub type_: EventType,
    /// Scheduled, Pulled, Created, Started, Completed, BackOff, Failed,
    /// OOMKilling, Killing, DeadlineExceeded.
    pub reason: String,
    /// `pod` or `spec.containers{name}`, as kubectl prints the involved object.
    pub object: String,
    /// Human-readable details.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: ContainerState, last: bool) -> ContainerStatus {
        let mut c = ContainerStatus::new("c", "i", WaitingReason::ContainerCreating);
        c.state = state;
        if last {
            c.last_state = Some(ContainerState::Waiting(StateWaiting {
                reason: "x".into(),
                message: None,
            }));
        }
        c
    }

    fn terminated(code: i32) -> ContainerState {
        ContainerState::Terminated(StateTerminated {
            exit_code: code,
            reason: "x".into(),
            message: None,
            started_at: None,
            finished_at: now(),
        })
    }

    #[test]
    fn transitions_are_checked() {
        let mut c = ContainerStatus::new("web", "web.wasm", WaitingReason::ContainerCreating);
        assert!(
            c.terminate(&Exit::code(0), now()).is_ok(),
            "waiting → terminated is a start error"
        );
        let err = c.terminate(&Exit::code(0), now()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "container web: cannot terminate from state Terminated"
        );
        c.back_off("b".into()).unwrap();
        assert!(c.back_off("b".into()).is_err());
        c.start(now(), "id".into(), true, true).unwrap();
        assert_eq!(c.restart_count, 1);
        assert!(c.start(now(), "id".into(), true, true).is_err());
    }

    #[test]
    fn phase_rules() {
        use RestartPolicy::*;
        let run = ContainerState::Running(StateRunning { started_at: now() });
        assert_eq!(
            app_phase(&[status(run.clone(), false)], Always, false),
            PodPhase::Running
        );
        assert_eq!(
            app_phase(&[status(terminated(0), false)], Never, false),
            PodPhase::Succeeded
        );
        assert_eq!(
            app_phase(&[status(terminated(1), false)], Never, false),
            PodPhase::Failed
        );
        assert_eq!(
            app_phase(&[status(terminated(1), false)], OnFailure, false),
            PodPhase::Running
        );
        assert_eq!(
            app_phase(&[status(terminated(0), false)], OnFailure, false),
            PodPhase::Succeeded
        );
        assert_eq!(
            app_phase(&[status(terminated(0), false)], Always, false),
            PodPhase::Running
        );
        assert_eq!(
            app_phase(
                &[status(terminated(0), false), status(run, false)],
                Never,
                false
            ),
            PodPhase::Running
        );
        assert_eq!(
            app_phase(&[status(terminated(137), false)], Always, true),
            PodPhase::Failed
        );
    }
}
