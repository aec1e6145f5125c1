//! The state folder: which runtime owns which pod folders, what a runtime
//! that died left behind, and folders removed in the background.
//!
//! ```text
//! <state>/runtimes/<id>.lock   one per runtime: locked while it runs (an
//!                              open-file-description lock, which the kernel
//!                              drops when the process dies, even by kill -9);
//!                              its first line `pid <pid> retain <0|1>`, then
//!                              the pod folders it made, one per line
//! <state>/trash/               folders on their way out, removed by a
//!                              background thread
//! <state>/pods/<ns>_<name>_<uid>/  a pod's folder
//! ```
//!
//! A lock file whose lock nobody holds belongs to a runtime that died: the
//! next runtime on the same state folder removes the volatile state of its
//! pods (volumes, `/run/wasipod` folders; the whole folder when that
//! runtime kept no records), then the lock file. The pid in a lock file is
//! trusted only while its lock is held, so a recycled pid is never taken
//! for a running wasipod.

use crate::sync::lock;
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use super::layout::{self, PodLayout};

/// A temporary state folder (`wasipod-*`), in memory (`/dev/shm`) where
/// the system has a tmpfs, after removing those of runtimes that died.
pub(crate) fn temp_state_dir() -> Result<tempfile::TempDir, crate::error::RuntimeError> {
    // Volatile state belongs in memory when the system has a tmpfs for it
    // (pod start creates a few folders and files).
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let t = tempfile::Builder::new()
        .prefix("wasipod-")
        .tempdir_in(&base)
        .or_else(|_| tempfile::Builder::new().prefix("wasipod-").tempdir())
        .map_err(io_at(&base))?;
    // What runtimes that died left in the same place.
    reclaim_temp_dirs(&base, t.path());
    Ok(t)
}

/// A temporary data folder (`wasipod-*`) on disk (`/var/tmp`, or the
/// system's temporary folder), after removing those of runtimes that died:
/// where guests' disk volumes and roots go when the state folder is on
/// tmpfs.
pub(crate) fn temp_data_dir() -> Result<tempfile::TempDir, crate::error::RuntimeError> {
    let var_tmp = Path::new("/var/tmp");
    let base = if var_tmp.is_dir() {
        var_tmp.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let t = tempfile::Builder::new()
        .prefix("wasipod-")
        .tempdir_in(&base)
        .map_err(io_at(&base))?;
    reclaim_temp_dirs(&base, t.path());
    Ok(t)
}

/// A runtime's hold on a state folder.
#[derive(Debug)]
pub(crate) struct Owner {
    /// The lock file, locked; pod folders are appended to it.
    file: File,
    path: PathBuf,
    state_dir: PathBuf,
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> crate::error::RuntimeError + '_ {
    move |source| crate::error::RuntimeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Owner {
    /// Takes a new lock file in `state_dir` (pods of this runtime will be
    /// recorded in it), after reclaiming what dead runtimes left there.
    pub(crate) fn acquire(
        state_dir: &Path,
        retain: bool,
    ) -> Result<Self, crate::error::RuntimeError> {
        let runtimes = layout::runtimes_dir(state_dir);
        std::fs::create_dir_all(&runtimes).map_err(io_at(&runtimes))?;
        let trash = layout::trash_dir(state_dir);
        std::fs::create_dir_all(&trash).map_err(io_at(&trash))?;
        // Locked under a temporary name, then renamed into place: a lock
        // file another runtime can see is always one whose owner held it.
        let id = uuid::Uuid::new_v4().simple().to_string();
        let tmp = runtimes.join(format!(".{id}.new"));
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io_at(&tmp))?;
        if !lock_file(&file, true) {
            let _ = std::fs::remove_file(&tmp);
            return Err(crate::error::RuntimeError::Io {
                path: tmp,
                source: std::io::Error::last_os_error(),
            });
        }
        writeln!(
            file,
            "pid {} retain {}",
            std::process::id(),
            u8::from(retain)
        )
        .map_err(io_at(&tmp))?;
        let path = runtimes.join(format!("{id}.lock"));
        std::fs::rename(&tmp, &path).map_err(io_at(&path))?;
        let owner = Owner {
            file,
            path,
            state_dir: state_dir.to_path_buf(),
        };
        owner.reclaim();
        Ok(owner)
    }

    /// Records a pod folder (its name under `pods/`) as this runtime's.
    pub(crate) fn record(&self, pod_dir_name: &str) {
        // One append: lines from one runtime never interleave.
        if let Err(e) = (&self.file).write_all(format!("{pod_dir_name}\n").as_bytes()) {
            tracing::warn!(file = %self.path.display(), error = %e, "could not record a pod folder");
        }
    }

    /// The state folder's trash.
    pub(crate) fn trash(&self) -> PathBuf {
        layout::trash_dir(&self.state_dir)
    }

    /// Removes what dead runtimes left: their pods' volatile state (or
    /// whole folders), their lock files, and anything in the trash.
    fn reclaim(&self) {
        let runtimes = layout::runtimes_dir(&self.state_dir);
        let Ok(entries) = std::fs::read_dir(&runtimes) else {
            return;
        };
        let mut doomed = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path == self.path || path.extension().is_none_or(|e| e != "lock") {
                continue;
            }
            let Some(dead) = RuntimeFile::read(&path).filter(|r| r.pid.is_none()) else {
                continue;
            };
            let pods = layout::pods_dir(&self.state_dir);
            for name in &dead.pods {
                let dir = pods.join(name);
                if dead.retain {
                    doomed.extend(volatile_parts(&dir));
                } else {
                    doomed.push(dir);
                }
            }
            let _ = std::fs::remove_file(&path);
        }
        let trash = self.trash();
        let mut aside: Vec<PathBuf> = doomed
            .iter()
            .filter_map(|d| move_aside(d, &trash))
            .collect();
        if let Ok(entries) = std::fs::read_dir(&trash) {
            aside.extend(entries.flatten().map(|e| e.path()));
        }
        aside.sort();
        aside.dedup();
        remove_in_background(aside);
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        // Stopping cleanly: no pod of this runtime runs any more.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A pod folder's volatile parts: its volumes and each container's
/// `/run/wasipod` folder and root (logs and records stay).
fn volatile_parts(pod_dir: &Path) -> Vec<PathBuf> {
    let pod = PodLayout::at(pod_dir.to_path_buf());
    let mut out = vec![pod.volumes()];
    if let Ok(entries) = std::fs::read_dir(pod_dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir())
                && let Some(name) = e.file_name().to_str()
            {
                out.push(pod.run_dir(name));
                out.push(pod.root_dir(name));
            }
        }
    }
    out.retain(|p| p.symlink_metadata().is_ok());
    out
}

/// Moves `dir` into `trash` under a fresh name (one rename, however many
/// files it holds); `None` when it is not there.
pub(crate) fn move_aside(dir: &Path, trash: &Path) -> Option<PathBuf> {
    let target = trash.join(uuid::Uuid::new_v4().simple().to_string());
    match std::fs::rename(dir, &target) {
        Ok(()) => Some(target),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            // Another file system (a trash that cannot be reached by a
            // rename): removed where it is.
            tracing::debug!(dir = %dir.display(), error = %e, "cannot move aside; removing in place");
            Some(dir.to_path_buf())
        }
    }
}

/// How often the removal thread looks for work. Senders never wake it
/// (a wake-up costs the deleting thread a system call on every deletion):
/// it finds new folders on its next round.
const REMOVAL_ROUND: std::time::Duration = std::time::Duration::from_millis(50);

/// Removes folders on the process's removal thread (a pod with 250,000
/// files takes seconds to remove; its deletion does not wait for that,
/// nor does the process's exit: what is left in the trash then is removed
/// by the next runtime on the same state folder).
pub(crate) fn remove_in_background(dirs: Vec<PathBuf>) {
    static QUEUE: OnceLock<Option<Mutex<Vec<PathBuf>>>> = OnceLock::new();
    if dirs.is_empty() {
        return;
    }
    let queue = QUEUE.get_or_init(|| {
        let started = std::thread::Builder::new()
            .name("wasipod-remove".into())
            .spawn(|| {
                loop {
                    std::thread::park_timeout(REMOVAL_ROUND);
                    let batch = match QUEUE.get() {
                        Some(Some(q)) => std::mem::take(&mut *lock(q)),
                        _ => continue,
                    };
                    for d in batch {
                        remove_now(&d);
                    }
                }
            });
        started.ok().map(|_| Mutex::new(Vec::new()))
    });
    match queue {
        Some(q) => lock(q).extend(dirs),
        None => dirs.iter().for_each(|d| remove_now(d)),
    }
}

fn remove_now(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %e, "could not remove a folder");
    }
}

/// A runtime's lock file as another process reads it.
struct RuntimeFile {
    /// The running process, or `None` when the lock is free (it died).
    pid: Option<u32>,
    retain: bool,
    pods: Vec<String>,
}

impl RuntimeFile {
    fn read(path: &Path) -> Option<Self> {
        let mut file = File::open(path).ok()?;
        let held = !lock_file(&file, false);
        let mut text = String::new();
        file.read_to_string(&mut text).ok()?;
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next()?.split_whitespace().collect();
        let (pid, retain) = match header.as_slice() {
            ["pid", pid, "retain", retain] => (pid.parse().ok()?, *retain == "1"),
            _ => return None,
        };
        Some(Self {
            pid: held.then_some(pid),
            retain,
            pods: lines
                .filter(|l| !l.is_empty() && !l.contains('/') && !l.starts_with('.'))
                .map(str::to_string)
                .collect(),
        })
    }
}

/// Takes (`exclusive`) or tests for a free lock on the whole file: an
/// open-file-description lock, released by the kernel when the last
/// descriptor of it closes. Testing never takes the lock. Returns whether
/// the lock is (or would be) ours.
fn lock_file(file: &File, take: bool) -> bool {
    let mut fl = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    let cmd = if take {
        libc::F_OFD_SETLK
    } else {
        libc::F_OFD_GETLK
    };
    // SAFETY: fcntl on a descriptor we own with a valid, initialised flock.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), cmd, &mut fl) };
    if rc != 0 {
        return false;
    }
    take || fl.l_type == libc::F_UNLCK as libc::c_short
}

/// The pod folders (names under `<state_dir>/pods/`) of the runtimes that
/// run now, with the process of each: what a front end asks to tell a
/// running pod from a record a stopped process left.
pub fn running_pods(state_dir: &Path) -> HashMap<String, u32> {
    let mut out = HashMap::new();
    let Ok(entries) = std::fs::read_dir(layout::runtimes_dir(state_dir)) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "lock") {
            continue;
        }
        if let Some(RuntimeFile {
            pid: Some(pid),
            pods,
            ..
        }) = RuntimeFile::read(&path)
        {
            out.extend(pods.into_iter().map(|p| (p, pid)));
        }
    }
    out
}

/// How old an empty `runtimes/` folder must be before its temporary state
/// folder counts as abandoned.
const STARTUP_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// Removes the temporary state folders (`wasipod-*` under `base`) of
/// runtimes that died without removing their own: those whose every lock
/// file is free.
pub(crate) fn reclaim_temp_dirs(base: &Path, ours: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    let mut doomed = Vec::new();
    for entry in entries.flatten() {
        let dir = entry.path();
        let is_ours = dir == ours;
        let named = entry.file_name().to_string_lossy().starts_with("wasipod-");
        if is_ours || !named || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(locks) = std::fs::read_dir(layout::runtimes_dir(&dir)) else {
            continue;
        };
        let mut any = false;
        let mut held = false;
        for l in locks.flatten() {
            any = true;
            held |= File::open(l.path()).map_or(true, |f| !lock_file(&f, false));
        }
        // No lock file at all: a runtime that stopped but whose folder
        // could not be removed, or one starting right now (it takes its
        // lock within microseconds of making `runtimes/`).
        let stale = || {
            std::fs::metadata(layout::runtimes_dir(&dir))
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > STARTUP_GRACE))
        };
        if (any && !held) || (!any && stale()) {
            doomed.push(dir);
        }
    }
    remove_in_background(doomed);
}
