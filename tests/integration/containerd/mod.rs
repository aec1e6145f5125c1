//! wasipod as a containerd runtime: the shim `containerd-shim-wasipod-v1`
//! under a real containerd (Debian's 1.6), driven through `ctr` and
//! through the CRI as the kubelet drives it.
//!
//! The fixture starts a private containerd (its own config, root, state
//! and socket in a temporary folder; never the machine's), with the shim
//! built from this workspace on its PATH, and imports a test image of the
//! sample guests that it writes itself as an OCI layout. Tests running at
//! the same time share it; the last one to finish stops it by its PID.

mod cri;
mod ctr;
mod pod;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::support::PATIENCE;

/// The test image: every sample guest at `/<name>.wasm`, entrypoint
/// `/toolbox-p1.wasm`.
pub const IMAGE: &str = "wasipod.test/samples:1";
/// The containerd namespace of the `ctr` tests (the CRI's is `k8s.io`).
pub const NS: &str = "wasipod-test";

pub struct Containerd {
    dir: tempfile::TempDir,
    child: Mutex<Child>,
}

static SHARED: Mutex<Weak<Containerd>> = Mutex::new(Weak::new());

/// The running containerd, started if no test holds one.
pub fn containerd() -> Arc<Containerd> {
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = shared.upgrade() {
        return c;
    }
    let c = Arc::new(Containerd::start());
    *shared = Arc::downgrade(&c);
    c
}

/// Builds the shim once per test binary, in this workspace's target
/// folder and profile, and returns its path; `$WASIPOD_TEST_SHIM` names a
/// shim to use instead (a release build, to measure it).
fn shim_binary() -> &'static Path {
    static SHIM: OnceLock<PathBuf> = OnceLock::new();
    SHIM.get_or_init(|| {
        if let Some(given) = std::env::var_os("WASIPOD_TEST_SHIM") {
            return PathBuf::from(given);
        }
        // target/<profile>/deps/integration-… → target/<profile>/
        let exe = std::env::current_exe().expect("test executable");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>/deps")
            .to_path_buf();
        let target_dir = profile_dir.parent().expect("target folder").to_path_buf();
        let mut cmd = Command::new(option_env!("CARGO").unwrap_or("cargo"));
        cmd.args(["build", "--quiet", "-p", "wasipod-containerd-shim"])
            .arg("--manifest-path")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("running cargo to build the shim");
        assert!(
            status.success(),
            "building containerd-shim-wasipod-v1 failed"
        );
        let bin = profile_dir.join("containerd-shim-wasipod-v1");
        assert!(bin.is_file(), "{} was not built", bin.display());
        bin
    })
}

fn need(program: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{program} is not installed: these tests run wasipod under Debian's containerd \
         (`apt-get install containerd`, as .ci/test does); they are never skipped"
    );
}

impl Containerd {
    /// Steps: check containerd and ctr are installed; build the shim and
    /// put it alone on a folder of containerd's PATH; write a private
    /// config; start containerd and wait for its socket to answer; import
    /// the test image into the `ctr` tests' namespace and the CRI's.
    fn start() -> Self {
        need("containerd");
        need("ctr");
        let dir = tempfile::Builder::new()
            .prefix("ctd")
            .tempdir()
            .expect("temporary folder");
        let root = dir.path();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::copy(shim_binary(), root.join("bin/containerd-shim-wasipod-v1")).unwrap();
        for d in ["cni/bin", "cni/conf", "cache", "shim", "logs"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let r = root.display();
        let config = format!(
            r#"version = 2
root = "{r}/root"
state = "{r}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.internal.v1.opt"]
[grpc]
  address = "{r}/containerd.sock"
[ttrpc]
  address = "{r}/containerd.sock.ttrpc"
[debug]
  level = "debug"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_cdi = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "wasipod"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.wasipod]
      runtime_type = "io.containerd.wasipod.v1"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{r}/cni/bin"
    conf_dir = "{r}/cni/conf"
"#
        );
        std::fs::write(root.join("config.toml"), config).unwrap();
        let log = std::fs::File::create(root.join("containerd.log")).unwrap();
        let path = format!(
            "{}:{}",
            root.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new("containerd");
        cmd.arg("--config")
            .arg(root.join("config.toml"))
            .env("PATH", path)
            .env("WASIPOD_CACHE_DIR", root.join("cache"))
            .env("WASIPOD_SHIM_ROOT", root.join("shim"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // SAFETY: prctl only, in the child before exec: containerd dies
        // with the test process, whatever happens to it. (The signal comes
        // when the spawning thread ends: a thread that lives as long as the
        // process spawns it.)
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(cmd.spawn());
            loop {
                std::thread::park();
            }
        });
        let child = rx
            .recv()
            .expect("spawning thread")
            .expect("starting containerd");
        let c = Containerd {
            dir,
            child: Mutex::new(child),
        };
        let started = Instant::now();
        loop {
            if c.ctr_in(NS, &["version"]).status.success() {
                break;
            }
            if let Ok(Some(status)) = c.child().try_wait() {
                panic!("containerd exited ({status}):\n{}", c.log());
            }
            assert!(
                started.elapsed() < PATIENCE,
                "containerd never answered:\n{}",
                c.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let layout = c.write_image();
        for ns in [NS, "k8s.io"] {
            c.ctr_ok(
                ns,
                &[
                    "image",
                    "import",
                    "--all-platforms",
                    layout.to_str().unwrap(),
                ],
            );
        }
        c
    }

    fn child(&self) -> std::sync::MutexGuard<'_, Child> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn socket(&self) -> PathBuf {
        self.root().join("containerd.sock")
    }

    /// containerd's log (with the shims' log lines it forwards).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root().join("containerd.log")).unwrap_or_default()
    }

    /// Runs `ctr` in namespace `ns`.
    pub fn ctr_in(&self, ns: &str, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("--address")
            .arg(self.socket())
            .args(["--namespace", ns])
            .args(args)
            .env("CONTAINERD_SNAPSHOTTER", "overlayfs")
            .stdin(Stdio::null())
            .output()
            .expect("running ctr")
    }

    /// Runs `ctr` and fails the test if it fails.
    pub fn ctr_ok(&self, ns: &str, args: &[&str]) -> Output {
        let out = self.ctr_in(ns, args);
        assert!(
            out.status.success(),
            "ctr {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log_tail()
        );
        out
    }

    /// The end of containerd's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let from = lines.len().saturating_sub(60);
        format!("--- containerd log (end) ---\n{}", lines[from..].join("\n"))
    }

    /// The shim processes serving this containerd (their command line
    /// names its socket).
    pub fn shims(&self) -> Vec<(u32, String)> {
        let socket = self.socket().display().to_string();
        let mut found = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if args
                .first()
                .is_some_and(|a| a.ends_with("containerd-shim-wasipod-v1"))
                && args.iter().any(|a| a == &socket)
            {
                found.push((pid, args.join(" ")));
            }
        }
        found
    }

    /// Mount points under this containerd's folder.
    pub fn mounts(&self) -> Vec<String> {
        let root = self.root().display().to_string();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&root))
            .collect()
    }

    /// Writes the test image as an OCI image layout (a tar of it) and
    /// returns its path: one uncompressed layer holding every sample
    /// guest, an image config naming the toolbox as entrypoint, for this
    /// machine's platform.
    fn write_image(&self) -> PathBuf {
        let root = self.root().join("image");
        let layer_dir = root.join("layer");
        let layout = root.join("layout");
        std::fs::create_dir_all(&layer_dir).unwrap();
        std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
        for name in wasipod_samples::image_names() {
            std::fs::copy(
                wasipod_samples::images_dir().join(&name),
                layer_dir.join(&name),
            )
            .unwrap();
        }
        let layer = root.join("layer.tar");
        let tar = Command::new("tar")
            .arg("-cf")
            .arg(&layer)
            .arg("-C")
            .arg(&layer_dir)
            .arg(".")
            .status()
            .expect("running tar");
        assert!(tar.success());
        let blob = |bytes: &[u8]| -> (String, usize) {
            let digest = format!("sha256:{:x}", Sha256::digest(bytes));
            std::fs::write(
                layout.join("blobs/sha256").join(&digest["sha256:".len()..]),
                bytes,
            )
            .unwrap();
            (digest, bytes.len())
        };
        let (layer_digest, layer_size) = blob(&std::fs::read(&layer).unwrap());
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        let config = serde_json::json!({
            "architecture": arch,
            "os": "linux",
            "config": { "Entrypoint": ["/toolbox-p1.wasm"] },
            "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
        });
        let (config_digest, config_size) = blob(config.to_string().as_bytes());
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest, "size": config_size,
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer_digest, "size": layer_size,
            }],
        });
        let (manifest_digest, manifest_size) = blob(manifest.to_string().as_bytes());
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest, "size": manifest_size,
                "platform": { "architecture": arch, "os": "linux" },
                "annotations": { "io.containerd.image.name": IMAGE },
            }],
        });
        std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
        std::fs::write(
            layout.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        let out = root.join("image.tar");
        let tar = Command::new("tar")
            .arg("-cf")
            .arg(&out)
            .arg("-C")
            .arg(&layout)
            .arg(".")
            .status()
            .expect("running tar");
        assert!(tar.success());
        out
    }
}

impl Drop for Containerd {
    /// Steps: kill shims still serving it (a test that failed midway);
    /// stop containerd (SIGTERM, then SIGKILL); unmount what is left under
    /// its folder; the folder goes with the temporary directory.
    fn drop(&mut self) {
        for (pid, _) in self.shims() {
            // SAFETY: kill(2) on a pid read from /proc.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        let mut child = self.child();
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let started = Instant::now();
        while matches!(child.try_wait(), Ok(None)) && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        drop(child);
        let mut mounts = self.mounts();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            if let Ok(c) = std::ffi::CString::new(m) {
                // SAFETY: umount2 on a path string we own.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}

/// Prints containerd's log if the test holding it fails.
pub struct LogOnFailure<'a>(pub &'a Containerd);

impl Drop for LogOnFailure<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = writeln!(std::io::stderr(), "{}", self.0.log_tail());
        }
    }
}
