//! `graceful [WORK_DIR]`: a worker that follows wasipod's SIGTERM contract.
//!
//! WASI has no signals, so wasipod gives every container a private
//! directory at `/run/wasipod` and two environment variables:
//!
//! - `WASIPOD_SIGTERM_HANDLER`: create this file to say "I handle SIGTERM"
//!   (like installing a handler). Without it, SIGTERM ends the guest at
//!   once with exit code 143, as the default disposition ends a process.
//! - `WASIPOD_TERMINATION_FILE`: appears when SIGTERM is sent. The guest
//!   then has the grace period to finish and exit; after that it is killed
//!   (exit code 137).
//!
//! This worker processes one "job" every 20 ms (appending to
//! `WORK_DIR/jobs.log`), checks for the termination file between jobs, and
//! on SIGTERM finishes the job in flight, writes `drained after N jobs` and
//! exits 0.

use std::io::Write;
use std::time::Duration;

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "/work".into());
    let handler = std::env::var("WASIPOD_SIGTERM_HANDLER").expect("run me under wasipod");
    let terminate = std::env::var("WASIPOD_TERMINATION_FILE").expect("run me under wasipod");
    std::fs::write(&handler, b"").expect("declare the SIGTERM handler");
    println!("worker started; SIGTERM handler installed");
    let mut log = std::fs::OpenOptions::new().create(true).append(true).open(format!("{dir}/jobs.log")).unwrap();
    let mut jobs = 0u64;
    loop {
        if std::fs::metadata(&terminate).is_ok() {
            println!("SIGTERM: draining");
            break;
        }
        // One unit of work; never interrupted half-way.
        std::thread::sleep(Duration::from_millis(20));
        jobs += 1;
        writeln!(log, "job {jobs} done").unwrap();
    }
    writeln!(log, "drained after {jobs} jobs").unwrap();
    println!("drained after {jobs} jobs");
}
