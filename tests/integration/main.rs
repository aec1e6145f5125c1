//! wasipod's integration tests: real sample guests (built from
//! `sample-modules/`) run through the public library API.

mod cache_and_status;
mod containerd;
mod containers;
mod cpu;
mod downward_api;
mod eviction;
mod filesystem;
mod guests;
mod lifecycle;
mod manifest;
mod network;
mod probes;
mod restore;
mod sandbox;
mod security;
mod supervisor;
mod support;
mod table;
mod termination_message;
