//! Images: the reference is parsed here; whether it names a file is the
//! resolver's step (see [`crate::spec::image`]).

use super::*;

impl Validator<'_> {
    pub(super) fn image(&mut self, image: &str, field: &str) -> Option<ImageRef> {
        match ImageRef::parse(image, &self.file.base_dir) {
            Ok(r) => Some(r),
            Err(why) => {
                self.err(field, why);
                None
            }
        }
    }
}
