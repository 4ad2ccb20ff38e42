//! Test validator that misbehaves on purpose, as its settings say: `{"mode": M}` with M one of
//! `loop` (never returns), `alloc` (allocates without bound), `trap` (panics), `huge` (returns a
//! 100 MB mutation), `bad-json` (returns a mutation that is not JSON), `log-flood` (logs a
//! hundred thousand lines, then allows), `deny` (denies politely) or `allow`.
//! The mode is read at call time so one component exercises every failure of the host.

wit_bindgen::generate!({ path: "../../../wit", world: "validator" });

use exports::maestro::plugin::validate::{Guest, Verdict};
use maestro::plugin::host::log;
use maestro::plugin::types::{Context, LogLevel, Operation, Violation};

struct Hostile;

fn mode(settings: &str) -> String {
    serde_json::from_str::<serde_json::Value>(settings)
        .ok()
        .and_then(|v| v.get("mode").and_then(|m| m.as_str()).map(str::to_string))
        .unwrap_or_default()
}

impl Guest for Hostile {
    fn validate_settings(settings: String) -> Result<(), String> {
        match mode(&settings).as_str() {
            "loop" | "alloc" | "trap" | "huge" | "bad-json" | "log-flood" | "deny" | "allow" => Ok(()),
            other => Err(format!("unknown mode {other:?}")),
        }
    }

    fn validate(_ctx: Context, _op: Operation, _manifest: String, settings: String) -> Verdict {
        match mode(&settings).as_str() {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "trap" => panic!("hostile plugin traps on purpose"),
            "huge" => Verdict::Mutate("x".repeat(100 << 20)),
            "bad-json" => Verdict::Mutate("{this is not json".into()),
            "log-flood" => {
                for i in 0..100_000u32 {
                    log(LogLevel::Warn, &format!("flood line {i}"));
                }
                Verdict::Allow
            }
            "deny" => {
                Verdict::Deny(vec![Violation { path: "metadata.name".into(), message: "hostile says no".into() }])
            }
            _ => Verdict::Allow,
        }
    }
}

export!(Hostile);
