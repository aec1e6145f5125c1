//! Paths of the sample guest programs, built by this crate's build script
//! from `sample-modules/guests/` for wasm32-wasip1 and wasm32-wasip2.
//!
//! Every test, example and demo pod runs these real programs.

use std::path::PathBuf;

mod table;
pub use table::{GUESTS, TARGETS};

/// Every installed image's file name (`<program>-<version>.wasm`), from
/// [`GUESTS`].
pub fn image_names() -> Vec<String> {
    GUESTS
        .iter()
        .flat_map(|(program, versions)| versions.iter().map(move |v| format!("{program}-{v}.wasm")))
        .collect()
}

macro_rules! image {
    ($file:literal) => {
        concat!(env!("CARGO_MANIFEST_DIR"), "/images/", $file)
    };
}

/// `hello` as a wasip1 core module.
pub const HELLO_P1: &str = image!("hello-p1.wasm");
/// `hello` as a wasip2 component.
pub const HELLO_P2: &str = image!("hello-p2.wasm");
/// `toolbox` (a busybox-style scriptable guest) as a wasip1 core module.
pub const TOOLBOX_P1: &str = image!("toolbox-p1.wasm");
/// `toolbox` as a wasip2 component.
pub const TOOLBOX_P2: &str = image!("toolbox-p2.wasm");

/// The folder holding the installed images.
pub fn images_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/images"))
}

/// The folder holding the sample pod manifests.
pub fn pods_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/pods"))
}

/// `tcp-echo` (echo server and client on std::net) as a wasip2 component.
pub const TCP_ECHO_P2: &str = image!("tcp-echo-p2.wasm");
/// `http-server` (HTTP/1.1 on std::net, with /healthz, /admin/fail, /slow) as a wasip2 component.
pub const HTTP_SERVER_P2: &str = image!("http-server-p2.wasm");
/// `http-get` (an HTTP client / poller) as a wasip2 component.
pub const HTTP_GET_P2: &str = image!("http-get-p2.wasm");
/// `grpc-health` (the standard gRPC health service, tonic-health over
/// hyper on tokio) as a wasip2 component.
pub const GRPC_HEALTH_P2: &str = image!("grpc-health-p2.wasm");
/// `graceful` (a worker that drains on SIGTERM, per wasipod's contract) as a wasip2 component.
pub const GRACEFUL_P2: &str = image!("graceful-p2.wasm");
/// `graceful` as a wasip1 module (the contract works for both).
pub const GRACEFUL_P1: &str = image!("graceful-p1.wasm");
