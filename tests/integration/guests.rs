//! The sample guests: every image the build installs (from the one table in
//! `sample-modules/src/table.rs`) is used by a test, a benchmark, an example
//! or a sample pod, and every guest program is in the table.

use std::path::Path;

fn sources(dir: &Path, out: &mut String) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs" || x == "yaml")
            && path.file_name().is_some_and(|n| n != "guests.rs")
        {
            out.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

#[test]
fn every_built_guest_is_used_and_every_program_is_built() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut text = String::new();
    for dir in [
        "tests",
        "shim/cli/tests",
        "benches",
        "runtime/examples",
        "sample-modules/pods",
    ] {
        sources(&root.join(dir), &mut text);
    }
    let images = wasipod_samples::images_dir();
    for name in wasipod_samples::image_names() {
        assert!(images.join(&name).is_file(), "{name} is not installed");
        let constant = name
            .trim_end_matches(".wasm")
            .replace('-', "_")
            .to_uppercase();
        assert!(
            text.contains(&name) || text.contains(&constant),
            "{name} is built but no test, benchmark, example or sample pod uses it"
        );
    }
    let programs = std::fs::read_dir(root.join("sample-modules/guests/src/bin")).unwrap();
    for p in programs.flatten() {
        let name = p.path().file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            wasipod_samples::GUESTS.iter().any(|(g, _)| *g == name),
            "guests/src/bin/{name}.rs is not in sample-modules/src/table.rs"
        );
    }
    let installed = std::fs::read_dir(&images).unwrap().flatten().count();
    assert_eq!(
        installed,
        wasipod_samples::image_names().len(),
        "images/ holds only the table's images"
    );
}
