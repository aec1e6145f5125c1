//! A container's compute resources (`resources.requests` / `limits`) and
//! the pod's QoS class derived from them, with Kubernetes' rules.

use crate::api::QosClass;

/// Amounts of the resources wasipod knows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResourceList {
    /// `cpu`, in millicores (Kubernetes' precision: `250m`, `1` = 1000).
    pub cpu_millis: Option<u64>,
    /// `memory`, in bytes.
    pub memory: Option<u64>,
    /// `ephemeral-storage`, in bytes.
    pub ephemeral_storage: Option<u64>,
}

impl ResourceList {
    /// Each amount of `self`, or `other`'s where `self` has none (the API
    /// server's defaulting of requests from limits).
    pub fn or(self, other: ResourceList) -> ResourceList {
        ResourceList {
            cpu_millis: self.cpu_millis.or(other.cpu_millis),
            memory: self.memory.or(other.memory),
            ephemeral_storage: self.ephemeral_storage.or(other.ephemeral_storage),
        }
    }
}

/// A container's `resources`, requests defaulted from limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// `resources.requests` (a limit without a request defaults it).
    pub requests: ResourceList,
    /// `resources.limits`.
    pub limits: ResourceList,
}

/// The QoS class of a pod with these containers (init containers
/// included), as Kubernetes computes `status.qosClass` from cpu and memory:
/// BestEffort when no container requests or limits either; Guaranteed when
/// every container has cpu and memory limits and its requests equal them;
/// otherwise Burstable. Zero amounts count as unset.
pub fn qos_class<'a>(containers: impl IntoIterator<Item = &'a Resources>) -> QosClass {
    let nonzero = |v: Option<u64>| v.filter(|&v| v != 0);
    let mut any = false;
    let mut guaranteed = true;
    for r in containers {
        let requests = [nonzero(r.requests.cpu_millis), nonzero(r.requests.memory)];
        let limits = [nonzero(r.limits.cpu_millis), nonzero(r.limits.memory)];
        any |= requests.iter().chain(&limits).any(Option::is_some);
        if limits.iter().any(Option::is_none) {
            guaranteed = false;
        }
        for (req, lim) in requests.iter().zip(&limits) {
            if req.is_some() && req != lim {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => QosClass::BestEffort,
        (true, true) => QosClass::Guaranteed,
        (true, false) => QosClass::Burstable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(req: (Option<u64>, Option<u64>), lim: (Option<u64>, Option<u64>)) -> Resources {
        let list = |(cpu_millis, memory)| ResourceList {
            cpu_millis,
            memory,
            ephemeral_storage: None,
        };
        let limits = list(lim);
        Resources {
            requests: list(req).or(limits),
            limits,
        }
    }

    #[test]
    fn qos_classes_follow_kubernetes() {
        let none = (None, None);
        assert_eq!(qos_class(&[r(none, none)]), QosClass::BestEffort);
        assert_eq!(qos_class(&[]), QosClass::BestEffort);
        let full = (Some(700), Some(200 << 20));
        assert_eq!(qos_class(&[r(full, full)]), QosClass::Guaranteed);
        assert_eq!(
            qos_class(&[r(none, full)]),
            QosClass::Guaranteed,
            "limits only: requests default to them"
        );
        assert_eq!(
            qos_class(&[r((Some(500), Some(200 << 20)), full)]),
            QosClass::Burstable,
            "a request below its limit"
        );
        assert_eq!(
            qos_class(&[r((None, Some(100 << 20)), (None, Some(200 << 20)))]),
            QosClass::Burstable
        );
        assert_eq!(
            qos_class(&[r(full, full), r(none, none)]),
            QosClass::Burstable,
            "one container without limits"
        );
        assert_eq!(
            qos_class(&[r(none, (Some(0), Some(0)))]),
            QosClass::BestEffort,
            "zero counts as unset"
        );
    }
}
