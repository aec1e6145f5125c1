//! Builds the guest programs in `guests/` for wasm32-wasip1 and wasm32-wasip2
//! and installs them as `images/<program>-p1.wasm` / `images/<program>-p2.wasm`,
//! the paths the demo pods and the tests use.

use std::path::{Path, PathBuf};
use std::process::Command;

include!("src/table.rs");

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let guests = root.join("guests");
    let images = root.join("images");
    println!("cargo:rerun-if-changed={}", guests.join("src").display());
    println!(
        "cargo:rerun-if-changed={}",
        guests.join("Cargo.toml").display()
    );
    println!("cargo:rerun-if-changed=src/table.rs");

    ensure_targets();
    let target_dir = guests.join("target");
    for (version, triple) in TARGETS {
        build(&guests, &target_dir, triple, version);
    }

    std::fs::create_dir_all(&images).unwrap();
    let mut wanted = Vec::new();
    for (program, versions) in GUESTS {
        for version in *versions {
            let triple = triple_of(version);
            let built = target_dir
                .join(triple)
                .join("release")
                .join(format!("{program}.wasm"));
            let name = format!("{program}-{version}.wasm");
            copy_if_changed(&built, &images.join(&name));
            println!("cargo:rerun-if-changed={}", images.join(&name).display());
            wanted.push(name);
        }
    }
    // Images no longer in the table go.
    for entry in std::fs::read_dir(&images).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".wasm") && !wanted.contains(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn triple_of(version: &str) -> &'static str {
    TARGETS
        .iter()
        .find(|(v, _)| *v == version)
        .map(|(_, t)| *t)
        .unwrap_or_else(|| panic!("sample-modules/src/table.rs: unknown WASI version {version:?}"))
}

/// Builds, for one target, the programs the table wants for it.
fn build(guests: &Path, target_dir: &Path, triple: &str, version: &str) {
    let programs: Vec<&str> = GUESTS
        .iter()
        .filter(|(_, versions)| versions.contains(&version))
        .map(|(p, _)| *p)
        .collect();
    if programs.is_empty() {
        return;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(guests)
        .args(["build", "--release", "--locked", "--manifest-path"])
        .arg(guests.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .args(["--target", triple]);
    for p in &programs {
        cmd.args(["--bin", p]);
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
            "wasipod-samples: building the guests for {triple} failed ({status}); the wasm \
             targets come from rust-toolchain.toml (rustup target add wasm32-wasip1 wasm32-wasip2)"
        );
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
        .map(|(_, t)| *t)
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
