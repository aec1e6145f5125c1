//! Pods: the validated domain types ([`spec`]) and the supervisor that runs
//! them ([`supervisor`]).

pub(crate) mod spec;
pub(crate) mod supervisor;

pub use spec::{
    ContainerKind, ContainerSpec, DEFAULT_GRACE, EnvValue, MountSpec, PodSpec, RestartPolicy,
    VolumeSource, VolumeSpec,
};
