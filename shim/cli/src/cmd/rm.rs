//! `wasipod rm`: remove the records (logs, status) of pods that are not
//! running.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};
use wasipod::store;

pub(crate) fn rm(
    state_dir: &Path,
    namespace: &str,
    pod: Option<&str>,
    all: bool,
) -> Result<ExitCode> {
    let targets = match (pod, all) {
        (Some(name), false) => vec![store::find(state_dir, namespace, name)?],
        (None, true) => store::list(state_dir)
            .into_iter()
            .filter(|r| !r.is_running())
            .collect(),
        _ => bail!("give a pod name or --all"),
    };
    for r in targets {
        if r.is_running() {
            bail!("pod \"{}\" is running; `wasipod stop` it first", r.name());
        }
        r.remove()?;
        println!("removed {}", r.name());
    }
    Ok(ExitCode::SUCCESS)
}
