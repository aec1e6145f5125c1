//! Local ephemeral storage, measured and enforced as the kubelet's eviction
//! manager does it: the pod's emptyDirs, containers' roots and logs are
//! measured, and a pod past a limit is evicted (its containers killed at
//! once, phase `Failed`, reason `Evicted`).
//!
//! Measuring is periodic, so a fast writer gets past a limit by what it
//! writes between two checks. The checks adapt: they start 10 ms apart and
//! space out, doubling, to `RuntimeConfig::eviction_interval` while usage
//! stays still; when it grows, the next check comes before the growth seen
//! could reach the nearest limit (half the predicted time, at least
//! [`MIN_INTERVAL`] apart).
//!
//! Checked in the kubelet's order, the first one past its limit evicts:
//! 1. each emptyDir with a `sizeLimit` (a `medium: Memory` one without a
//!    `sizeLimit` is held to the sum of the pod's memory limits, when every
//!    app container sets one: tmpfs pages are the pod's memory);
//! 2. the pod: its disk emptyDirs, roots and logs against the sum of its
//!    containers' `limits.ephemeral-storage` (when one is set);
//! 3. each container: its root and logs against its own limit.

use std::path::{Path, PathBuf};

use super::PodShared;
use crate::spec::VolumeSource;

/// What one check measures and against which limits.
#[derive(Debug, Default)]
struct Plan {
    /// Volume index, name, limit in bytes and as written.
    empty_dirs: Vec<(usize, String, u64, String)>,
    /// Disk emptyDirs (counted in the pod's usage).
    disk_dirs: Vec<usize>,
    /// The sum of the containers' limits, in bytes and as a quantity.
    pod_limit: Option<(u64, String)>,
    /// Container name, its limit in bytes and as written.
    containers: Vec<(String, Option<(u64, String)>)>,
}

impl Plan {
    fn of(pod: &PodShared) -> Plan {
        let spec = &pod.spec;
        // Limits come from the manifest: sums saturate.
        let memory_total: Option<u64> = spec
            .containers
            .iter()
            .try_fold(0u64, |sum, c| Some(sum.saturating_add(c.memory_limit?)));
        let mut plan = Plan::default();
        for (i, v) in spec.volumes.iter().enumerate() {
            if let VolumeSource::EmptyDir { memory, size_limit } = &v.source {
                let limit = size_limit.clone().or_else(|| {
                    memory
                        .then_some(memory_total)
                        .flatten()
                        .map(|b| (b, quantity(b)))
                });
                if let Some((bytes, text)) = limit {
                    plan.empty_dirs.push((i, v.name.clone(), bytes, text));
                }
                if !memory {
                    plan.disk_dirs.push(i);
                }
            }
        }
        let limit = |c: &crate::spec::ContainerSpec| {
            c.resources
                .limits
                .ephemeral_storage
                .map(|b| (b, quantity(b)))
        };
        plan.containers = spec
            .all_containers()
            .map(|c| (c.name.clone(), limit(c)))
            .collect();
        // As the kubelet sums a pod's limits: the app containers (and
        // sidecars) together, or the largest init container if larger.
        let app: u64 = spec
            .all_containers()
            .filter(|c| c.kind == crate::spec::ContainerKind::App || c.sidecar)
            .filter_map(|c| c.resources.limits.ephemeral_storage)
            .fold(0u64, u64::saturating_add);
        let init = spec
            .init_containers
            .iter()
            .filter(|c| !c.sidecar)
            .filter_map(|c| c.resources.limits.ephemeral_storage)
            .max()
            .unwrap_or(0);
        let total = app.max(init);
        if total > 0 {
            plan.pod_limit = Some((total, quantity(total)));
        }
        plan
    }

    fn is_empty(&self) -> bool {
        self.empty_dirs.is_empty()
            && self.pod_limit.is_none()
            && self.containers.iter().all(|(_, l)| l.is_none())
    }
}

/// The closest two checks come.
pub(crate) const MIN_INTERVAL: std::time::Duration = std::time::Duration::from_millis(5);

/// Resolves with the eviction message once the pod is past a limit; never
/// when it has none.
pub(crate) async fn watch(pod: &PodShared) -> String {
    let plan = Plan::of(pod);
    if plan.is_empty() {
        return std::future::pending().await;
    }
    let layout = pod.sandbox.layout().clone();
    let dirs: Vec<Option<PathBuf>> = (0..pod.spec.volumes.len())
        .map(|i| pod.sandbox.volume_dir(i))
        .collect();
    let plan = std::sync::Arc::new(plan);
    let longest = pod.config.eviction_interval.max(MIN_INTERVAL);
    let mut delay = (MIN_INTERVAL * 2).min(longest);
    let mut last: Option<(std::time::Instant, u64)> = None;
    loop {
        tokio::time::sleep(delay).await;
        let (plan, layout, dirs) = (plan.clone(), layout.clone(), dirs.clone());
        // A walk of folders a guest filled: on the blocking pool.
        let Ok(verdict) = tokio::task::spawn_blocking(move || check(&plan, &layout, &dirs)).await
        else {
            continue;
        };
        let (total, headroom) = match verdict {
            Verdict::Over(message) => return message,
            Verdict::Under { total, headroom } => (total, headroom),
        };
        let now = std::time::Instant::now();
        delay = match last {
            Some((at, before)) if total > before => {
                // Before the growth seen could use up the headroom.
                let rate = (total - before) as f64 / now.duration_since(at).as_secs_f64().max(1e-6);
                std::time::Duration::from_secs_f64(headroom as f64 / rate / 2.0)
                    .clamp(MIN_INTERVAL, longest)
            }
            _ => (delay * 2).min(longest),
        };
        last = Some((now, total));
    }
}

/// What one check found.
enum Verdict {
    /// Past a limit: the eviction message.
    Over(String),
    /// Within every limit: all it measured, and the smallest room left
    /// under a limit.
    Under { total: u64, headroom: u64 },
}

/// One check: the message of the first limit passed, in the kubelet's
/// order.
fn check(plan: &Plan, layout: &crate::sandbox::PodLayout, dirs: &[Option<PathBuf>]) -> Verdict {
    let dir_usage = |i: usize| dirs.get(i).cloned().flatten().map_or(0, |d| usage(&d));
    let mut headroom = u64::MAX;
    let mut total = 0;
    for (i, name, limit, text) in &plan.empty_dirs {
        let used = dir_usage(*i);
        if used > *limit {
            return Verdict::Over(format!(
                "Usage of EmptyDir volume {name:?} exceeds the limit {text:?}."
            ));
        }
        headroom = headroom.min(limit - used);
        total += used;
    }
    let containers: Vec<u64> = plan
        .containers
        .iter()
        .map(|(name, _)| usage(&layout.root_dir(name)) + logs(&layout.container(name)))
        .collect();
    let pod_total =
        plan.disk_dirs.iter().map(|i| dir_usage(*i)).sum::<u64>() + containers.iter().sum::<u64>();
    total += pod_total;
    if let Some((limit, text)) = &plan.pod_limit {
        if pod_total > *limit {
            return Verdict::Over(format!(
                "Pod ephemeral local storage usage exceeds the total limit of containers {text}."
            ));
        }
        headroom = headroom.min(limit - pod_total);
    }
    for ((name, limit), used) in plan.containers.iter().zip(&containers) {
        if let Some((limit, text)) = limit {
            if used > limit {
                return Verdict::Over(format!(
                    "Container {name} exceeded its local ephemeral storage limit {text:?}."
                ));
            }
            headroom = headroom.min(limit - used);
        }
    }
    Verdict::Under { total, headroom }
}

/// Most folders deep a measurement goes, and most entries it reads: a
/// guest's tree bounds the work of a check.
const MAX_DEPTH: usize = 64;
const MAX_ENTRIES: usize = 1 << 20;

/// The space a folder a guest writes takes on its file system (blocks, as
/// `du` counts them). Walked through cap-std handles, so that a link a
/// guest plants (or swaps in during the walk) never leads out of the
/// folder, and bounded in depth and entries.
fn usage(dir: &Path) -> u64 {
    use cap_std::fs::{Dir, MetadataExt};
    use std::sync::Arc;
    let Ok(root) = Dir::open_ambient_dir(dir, cap_std::ambient_authority()) else {
        return 0;
    };
    let mut total = 0;
    let mut seen = 0;
    // Folders to read: each opened from its parent when its turn comes.
    let mut stack: Vec<(Arc<Dir>, Option<std::ffi::OsString>, usize)> =
        vec![(Arc::new(root), None, 0)];
    while let Some((parent, name, depth)) = stack.pop() {
        let dir = match name {
            None => parent,
            Some(name) => match parent.open_dir(&name) {
                Ok(d) => Arc::new(d),
                Err(_) => continue,
            },
        };
        let Ok(entries) = dir.entries() else {
            continue;
        };
        for e in entries.flatten() {
            seen += 1;
            if seen > MAX_ENTRIES {
                return total;
            }
            let Ok(m) = e.metadata() else { continue };
            total += m.blocks() * 512;
            if m.is_dir() && depth < MAX_DEPTH {
                stack.push((dir.clone(), Some(e.file_name()), depth + 1));
            }
        }
    }
    total
}

/// The space a container's logs take (the files of its folder; its
/// runtime folder holds none).
fn logs(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.blocks() * 512)
            .sum()
    })
}

/// Bytes as Kubernetes prints a quantity: the largest binary unit that
/// divides them (`15Mi`), else the largest decimal one (`5M`), else plain
/// bytes.
fn quantity(bytes: u64) -> String {
    let binary = [
        (60, "Ei"),
        (50, "Pi"),
        (40, "Ti"),
        (30, "Gi"),
        (20, "Mi"),
        (10, "Ki"),
    ];
    for (shift, unit) in binary {
        if bytes != 0 && bytes.is_multiple_of(1u64 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    let decimal = [
        (18, "E"),
        (15, "P"),
        (12, "T"),
        (9, "G"),
        (6, "M"),
        (3, "k"),
    ];
    for (exp, unit) in decimal {
        let d = 10u64.pow(exp);
        if bytes != 0 && bytes.is_multiple_of(d) {
            return format!("{}{unit}", bytes / d);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_print_in_the_largest_binary_unit() {
        assert_eq!(quantity(10 << 20), "10Mi");
        assert_eq!(quantity(3 << 30), "3Gi");
        assert_eq!(quantity(5_000_000), "5M");
        assert_eq!(quantity(1500), "1500");
        assert_eq!(quantity(0), "0");
    }
}
