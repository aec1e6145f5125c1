// The one table of sample guests, read by the build script (`include!`) and
// by the crate: each program of `guests/src/bin/` and the WASI versions it
// is built for (`p1`: a wasm32-wasip1 core module, `p2`: a wasm32-wasip2
// component). Only these images are built and installed, as
// `images/<program>-<version>.wasm`; a test guard checks that each is used.

/// `(program, versions)`.
pub const GUESTS: &[(&str, &[&str])] = &[
    ("hello", &["p1", "p2"]),
    ("toolbox", &["p1", "p2"]),
    ("graceful", &["p1", "p2"]),
    // Sockets need WASI 0.2.
    ("tcp-echo", &["p2"]),
    ("http-server", &["p2"]),
    ("http-get", &["p2"]),
    ("grpc-health", &["p2"]),
];

/// The rust target of each WASI version.
pub const TARGETS: &[(&str, &str)] = &[("p1", "wasm32-wasip1"), ("p2", "wasm32-wasip2")];
