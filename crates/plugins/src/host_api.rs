//! What a plugin instance can reach: the `host.log` import (rate-limited, tagged with the
//! plugin and the consumer) and WASI p2 with an empty context: no preopened directory, no
//! environment, no arguments, stdio discarded, every network address denied. WASI is linked at
//! all only because every wasm32-wasip2 guest imports it, used or not.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, ResourceLimiter};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::maestro::plugin::{host, types};

/// Longest log line kept; the rest is cut.
const MAX_LOG_LINE: usize = 4096;
/// Log lines a plugin may emit in a burst, and per second after it.
const LOG_BURST: f64 = 100.0;
const LOG_PER_SECOND: f64 = 50.0;

/// A token bucket shared by every instance of one plugin version.
#[derive(Debug)]
pub struct LogBudget {
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
    dropped: u64,
}

impl Default for LogBudget {
    fn default() -> Self {
        LogBudget { state: Mutex::new(Bucket { tokens: LOG_BURST, refilled: Instant::now(), dropped: 0 }) }
    }
}

impl LogBudget {
    /// Whether one more line may be written now, and how many were dropped before it.
    fn take(&self) -> Option<u64> {
        let mut bucket = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        let earned = now.duration_since(bucket.refilled).as_secs_f64() * LOG_PER_SECOND;
        bucket.tokens = (bucket.tokens + earned).min(LOG_BURST);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Some(std::mem::take(&mut bucket.dropped))
        } else {
            bucket.dropped += 1;
            None
        }
    }
}

/// Memory cap of one call and the most memory the call asked for.
#[derive(Debug, Default)]
pub struct MemoryLimiter {
    pub cap: usize,
    pub peak: usize,
    pub refused: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.cap {
            self.refused = true;
            return Ok(false);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// The data of one Store: one plugin instance serving one consumer at a time.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: MemoryLimiter,
    pub plugin: Arc<str>,
    pub consumer: String,
    log_budget: Arc<LogBudget>,
}

impl HostState {
    pub fn new(plugin: Arc<str>, consumer: String, memory_cap: usize, log_budget: Arc<LogBudget>) -> Self {
        HostState {
            // The defaults are the empty context: nothing inherited, nothing preopened.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter { cap: memory_cap, peak: 0, refused: false },
            plugin,
            consumer,
            log_budget,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl types::Host for HostState {}

impl host::Host for HostState {
    fn log(&mut self, level: types::LogLevel, mut message: String) {
        let Some(dropped) = self.log_budget.take() else { return };
        if message.len() > MAX_LOG_LINE {
            let mut end = MAX_LOG_LINE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        let (plugin, consumer) = (&*self.plugin, self.consumer.as_str());
        if dropped > 0 {
            tracing::warn!(target: "maestro::plugin", plugin, consumer, dropped, "plugin log lines dropped by the rate limit");
        }
        match level {
            types::LogLevel::Trace => tracing::trace!(target: "maestro::plugin", plugin, consumer, "{message}"),
            types::LogLevel::Debug => tracing::debug!(target: "maestro::plugin", plugin, consumer, "{message}"),
            types::LogLevel::Info => tracing::info!(target: "maestro::plugin", plugin, consumer, "{message}"),
            types::LogLevel::Warn => tracing::warn!(target: "maestro::plugin", plugin, consumer, "{message}"),
            types::LogLevel::Error => tracing::error!(target: "maestro::plugin", plugin, consumer, "{message}"),
        }
    }
}

/// The one linker every plugin is instantiated with: WASI (empty) and `host`.
pub fn linker(engine: &Engine) -> Result<Linker<HostState>, String> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|err| format!("linking WASI: {err}"))?;
    host::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
        .map_err(|err| format!("linking host: {err}"))?;
    Ok(linker)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_budget_drops_lines_past_the_burst_and_counts_them() {
        let budget = LogBudget::default();
        let allowed = (0..1000).filter(|_| budget.take().is_some()).count();
        // The burst plus whatever refilled while the loop ran (well under a second).
        assert!((100..200).contains(&allowed), "allowed {allowed}");
    }

    #[test]
    fn the_memory_limiter_refuses_growth_past_its_cap_and_remembers_it() {
        let mut limiter = MemoryLimiter { cap: 1 << 20, peak: 0, refused: false };
        assert!(limiter.memory_growing(0, 65536, None).unwrap_or(false));
        assert!(!limiter.memory_growing(65536, 2 << 20, None).unwrap_or(true));
        assert!(limiter.refused);
        assert_eq!(limiter.peak, 65536);
    }
}
