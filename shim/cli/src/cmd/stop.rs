//! `wasipod stop`: delete a pod that another `wasipod run` runs (that
//! process then stops it and cleans up).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};
use wasipod::store;

pub(crate) fn stop(state_dir: &Path, namespace: &str, pod: &str) -> Result<ExitCode> {
    let r = store::find(state_dir, namespace, pod)?;
    let Some(pid) = r.pid else {
        bail!("pod \"{pod}\" is not running (phase {})", r.phase());
    };
    let Ok(pid) = i32::try_from(pid) else {
        bail!("pod \"{pod}\": process id {pid} out of range");
    };
    // SAFETY: kill(2) with a pid whose process holds the pod's lock.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        bail!(
            "cannot signal the wasipod process {pid}: {}",
            std::io::Error::last_os_error()
        );
    }
    println!("pod \"{pod}\" deleted (process {pid} is stopping it)");
    Ok(ExitCode::SUCCESS)
}
