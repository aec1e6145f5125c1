//! `wasipod validate`: check a manifest without running it.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::load;

pub(crate) fn validate(manifest: &Path) -> Result<ExitCode> {
    let spec = load(manifest)?;
    println!(
        "{}: pod {}/{} is valid ({} init containers, {} containers, {} volumes)",
        manifest.display(),
        spec.namespace,
        spec.name,
        spec.init_containers.len(),
        spec.containers.len(),
        spec.volumes.len()
    );
    Ok(ExitCode::SUCCESS)
}
