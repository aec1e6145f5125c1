//! The container's root file system: the snapshot containerd passes in
//! `CreateTaskRequest.rootfs`, mounted at the bundle's `rootfs/` for the
//! container's life.

use std::path::Path;

use anyhow::Context;
use containerd_shim::protos::api::Mount;

/// Mounts `mounts` (in order) at `target`; `false` when there is nothing
/// to mount (the bundle's `rootfs/` is already there).
pub fn mount(mounts: &[Mount], target: &Path) -> anyhow::Result<bool> {
    if mounts.is_empty() {
        return Ok(false);
    }
    std::fs::create_dir_all(target).with_context(|| format!("creating {}", target.display()))?;
    for (i, m) in mounts.iter().enumerate() {
        let mounted = containerd_shim::mount::mount_rootfs(
            Some(m.type_.as_str()).filter(|t| !t.is_empty()),
            Some(m.source.as_str()).filter(|s| !s.is_empty()),
            &m.options,
            target,
        );
        if let Err(e) = mounted {
            unmount(target);
            anyhow::bail!(
                "mounting rootfs[{i}] ({} {}) at {}: {e}",
                m.type_,
                m.source,
                target.display()
            );
        }
    }
    Ok(true)
}

/// Unmounts everything at and under `target` (lazily: a file a guest still
/// has open cannot keep the mount).
pub fn unmount(target: &Path) {
    let Some(path) = target.to_str() else { return };
    if let Err(e) = containerd_shim::mount::umount_recursive(Some(path), libc::MNT_DETACH) {
        log::warn!("unmounting {path}: {e}");
    }
}
