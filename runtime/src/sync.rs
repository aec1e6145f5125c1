//! Small helpers for shared state.

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex, tolerating poison: every mutex of the crate guards data
/// that stays consistent at each step, so a panic elsewhere while holding
/// it must not take the runtime down with it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
