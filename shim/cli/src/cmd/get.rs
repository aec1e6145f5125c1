//! `wasipod get`: list pods, or print one as YAML/JSON.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use wasipod::store;

use super::{print_summary, render};
use crate::Format;

pub(crate) fn get(
    state_dir: &Path,
    namespace: &str,
    pod: Option<&str>,
    output: Option<Format>,
) -> Result<ExitCode> {
    if let Some(name) = pod {
        let record = store::find(state_dir, namespace, name)?;
        let mut object = record.object.clone();
        // Recorded while running, but its process is gone: Unknown.
        object.status.phase = record.phase();
        match output {
            Some(f) => println!("{}", render(&object, f)?),
            None => print_summary(&object),
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<12} {:<30} {:<7} {:<12} {:>8}  CREATED",
        "NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS"
    );
    for r in store::list(state_dir) {
        let s = &r.object.status;
        let ready = s.container_statuses.iter().filter(|c| c.ready).count();
        let restarts: u32 = s.container_statuses.iter().map(|c| c.restart_count).sum();
        println!(
            "{:<12} {:<30} {:<7} {:<12} {:>8}  {}",
            r.namespace(),
            r.name(),
            format!("{ready}/{}", s.container_statuses.len()),
            r.phase().to_string(),
            restarts,
            r.object
                .metadata
                .creation_timestamp
                .as_deref()
                .unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}
