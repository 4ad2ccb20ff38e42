//! Write a Maestro plugin as a trait implementation.
//!
//! A Maestro plugin is a WebAssembly component that exports one world of
//! `maestro:plugin@0.1.0` (see `wit/maestro-plugin.wit`). This crate hides the generated
//! bindings: implement one of [`Validator`], [`StatusFeedback`], [`Codec`] or
//! [`ReconcileHook`] with plain Rust types, settings deserialized into your own struct, and
//! export it with the matching macro:
//!
//! ```ignore
//! use maestro_plugin::prelude::*;
//!
//! struct DenyLatest;
//!
//! impl Validator for DenyLatest {
//!     type Settings = ();
//!     fn validate(_ctx: &Context, _op: Operation, manifest: &Manifest, _settings: &()) -> Verdict {
//!         let mut violations = Violations::new();
//!         for c in manifest.containers() {
//!             if c.image().is_some_and(|image| image.ends_with(":latest")) {
//!                 violations.add(c.field("image"), "the :latest tag is not allowed");
//!             }
//!         }
//!         violations.into_verdict()
//!     }
//! }
//!
//! maestro_plugin::export_validator!(DenyLatest);
//! ```
//!
//! The trait methods are ordinary functions, so unit tests call them natively (`cargo test`
//! on the host) or through [`testing`], which takes the same JSON text the host sends.
//! Build the component with `cargo build --release --target wasm32-wasip2`.

pub mod codec;
pub mod feedback;
pub mod hooks;
pub mod log;
pub mod manifest;
pub mod testing;
pub mod validator;

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;

pub use codec::Codec;
pub use feedback::{Condition, FeedbackValue, Health, HealthState, Report, StatusFeedback};
pub use hooks::{Applied, BeforeApply, BeforeDelete, Bundle, ReconcileHook};
pub use manifest::{Container, Manifest, PodSpec};
pub use validator::{Validator, Verdict, Violation, Violations};
pub use {serde, serde_json};

/// Typed Kubernetes objects, for plugins that prefer them to JSON (`features = ["k8s"]`);
/// convert with [`Manifest::typed`].
#[cfg(feature = "k8s")]
pub use k8s_openapi as k8s;

/// Everything a plugin usually needs, in one `use`.
pub mod prelude {
    pub use crate::{
        Applied, BeforeApply, BeforeDelete, Bundle, Codec, Condition, Container, Context, FeedbackValue, Health,
        HealthState, Manifest, Operation, PodSpec, ReconcileHook, Report, StatusFeedback, Validator, Verdict,
        Violation, Violations,
    };
    pub use serde::Deserialize;
    pub use serde_json::{Value, json};
}

/// The generated bindings, one module per world. Plugins rarely need them: the traits and
/// the `export_*!` macros are the supported way in.
pub mod bindings {
    /// The `validator` world; its `types` and `host` modules are shared by the other worlds.
    pub mod validator {
        wit_bindgen::generate!({
            path: "wit",
            world: "maestro:plugin/validator@0.1.0",
            pub_export_macro: true,
            export_macro_name: "export",
            default_bindings_module: "maestro_plugin::bindings::validator",
        });
    }

    /// The `status-feedback` world.
    pub mod status_feedback {
        wit_bindgen::generate!({
            path: "wit",
            world: "maestro:plugin/status-feedback@0.1.0",
            with: {
                "maestro:plugin/types@0.1.0": crate::bindings::validator::maestro::plugin::types,
                "maestro:plugin/host@0.1.0": crate::bindings::validator::maestro::plugin::host,
            },
            pub_export_macro: true,
            export_macro_name: "export",
            default_bindings_module: "maestro_plugin::bindings::status_feedback",
        });
    }

    /// The `codec` world.
    pub mod codec {
        wit_bindgen::generate!({
            path: "wit",
            world: "maestro:plugin/codec@0.1.0",
            with: {
                "maestro:plugin/types@0.1.0": crate::bindings::validator::maestro::plugin::types,
                "maestro:plugin/host@0.1.0": crate::bindings::validator::maestro::plugin::host,
            },
            pub_export_macro: true,
            export_macro_name: "export",
            default_bindings_module: "maestro_plugin::bindings::codec",
        });
    }

    /// The `reconcile-hook` world.
    pub mod reconcile_hook {
        wit_bindgen::generate!({
            path: "wit",
            world: "maestro:plugin/reconcile-hook@0.1.0",
            with: {
                "maestro:plugin/types@0.1.0": crate::bindings::validator::maestro::plugin::types,
                "maestro:plugin/host@0.1.0": crate::bindings::validator::maestro::plugin::host,
            },
            pub_export_macro: true,
            export_macro_name: "export",
            default_bindings_module: "maestro_plugin::bindings::reconcile_hook",
        });
    }

    pub use validator::maestro::plugin::types;
}

/// Who a call is for. Plugins have no clock or environment of their own: everything they
/// may decide on arrives here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// The consumer (cluster) name.
    pub consumer: String,
    /// The consumer's labels.
    pub consumer_labels: BTreeMap<String, String>,
    /// The resource or bundle id; empty before the hub assigned one.
    pub resource_id: String,
    /// The resource version the call is about (0 before the first store).
    pub resource_version: i64,
    /// Wall clock at the host, Unix milliseconds.
    pub now_unix_ms: i64,
}

impl Context {
    /// A context for `consumer` with no labels, at Unix time 0: a starting point for tests.
    pub fn for_consumer(consumer: impl Into<String>) -> Self {
        Context { consumer: consumer.into(), ..Context::default() }
    }

    /// Adds a consumer label (builder style, for tests).
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.consumer_labels.insert(key.into(), value.into());
        self
    }

    /// Sets the host clock (builder style, for tests).
    pub fn at_unix_ms(mut self, now_unix_ms: i64) -> Self {
        self.now_unix_ms = now_unix_ms;
        self
    }

    /// The value of one consumer label.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.consumer_labels.get(key).map(String::as_str)
    }
}

impl From<bindings::types::Context> for Context {
    fn from(ctx: bindings::types::Context) -> Self {
        Context {
            consumer: ctx.consumer,
            consumer_labels: ctx.consumer_labels.into_iter().collect(),
            resource_id: ctx.resource_id,
            resource_version: ctx.resource_version,
            now_unix_ms: ctx.now_unix_ms,
        }
    }
}

/// What the hub is about to do with a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

impl From<bindings::types::Operation> for Operation {
    fn from(op: bindings::types::Operation) -> Self {
        match op {
            bindings::types::Operation::Create => Operation::Create,
            bindings::types::Operation::Update => Operation::Update,
            bindings::types::Operation::Delete => Operation::Delete,
        }
    }
}

/// Parses a policy's settings (JSON text) into the plugin's own type.
///
/// No settings (empty text, `null` or `{}`) are accepted both by `()` and by a struct whose
/// fields all have defaults. The error names the field serde refused.
pub fn parse_settings<S: DeserializeOwned>(text: &str) -> Result<S, String> {
    let text = text.trim();
    let value: serde_json::Value = if text.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(text).map_err(|err| format!("settings are not JSON: {err}"))?
    };
    // Policies without settings send `{}` (the hub's default) or nothing: both mean "none",
    // whether the plugin's type is `()` or a struct of defaults.
    let none = value.is_null() || value.as_object().is_some_and(|map| map.is_empty());
    match serde_json::from_value::<S>(value.clone()) {
        Ok(settings) => Ok(settings),
        Err(err) if none => {
            let other = if value.is_null() { serde_json::json!({}) } else { serde_json::Value::Null };
            serde_json::from_value::<S>(other).map_err(|_| format!("invalid settings: {err}"))
        }
        Err(err) => Err(format!("invalid settings: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Allowed {
        #[serde(default)]
        registries: Vec<String>,
    }

    #[test]
    fn missing_settings_parse_as_unit_and_as_struct_with_defaults() {
        parse_settings::<()>("").unwrap();
        parse_settings::<()>("null").unwrap();
        parse_settings::<()>("{}").unwrap();
        assert!(parse_settings::<()>(r#"{"x": 1}"#).is_err());
        assert_eq!(parse_settings::<Allowed>("").unwrap(), Allowed { registries: vec![] });
    }

    #[test]
    fn a_wrong_settings_field_type_is_reported() {
        let err = parse_settings::<Allowed>(r#"{"registries": "ghcr.io"}"#).unwrap_err();
        assert!(err.contains("invalid settings") && err.contains("sequence"), "{err}");
        let err = parse_settings::<Allowed>("{oops").unwrap_err();
        assert!(err.contains("not JSON"), "{err}");
    }
}
