//! A pod as one row of `kubectl get pods`: READY, STATUS, RESTARTS, AGE
//! (and IP, QoS with `-o wide`), computed the way kubectl's pod printer
//! does it, so that wasipod's front ends print what Kubernetes users read.

use chrono::{DateTime, Utc};

use super::manifest::{ObjectMeta, PodSpec};
use super::status::{ContainerState, PodStatus, Time};

/// One row of a pod table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRow {
    /// `ready/total`: app containers plus native sidecars.
    pub ready: String,
    /// kubectl's STATUS: `Running`, `Completed`, `Error`, `OOMKilled`,
    /// `CrashLoopBackOff`, `Init:0/2`, `Init:Error`, `PodInitializing`,
    /// `Terminating`, `Evicted`, …
    pub status: String,
    /// `N`, or `N (Xs ago)` after a restart.
    pub restarts: String,
    /// Since `metadata.creationTimestamp`, as kubectl prints durations.
    pub age: String,
    /// `status.podIP` (`<none>` when unset).
    pub ip: String,
    /// `status.qosClass` (`<none>` when unset).
    pub qos: String,
}

impl PodRow {
    /// The row of a pod at `now`.
    ///
    /// Steps, as kubectl's pod printer: the phase (or `status.reason`);
    /// the first init container not done decides (`Init:N/M`,
    /// `Init:<reason>`); once initialised, the app containers from last to
    /// first (a waiting or terminated reason wins, a ready running one
    /// counts as ready); `Completed` with a container still running reads
    /// `Running` (or `NotReady`); a pod being deleted that is not yet
    /// terminal reads `Terminating`. One difference: a terminal pod with a
    /// pod-level reason (`Evicted`, `DeadlineExceeded`) shows that reason.
    pub fn of(meta: &ObjectMeta, spec: &PodSpec, status: &PodStatus, now: Time) -> PodRow {
        let sidecar = |name: &str| {
            spec.init_containers
                .iter()
                .any(|c| c.name == name && c.restart_policy.as_deref() == Some("Always"))
        };
        let mut total = spec.containers.len()
            + spec
                .init_containers
                .iter()
                .filter(|c| sidecar(&c.name))
                .count();
        if total == 0 {
            total = status.container_statuses.len();
        }
        let mut ready = 0;
        let mut reason = status
            .reason
            .clone()
            .unwrap_or_else(|| status.phase.to_string());
        let mut restarts = 0;
        let mut sidecar_restarts = 0;
        let mut last_restart: Option<Time> = None;
        let mut last_sidecar_restart: Option<Time> = None;
        let later = |a: Option<Time>, b: Option<Time>| a.max(b);
        let finished = |s: &Option<ContainerState>| match s {
            Some(ContainerState::Terminated(t)) => Some(t.finished_at),
            _ => None,
        };

        let init_total = spec
            .init_containers
            .len()
            .max(status.init_container_statuses.len());
        let mut initializing = false;
        for (i, c) in status.init_container_statuses.iter().enumerate() {
            restarts += c.restart_count;
            last_restart = later(last_restart, finished(&c.last_state));
            let is_sidecar = sidecar(&c.name);
            if is_sidecar {
                sidecar_restarts += c.restart_count;
                last_sidecar_restart = later(last_sidecar_restart, finished(&c.last_state));
            }
            match &c.state {
                ContainerState::Terminated(t) if t.exit_code == 0 => continue,
                _ if is_sidecar && c.started == Some(true) => {
                    if c.ready {
                        ready += 1;
                    }
                    continue;
                }
                ContainerState::Terminated(t) => {
                    reason = if t.reason.is_empty() {
                        format!("Init:ExitCode:{}", t.exit_code)
                    } else {
                        format!("Init:{}", t.reason)
                    };
                }
                ContainerState::Waiting(w)
                    if !w.reason.is_empty() && w.reason != "PodInitializing" =>
                {
                    reason = format!("Init:{}", w.reason);
                }
                _ => reason = format!("Init:{i}/{init_total}"),
            }
            initializing = true;
            break;
        }
        let initialized = status
            .condition(super::status::ConditionType::Initialized)
            .is_some_and(|c| c.status == super::status::ConditionStatus::True);
        if !initializing || initialized {
            restarts = sidecar_restarts;
            last_restart = last_sidecar_restart;
            let mut running = false;
            for c in status.container_statuses.iter().rev() {
                restarts += c.restart_count;
                last_restart = later(last_restart, finished(&c.last_state));
                match &c.state {
                    ContainerState::Waiting(w) if !w.reason.is_empty() => reason = w.reason.clone(),
                    ContainerState::Terminated(t) if !t.reason.is_empty() => {
                        reason = t.reason.clone()
                    }
                    ContainerState::Terminated(t) => reason = format!("ExitCode:{}", t.exit_code),
                    ContainerState::Running(_) if c.ready => {
                        running = true;
                        ready += 1;
                    }
                    _ => {}
                }
            }
            if reason == "Completed" && running {
                let has_ready = status
                    .condition(super::status::ConditionType::Ready)
                    .is_some_and(|c| c.status == super::status::ConditionStatus::True);
                reason = if has_ready { "Running" } else { "NotReady" }.into();
            }
        }
        if status.phase.is_terminal()
            && let Some(r) = &status.reason
        {
            reason = r.clone();
        }
        if meta.deletion_timestamp.is_some() && !status.phase.is_terminal() {
            reason = "Terminating".into();
        }
        let restarts = match last_restart {
            Some(at) if restarts != 0 => {
                format!("{restarts} ({} ago)", human_duration(now - at))
            }
            _ => restarts.to_string(),
        };
        let age = meta
            .creation_timestamp
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| human_duration(now - t.with_timezone(&Utc)))
            .unwrap_or_else(|| "<unknown>".into());
        PodRow {
            ready: format!("{ready}/{total}"),
            status: reason,
            restarts,
            age,
            ip: status.pod_ip.clone().unwrap_or_else(|| "<none>".into()),
            qos: status.qos_class.clone().unwrap_or_else(|| "<none>".into()),
        }
    }
}

/// A duration as kubectl prints ages: `45s`, `2m10s`, `15m`, `3h20m`,
/// `2d3h`, `1y30d` (precision drops as durations grow).
pub fn human_duration(d: chrono::TimeDelta) -> String {
    let secs = d.num_seconds();
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        return match secs % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{days}d"),
            h => format!("{days}d{h}h"),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        return match days % 365 {
            0 => format!("{years}y"),
            dy => format!("{years}y{dy}d"),
        };
    }
    format!("{years}y")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn app_containers_waiting_for_init_read_pod_initializing() {
        use crate::api::manifest::Container;
        use crate::api::status::{ContainerStatus, Exit, WaitingReason};
        let container = |name: &str| Container {
            name: name.into(),
            ..Default::default()
        };
        let spec = PodSpec {
            init_containers: vec![container("init")],
            containers: vec![container("app")],
            ..Default::default()
        };
        let mut init = ContainerStatus::new("init", "i", WaitingReason::ContainerCreating);
        init.start(Utc::now(), "x".into(), true, true).unwrap();
        init.terminate(&Exit::code(0), Utc::now()).unwrap();
        let status = PodStatus {
            init_container_statuses: vec![init],
            container_statuses: vec![ContainerStatus::new(
                "app",
                "a",
                WaitingReason::PodInitializing,
            )],
            ..Default::default()
        };
        let row = PodRow::of(&ObjectMeta::default(), &spec, &status, Utc::now());
        assert_eq!(
            (row.status.as_str(), row.ready.as_str()),
            ("PodInitializing", "0/1")
        );
    }

    #[test]
    fn durations_print_as_kubectl_does() {
        let s = |n: i64| human_duration(TimeDelta::seconds(n));
        assert_eq!(s(-5), "<invalid>");
        assert_eq!(s(0), "0s");
        assert_eq!(s(119), "119s");
        assert_eq!(s(130), "2m10s");
        assert_eq!(s(600), "10m");
        assert_eq!(s(3 * 3600 + 1200), "3h20m");
        assert_eq!(s(9 * 3600), "9h");
        assert_eq!(s(51 * 3600), "2d3h");
        assert_eq!(s(30 * 86400), "30d");
        assert_eq!(s(3 * 365 * 86400 + 86400), "3y1d");
    }
}
