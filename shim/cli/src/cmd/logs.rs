//! `wasipod logs`: a container's log, of a running or finished pod.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use wasipod::{LogOptions, store};

pub(crate) fn logs(
    state_dir: &Path,
    namespace: &str,
    pod: &str,
    options: LogOptions,
) -> Result<ExitCode> {
    let record = store::find(state_dir, namespace, pod)?;
    let bytes = record.logs(&options)?;
    std::io::stdout().lock().write_all(&bytes)?;
    Ok(ExitCode::SUCCESS)
}
