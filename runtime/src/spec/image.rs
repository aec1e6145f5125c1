//! Images: what a container's `image` names ([`ImageRef`], parsed by
//! validation without touching the disk), and the step that turns it into a
//! local file to load ([`ImageResolver`]): local files now; OCI references
//! and containerd bundles plug in as other resolvers.

use std::path::{Path, PathBuf};

use super::{FieldPath, PodSpec};
use crate::error::FieldError;

/// What a container's `image` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// A `.wasm` file: a path (relative to the manifest's folder, absolute,
    /// or `file://`).
    File(PathBuf),
}

impl ImageRef {
    /// Parses `image` as written; relative paths resolve against
    /// `base_dir`. `Err` holds the reason, in Kubernetes' wording.
    pub fn parse(image: &str, base_dir: &Path) -> Result<Self, String> {
        if image.is_empty() {
            return Err("Required value".into());
        }
        let raw = image.strip_prefix("file://").unwrap_or(image);
        if raw.contains("://") {
            return Err(format!(
                "Unsupported value: {image:?}: an image is a path to a .wasm file (relative, absolute or file://); registries are not supported yet"
            ));
        }
        Ok(ImageRef::File(base_dir.join(raw)))
    }

    /// The local path it names, before resolution.
    pub fn path(&self) -> &Path {
        match self {
            ImageRef::File(p) => p,
        }
    }
}

/// Turns an image reference into a local file to load.
pub trait ImageResolver {
    /// The file of `image`, or why there is none.
    fn resolve(&self, image: &ImageRef) -> Result<PathBuf, String>;
}

/// Images are files on this machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalFiles;

impl ImageResolver for LocalFiles {
    fn resolve(&self, image: &ImageRef) -> Result<PathBuf, String> {
        let ImageRef::File(path) = image;
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => Ok(path.clone()),
            Ok(_) => Err(format!("not a file: {}", path.display())),
            Err(_) => Err(format!("file not found: {}", path.display())),
        }
    }
}

impl PodSpec {
    /// Resolves every container's image with `resolver`, setting its
    /// `image_path`; every problem names its `image` field.
    pub fn resolve_images(&mut self, resolver: &dyn ImageResolver) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let init = self
            .init_containers
            .iter_mut()
            .enumerate()
            .map(|(i, c)| (FieldPath::new("spec").child("initContainers").index(i), c));
        let app = self
            .containers
            .iter_mut()
            .enumerate()
            .map(|(i, c)| (FieldPath::new("spec").child("containers").index(i), c));
        for (field, c) in init.chain(app) {
            match resolver.resolve(&c.image_ref) {
                Ok(path) => c.image_path = path,
                Err(why) => errors.push(FieldError::new(field.child("image"), why)),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Reads every container's (resolved) image and checks, without
    /// compiling it, that it is a WASI command wasipod can run (see
    /// [`super::wasm::inspect`]); every problem names its `image` field.
    pub fn inspect_images(&self) -> Result<Vec<super::ImageInfo>, Vec<FieldError>> {
        let mut infos = Vec::new();
        let mut errors = Vec::new();
        for c in self.init_containers.iter().chain(&self.containers) {
            let field = format!("{}.image", c.field);
            match std::fs::read(&c.image_path)
                .map_err(|e| format!("{}: {e}", c.image_path.display()))
                .and_then(|bytes| super::wasm::inspect(&bytes))
            {
                Ok(info) => infos.push(info),
                Err(why) => errors.push(FieldError::new(field, format!("{}: {why}", c.image))),
            }
        }
        if errors.is_empty() {
            Ok(infos)
        } else {
            Err(errors)
        }
    }
}
