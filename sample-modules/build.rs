//! Builds the guest programs in `guests/` for wasm32-wasip1 and wasm32-wasip2
//! and installs them as `images/<program>-p1.wasm` / `images/<program>-p2.wasm`,
//! the paths the demo pods and the tests use.

use std::path::{Path, PathBuf};
use std::process::Command;

const PROGRAMS: &[&str] = &[
    "hello",
    "toolbox",
    "tcp-echo",
    "http-server",
    "http-get",
    "graceful",
];
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

    ensure_targets();
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

/// rust-toolchain.toml lists the wasm targets and rustup normally installs
/// them on the first cargo call; with `RUSTUP_AUTO_INSTALL=0` it does not, so
/// add the missing ones here rather than fail.
fn ensure_targets() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok();
    let Some(sysroot) = sysroot.filter(|o| o.status.success()) else {
        return;
    };
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    let missing: Vec<&str> = TARGETS
        .iter()
        .map(|(t, _)| *t)
        .filter(|t| !sysroot.join("lib/rustlib").join(t).join("lib").exists())
        .collect();
    if missing.is_empty() {
        return;
    }
    println!("cargo:warning=installing the rust targets {missing:?} with rustup");
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "add"]).args(&missing);
    if let Ok(toolchain) = std::env::var("RUSTUP_TOOLCHAIN") {
        cmd.args(["--toolchain", &toolchain]);
    }
    match cmd.status() {
        Ok(s) if s.success() => {}
        other => println!("cargo:warning=rustup target add {missing:?} failed ({other:?})"),
    }
}

fn copy_if_changed(from: &Path, to: &Path) {
    let new = std::fs::read(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    if std::fs::read(to).ok().as_deref() != Some(&new[..]) {
        std::fs::write(to, new).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    }
}
