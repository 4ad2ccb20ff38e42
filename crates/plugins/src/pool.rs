//! Warm instances of the pooled worlds (feedback, codecs), kept per loaded plugin: a call takes
//! one, and gives it back unless it trapped, timed out or was used [`RECYCLE_AFTER`] times.
//! Its own module so that the registry (which owns the pools) and the calls (which use them)
//! do not import each other.

use std::sync::Mutex;

use wasmtime::Store;

use super::host_api::HostState;

/// Warm instances kept per plugin version.
pub(crate) const POOL_MAX: usize = 8;
/// Calls after which a pooled instance is dropped and a fresh one made.
pub const RECYCLE_AFTER: u32 = 10_000;

pub struct Pooled<T> {
    pub(crate) store: Store<HostState>,
    pub(crate) instance: T,
    pub(crate) uses: u32,
}

pub struct Pool<T> {
    idle: Mutex<Vec<Pooled<T>>>,
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Pool { idle: Mutex::new(Vec::new()) }
    }
}

impl<T> Pool<T> {
    pub(crate) fn take(&self) -> Option<Pooled<T>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    pub(crate) fn give_back(&self, pooled: Pooled<T>) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < POOL_MAX && pooled.uses < RECYCLE_AFTER {
            idle.push(pooled);
        }
    }

    /// Instances kept warm right now.
    pub fn idle(&self) -> usize {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}
