//! Plugin metrics: per plugin and extension point, calls by outcome, latency and memory
//! high-water, and file loads by result. Label values are plugin names (one per file in the
//! plugin directory), extension points and outcomes (fixed sets): never a consumer or resource.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    plugin: String,
    point: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PointLabels {
    plugin: String,
    point: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoadLabels {
    plugin: String,
    result: &'static str,
}

#[derive(Clone)]
pub struct PluginMetrics {
    calls: Family<CallLabels, Counter>,
    duration: Family<PointLabels, Histogram>,
    memory: Family<PointLabels, Gauge>,
    loads: Family<LoadLabels, Counter>,
}

fn call_histogram() -> Histogram {
    // 4 us to about 16 s.
    Histogram::new(exponential_buckets(0.000004, 2.0, 22))
}

impl Default for PluginMetrics {
    fn default() -> Self {
        PluginMetrics {
            calls: Family::default(),
            duration: Family::new_with_constructor(call_histogram as fn() -> Histogram),
            memory: Family::default(),
            loads: Family::default(),
        }
    }
}

impl PluginMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "plugin_calls",
            "Plugin calls by plugin, extension point and outcome (ok, allow, deny, mutate, monitor_deny, trap, timeout, memory, too_large, bad_result, missing, ...)",
            self.calls.clone(),
        );
        registry.register(
            "plugin_call_duration_seconds",
            "Plugin call latency, instantiation included, by plugin and extension point",
            self.duration.clone(),
        );
        registry.register(
            "plugin_memory_high_water_bytes",
            "Largest linear memory a call of the plugin asked for, by plugin and extension point",
            self.memory.clone(),
        );
        registry.register("plugin_loads", "Plugin files loaded or rejected, by plugin and result", self.loads.clone());
    }

    pub fn call(&self, plugin: &str, point: &'static str, outcome: &'static str, seconds: f64, memory_peak: usize) {
        self.calls.get_or_create(&CallLabels { plugin: plugin.to_string(), point, outcome }).inc();
        let labels = PointLabels { plugin: plugin.to_string(), point };
        self.duration.get_or_create(&labels).observe(seconds);
        let gauge = self.memory.get_or_create(&labels);
        let peak = i64::try_from(memory_peak).unwrap_or(i64::MAX);
        if peak > gauge.get() {
            gauge.set(peak);
        }
    }

    pub fn load(&self, plugin: &str, result: &'static str) {
        self.loads.get_or_create(&LoadLabels { plugin: plugin.to_string(), result }).inc();
    }
}
