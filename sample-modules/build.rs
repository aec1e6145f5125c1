//! Builds the guest programs in `guests/` for wasm32-wasip1 and wasm32-wasip2
//! and installs them as `images/<program>-p1.wasm` / `images/<program>-p2.wasm`,
//! the paths the demo pods and the tests use.

use std::path::{Path, PathBuf};
use std::process::Command;

const PROGRAMS: &[&str] = &["hello", "toolbox"];
const TARGETS: &[(&str, &str)] = &[("wasm32-wasip1", "p1"), ("wasm32-wasip2", "p2")];

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let guests = root.join("guests");
    let images = root.join("images");
    println!("cargo:rerun-if-changed={}", guests.join("src").display());
    println!(
        "cargo:rerun-if-changed={}",
        guests.join("Cargo.toml").display()
    );

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target_dir = guests.join("target");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&guests)
        .args(["build", "--release", "--locked", "--manifest-path"])
        .arg(guests.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    for (triple, _) in TARGETS {
        cmd.args(["--target", triple]);
    }
    // The outer build's flags and target selection must not leak into the
    // guest build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_LLVM_COV",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .expect("wasipod-samples: could not run cargo to build the guest programs");
    if !status.success() {
        panic!(
            "wasipod-samples: building the guests failed ({status}); the wasm targets come from \
             rust-toolchain.toml (rustup target add wasm32-wasip1 wasm32-wasip2)"
        );
    }

    std::fs::create_dir_all(&images).unwrap();
    for (triple, short) in TARGETS {
        for program in PROGRAMS {
            let built = target_dir
                .join(triple)
                .join("release")
                .join(format!("{program}.wasm"));
            let installed = images.join(format!("{program}-{short}.wasm"));
            copy_if_changed(&built, &installed);
            println!("cargo:rerun-if-changed={}", installed.display());
        }
    }
}

fn copy_if_changed(from: &Path, to: &Path) {
    let new = std::fs::read(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    if std::fs::read(to).ok().as_deref() != Some(&new[..]) {
        std::fs::write(to, new).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    }
}
