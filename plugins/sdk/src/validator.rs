//! The `validator` world: accept, refuse or rewrite a manifest before the hub stores it.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::bindings::types;
use crate::bindings::validator::exports::maestro::plugin::validate as wit;
use crate::{Context, Manifest, Operation, parse_settings};

/// A validating (and optionally mutating) plugin. Export it with [`crate::export_validator!`].
pub trait Validator {
    /// The policy's settings, deserialized from its JSON.
    type Settings: DeserializeOwned;

    /// Called when a policy naming this plugin is stored: an error refuses the policy.
    /// Parsing already succeeded; check what serde cannot (ranges, patterns).
    fn validate_settings(_settings: &Self::Settings) -> Result<(), String> {
        Ok(())
    }

    /// Decides on one manifest.
    fn validate(ctx: &Context, op: Operation, manifest: &Manifest, settings: &Self::Settings) -> Verdict;
}

/// One reason a manifest is refused; `path` names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub path: String,
    pub message: String,
}

/// A validator's decision.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Accept the manifest as sent.
    Allow,
    /// Refuse it, with every reason.
    Deny(Vec<Violation>),
    /// Accept this manifest in place of the one sent.
    Mutate(Value),
}

impl Verdict {
    /// A refusal with one reason.
    pub fn deny(path: impl Into<String>, message: impl Into<String>) -> Self {
        Verdict::Deny(vec![Violation { path: path.into(), message: message.into() }])
    }

    pub fn is_allow(&self) -> bool {
        matches!(self, Verdict::Allow)
    }

    /// The violations of a refusal (empty otherwise).
    pub fn violations(&self) -> &[Violation] {
        match self {
            Verdict::Deny(violations) => violations,
            _ => &[],
        }
    }
}

/// Collects every reason to refuse, so that one answer lists them all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(Vec<Violation>);

impl Violations {
    pub fn new() -> Self {
        Violations::default()
    }

    pub fn add(&mut self, path: impl Into<String>, message: impl Into<String>) -> &mut Self {
        self.0.push(Violation { path: path.into(), message: message.into() });
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `Allow` when nothing was added, else `Deny` with everything added.
    pub fn into_verdict(self) -> Verdict {
        if self.0.is_empty() { Verdict::Allow } else { Verdict::Deny(self.0) }
    }
}

/// The same steps the component runs, from the host's JSON text to a verdict. A manifest or
/// settings that do not parse are refused: a validator fails closed.
pub fn run<P: Validator>(ctx: Context, op: Operation, manifest: &str, settings: &str) -> Verdict {
    let settings = match parse_settings::<P::Settings>(settings) {
        Ok(settings) => settings,
        Err(message) => return Verdict::deny("settings", message),
    };
    match Manifest::parse(manifest) {
        Ok(manifest) => P::validate(&ctx, op, &manifest, &settings),
        Err(message) => Verdict::deny("", message),
    }
}

/// `validate-settings` as the component runs it.
pub fn run_validate_settings<P: Validator>(settings: &str) -> Result<(), String> {
    P::validate_settings(&parse_settings::<P::Settings>(settings)?)
}

/// Adapts a [`Validator`] to the generated bindings; used by [`crate::export_validator!`].
#[doc(hidden)]
pub struct Export<P>(PhantomData<P>);

impl<P: Validator> wit::Guest for Export<P> {
    fn validate_settings(settings: String) -> Result<(), String> {
        run_validate_settings::<P>(&settings)
    }

    fn validate(ctx: types::Context, op: types::Operation, manifest: String, settings: String) -> wit::Verdict {
        match run::<P>(ctx.into(), op.into(), &manifest, &settings) {
            Verdict::Allow => wit::Verdict::Allow,
            Verdict::Deny(violations) => wit::Verdict::Deny(
                violations.into_iter().map(|v| types::Violation { path: v.path, message: v.message }).collect(),
            ),
            Verdict::Mutate(value) => wit::Verdict::Mutate(value.to_string()),
        }
    }
}

/// Exports a [`Validator`] as the component's `validator` world:
/// `maestro_plugin::export_validator!(MyPlugin);`
#[macro_export]
macro_rules! export_validator {
    ($plugin:ty) => {
        #[doc(hidden)]
        type __MaestroValidatorExport = $crate::validator::Export<$plugin>;
        $crate::bindings::validator::export!(__MaestroValidatorExport with_types_in $crate::bindings::validator);
    };
}
