//! Manifest text → parse → validate → expand every container's argv and
//! environment. Any panic, hang or runaway allocation is a finding; errors
//! are the expected answer to bad input.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// A folder with (empty) image files named as in the seeds, so that
/// validation gets past the image check and on to the rest.
fn images() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("wasipod-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["hello", "toolbox", "tcp-echo", "http-server", "http-get", "graceful"] {
            for kind in ["p1", "p2"] {
                std::fs::write(dir.join(format!("{name}-{kind}.wasm")), b"").unwrap();
            }
        }
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(spec) = wasipod::PodSpec::from_yaml(text, images()) {
        for c in spec.init_containers.iter().chain(&spec.containers) {
            let _ = c.resolve("10.88.0.2");
        }
        let _ = spec.guest_slots();
        let _ = spec.largest_memory_limit();
    }
});
