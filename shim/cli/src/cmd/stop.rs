//! `wasipod stop` (or `delete`): delete a pod — through the daemon's API
//! for the daemon's pods, or by signalling the `wasipod run` that runs it
//! (that process then stops it and cleans up).

use std::process::ExitCode;

use anyhow::{Result, bail};

use super::Pods;

pub(crate) fn stop(
    pods: &Pods,
    namespace: &str,
    pod: &str,
    grace_period: Option<u64>,
) -> Result<ExitCode> {
    if let Some((daemon, _)) = pods.daemon_pod(namespace, pod)? {
        let query = grace_period
            .map(|g| format!("?gracePeriodSeconds={g}"))
            .unwrap_or_default();
        daemon.call(
            "DELETE",
            &format!("/api/v1/namespaces/{namespace}/pods/{pod}{query}"),
        )?;
        println!("pod \"{pod}\" deleted");
        return Ok(ExitCode::SUCCESS);
    }
    let r = pods.record(namespace, pod)?;
    let Some(pid) = r.pid else {
        bail!("pod \"{pod}\" is not running (phase {})", r.phase());
    };
    if grace_period.is_some() {
        eprintln!(
            "warning: --grace-period applies to the daemon's pods; `wasipod run` uses the pod's own"
        );
    }
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
