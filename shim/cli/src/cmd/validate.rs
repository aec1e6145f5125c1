//! `wasipod validate`: check a manifest without running it: its fields,
//! and each image's bytes (a WASI command of a version wasipod runs), all
//! without compiling anything.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use wasipod::ManifestError;

use super::load;

pub(crate) fn validate(manifest: &Path) -> Result<ExitCode> {
    let spec = load(manifest)?;
    let images = spec
        .inspect_images()
        .map_err(|errors| ManifestError::Invalid {
            source_name: spec.source.clone(),
            pod: spec.name.clone(),
            errors,
        })?;
    let versions: Vec<&str> = images.iter().map(|i| i.wasi.as_str()).collect();
    println!(
        "{}: pod {}/{} is valid ({} init containers, {} containers, {} volumes; images: {})",
        manifest.display(),
        spec.namespace,
        spec.name,
        spec.init_containers.len(),
        spec.containers.len(),
        spec.volumes.len(),
        versions.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}
