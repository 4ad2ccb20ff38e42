//! The `reconcile-hook` world: gate or adjust how the agent applies and deletes a bundle.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;

use crate::bindings::reconcile_hook::exports::maestro::plugin::hooks as wit;
use crate::bindings::types;
use crate::{Context, Manifest, parse_settings};

/// A reconcile hook. Export it with [`crate::export_reconcile_hook!`]. Only `before_apply` is
/// required: by default deletes proceed and `after_apply` does nothing.
pub trait ReconcileHook {
    type Settings: DeserializeOwned;

    fn validate_settings(_settings: &Self::Settings) -> Result<(), String> {
        Ok(())
    }

    fn before_apply(ctx: &Context, bundle: Bundle, settings: &Self::Settings) -> BeforeApply;

    fn after_apply(
        _ctx: &Context,
        _bundle: &Bundle,
        _results: &[Applied],
        _settings: &Self::Settings,
    ) -> Result<(), String> {
        Ok(())
    }

    fn before_delete(_ctx: &Context, _bundle: &Bundle, _settings: &Self::Settings) -> BeforeDelete {
        BeforeDelete::Proceed
    }
}

/// A bundle about to be applied or deleted.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    /// Manifests in bundle order.
    pub manifests: Vec<Manifest>,
    /// When this version of the bundle was written at the hub, Unix milliseconds.
    pub updated_unix_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BeforeApply {
    /// Apply these manifests (the ones given, or changed ones).
    Proceed(Vec<Manifest>),
    /// Do not apply this version; the reason is reported in status.
    Skip(String),
    /// Ask again after this many milliseconds.
    Requeue(u32),
    /// Report the bundle as failed with this reason.
    Fail(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeforeDelete {
    Proceed,
    Requeue(u32),
    Fail(String),
}

/// How applying one manifest of the bundle went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub index: u32,
    pub ok: bool,
    pub message: String,
}

fn bundle_of(bundle: wit::Bundle) -> Result<Bundle, String> {
    let manifests = bundle.manifests.iter().map(|m| Manifest::parse(m)).collect::<Result<_, _>>()?;
    Ok(Bundle { manifests, updated_unix_ms: bundle.updated_unix_ms })
}

/// `before-apply` as the component runs it; a bundle or settings that do not parse fail it.
pub fn run_before_apply<P: ReconcileHook>(ctx: Context, bundle: wit::Bundle, settings: &str) -> BeforeApply {
    let settings = match parse_settings::<P::Settings>(settings) {
        Ok(settings) => settings,
        Err(err) => return BeforeApply::Fail(err),
    };
    match bundle_of(bundle) {
        Ok(bundle) => P::before_apply(&ctx, bundle, &settings),
        Err(err) => BeforeApply::Fail(err),
    }
}

pub fn run_after_apply<P: ReconcileHook>(
    ctx: Context,
    bundle: wit::Bundle,
    results: Vec<Applied>,
    settings: &str,
) -> Result<(), String> {
    let settings = parse_settings::<P::Settings>(settings)?;
    P::after_apply(&ctx, &bundle_of(bundle)?, &results, &settings)
}

pub fn run_before_delete<P: ReconcileHook>(ctx: Context, bundle: wit::Bundle, settings: &str) -> BeforeDelete {
    let settings = match parse_settings::<P::Settings>(settings) {
        Ok(settings) => settings,
        Err(err) => return BeforeDelete::Fail(err),
    };
    match bundle_of(bundle) {
        Ok(bundle) => P::before_delete(&ctx, &bundle, &settings),
        Err(err) => BeforeDelete::Fail(err),
    }
}

pub fn run_validate_settings<P: ReconcileHook>(settings: &str) -> Result<(), String> {
    P::validate_settings(&parse_settings::<P::Settings>(settings)?)
}

/// The bundle in the shape the host sends it.
pub fn wire_bundle(bundle: &Bundle) -> wit::Bundle {
    wit::Bundle {
        manifests: bundle.manifests.iter().map(|m| m.0.to_string()).collect(),
        updated_unix_ms: bundle.updated_unix_ms,
    }
}

#[doc(hidden)]
pub struct Export<P>(PhantomData<P>);

impl<P: ReconcileHook> wit::Guest for Export<P> {
    fn validate_settings(settings: String) -> Result<(), String> {
        run_validate_settings::<P>(&settings)
    }

    fn before_apply(ctx: types::Context, bundle: wit::Bundle, settings: String) -> wit::BeforeApplyOutcome {
        match run_before_apply::<P>(ctx.into(), bundle, &settings) {
            BeforeApply::Proceed(manifests) => {
                wit::BeforeApplyOutcome::Proceed(manifests.into_iter().map(|m| m.0.to_string()).collect())
            }
            BeforeApply::Skip(reason) => wit::BeforeApplyOutcome::Skip(reason),
            BeforeApply::Requeue(ms) => wit::BeforeApplyOutcome::Requeue(ms),
            BeforeApply::Fail(reason) => wit::BeforeApplyOutcome::Fail(reason),
        }
    }

    fn after_apply(
        ctx: types::Context,
        bundle: wit::Bundle,
        results: Vec<wit::Applied>,
        settings: String,
    ) -> Result<(), String> {
        let results = results.into_iter().map(|a| Applied { index: a.index, ok: a.ok, message: a.message }).collect();
        run_after_apply::<P>(ctx.into(), bundle, results, &settings)
    }

    fn before_delete(ctx: types::Context, bundle: wit::Bundle, settings: String) -> wit::BeforeDeleteOutcome {
        match run_before_delete::<P>(ctx.into(), bundle, &settings) {
            BeforeDelete::Proceed => wit::BeforeDeleteOutcome::Proceed,
            BeforeDelete::Requeue(ms) => wit::BeforeDeleteOutcome::Requeue(ms),
            BeforeDelete::Fail(reason) => wit::BeforeDeleteOutcome::Fail(reason),
        }
    }
}

/// Exports a [`ReconcileHook`] as the component's `reconcile-hook` world:
/// `maestro_plugin::export_reconcile_hook!(MyHook);`
#[macro_export]
macro_rules! export_reconcile_hook {
    ($plugin:ty) => {
        #[doc(hidden)]
        type __MaestroHookExport = $crate::hooks::Export<$plugin>;
        $crate::bindings::reconcile_hook::export!(__MaestroHookExport with_types_in $crate::bindings::reconcile_hook);
    };
}
