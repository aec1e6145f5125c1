//! Pods: the validated domain types (`spec`) and the supervisor that runs
//! them (`supervisor`).

pub(crate) mod spec;
pub(crate) mod supervisor;

pub use spec::{
    Action, ContainerKind, ContainerSpec, DEFAULT_GRACE, EnvValue, Environment, ExpansionTooLarge,
    MAX_EXPANDED_BYTES, MountSpec, PodSpec, ProbeSpec, RestartPolicy, VolumeSource, VolumeSpec,
};
