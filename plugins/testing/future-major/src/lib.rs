//! Test plugin built against `maestro:plugin@1.0.0`, a major version the host does not support.

wit_bindgen::generate!({ path: "wit", world: "validator" });

struct FutureMajor;

impl exports::maestro::plugin::validate::Guest for FutureMajor {
    fn validate(_manifest: String) -> bool {
        true
    }
}

export!(FutureMajor);
