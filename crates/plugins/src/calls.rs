//! One call into a plugin, bounded in time (epoch deadline), memory (a per-call cap enforced
//! by the store's limiter) and size (arguments and results).
//!
//! Validators, hooks and `validate-settings` get a fresh Store and instance per call: nothing
//! survives a call, so nothing leaks between consumers. Status feedback and codecs, called at
//! high rate, reuse warm instances from a small [`Pool`]; an instance that trapped or timed out
//! is dropped, never returned to the pool, because a trapped instance refuses every later
//! call. Pooled instances are also recycled after [`RECYCLE_AFTER`] calls to bound what a
//! plugin can accumulate.
//!
//! Calls take and answer [`crate::types`]; the generated bindings stay inside this module and
//! `convert`. The bindings take WIT's `json` (a `string` alias) as `&String`, hence those
//! parameters.

#![allow(clippy::ptr_arg)]

use std::time::Duration;

use wasmtime::{Engine, Store, Trap};

use super::bindings::maestro::plugin::types::Context as WitContext;
use super::bindings::{self, codec, feedback, hooks};
use super::engine::ticks_for;
use super::host_api::HostState;
use super::policy::Limits;
pub use super::pool::RECYCLE_AFTER;
use super::pool::{Pool, Pooled};
use super::registry::{Loaded, Pre};
use super::types::{Applied, BeforeApplyOutcome, BeforeDeleteOutcome, Context, HookBundle, Operation, Report, Verdict};

/// Why a call gave no usable answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("exceeded its memory limit of {} MiB", .0 >> 20)]
    Memory(usize),
    #[error("trapped: {0}")]
    Trap(String),
    #[error("{what} is {size} bytes, more than the {cap} allowed")]
    TooLarge { what: &'static str, size: usize, cap: usize },
    #[error("returned {0}")]
    BadResult(String),
    #[error("is not loaded")]
    Missing,
    #[error("is a {found} plugin, the policy uses it as {wanted}")]
    WrongWorld { found: &'static str, wanted: &'static str },
    #[error("has sha256 {found}, the policy pins {pinned}")]
    Pinned { found: String, pinned: String },
    #[error("reported an error: {0}")]
    Plugin(String),
}

impl CallError {
    /// The metric label of this failure.
    pub fn outcome(&self) -> &'static str {
        match self {
            CallError::Timeout(_) => "timeout",
            CallError::Memory(_) => "memory",
            CallError::Trap(_) => "trap",
            CallError::TooLarge { .. } => "too_large",
            CallError::BadResult(_) => "bad_result",
            CallError::Missing => "missing",
            CallError::WrongWorld { .. } => "wrong_world",
            CallError::Pinned { .. } => "pinned",
            CallError::Plugin(_) => "error",
        }
    }
}

/// Bounds of one call.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub limits: Limits,
    pub max_result_bytes: usize,
}

/// The answer of a call and the most linear memory it asked for.
pub struct Called<R> {
    pub result: Result<R, CallError>,
    pub memory_peak: usize,
}

pub fn check_len(what: &'static str, size: usize, cap: usize) -> Result<(), CallError> {
    if size > cap { Err(CallError::TooLarge { what, size, cap }) } else { Ok(()) }
}

fn new_store(engine: &Engine, loaded: &Loaded, consumer: &str, limits: Limits) -> Store<HostState> {
    let state =
        HostState::new(loaded.name.clone(), consumer.to_string(), limits.memory_bytes, loaded.log_budget.clone());
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limiter);
    store.set_epoch_deadline(ticks_for(limits.timeout));
    store
}

fn classify(err: wasmtime::Error, state: &HostState, limits: Limits) -> CallError {
    if err.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        return CallError::Timeout(limits.timeout);
    }
    if state.limiter.refused {
        return CallError::Memory(limits.memory_bytes);
    }
    let mut text = format!("{err:#}");
    text.truncate(text.char_indices().nth(1024).map_or(text.len(), |(i, _)| i));
    CallError::Trap(text)
}

/// Runs `call` on a new instance in a new Store, dropped afterwards.
fn fresh<R>(
    engine: &Engine,
    loaded: &Loaded,
    consumer: &str,
    limits: Limits,
    call: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<R>,
) -> Called<R> {
    let mut store = new_store(engine, loaded, consumer, limits);
    let result = call(&mut store).map_err(|err| classify(err, store.data(), limits));
    Called { result, memory_peak: store.data().limiter.peak }
}

/// Runs `call` on a warm instance of `pool` (made with `instantiate` when none is idle) and
/// returns it to the pool only if the call succeeded.
fn pooled<T, R>(
    engine: &Engine,
    pool: &Pool<T>,
    loaded: &Loaded,
    consumer: &str,
    limits: Limits,
    instantiate: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<T>,
    call: impl FnOnce(&T, &mut Store<HostState>) -> wasmtime::Result<R>,
) -> Called<R> {
    let mut pooled = match pool.take() {
        Some(mut pooled) => {
            let state = pooled.store.data_mut();
            state.consumer.clear();
            state.consumer.push_str(consumer);
            state.limiter.cap = limits.memory_bytes;
            state.limiter.refused = false;
            state.limiter.peak = 0;
            pooled.store.set_epoch_deadline(ticks_for(limits.timeout));
            pooled
        }
        None => {
            let mut store = new_store(engine, loaded, consumer, limits);
            match instantiate(&mut store) {
                Ok(instance) => Pooled { store, instance, uses: 0 },
                Err(err) => {
                    let result = Err(classify(err, store.data(), limits));
                    return Called { result, memory_peak: store.data().limiter.peak };
                }
            }
        }
    };
    let outcome = call(&pooled.instance, &mut pooled.store);
    let memory_peak = pooled.store.data().limiter.peak;
    match outcome {
        Ok(value) => {
            pooled.uses += 1;
            pool.give_back(pooled);
            Called { result: Ok(value), memory_peak }
        }
        Err(err) => Called { result: Err(classify(err, pooled.store.data(), limits)), memory_peak },
    }
}

fn wrong_world<R>(loaded: &Loaded, wanted: &'static str) -> Called<R> {
    Called { result: Err(CallError::WrongWorld { found: loaded.world.point(), wanted }), memory_peak: 0 }
}

/// `validate-settings` of any world, on a fresh instance.
pub fn validate_settings(
    engine: &Engine,
    loaded: &Loaded,
    settings: &String,
    limits: Limits,
) -> Called<Result<(), String>> {
    fresh(engine, loaded, "", limits, |store| match &loaded.pre {
        Pre::Validator(pre) => {
            pre.instantiate(&mut *store)?.maestro_plugin_validate().call_validate_settings(store, settings)
        }
        Pre::StatusFeedback(pre) => {
            pre.instantiate(&mut *store)?.maestro_plugin_feedback().call_validate_settings(store, settings)
        }
        Pre::Codec(pre) => {
            pre.instantiate(&mut *store)?.maestro_plugin_transcode().call_validate_settings(store, settings)
        }
        Pre::ReconcileHook(pre) => {
            pre.instantiate(&mut *store)?.maestro_plugin_hooks().call_validate_settings(store, settings)
        }
    })
}

pub fn validate(
    engine: &Engine,
    loaded: &Loaded,
    ctx: &Context,
    op: Operation,
    manifest: &String,
    settings: &String,
    bounds: Bounds,
) -> Called<Verdict> {
    let Pre::Validator(pre) = &loaded.pre else { return wrong_world(loaded, "validate") };
    let wit_ctx = WitContext::from(ctx);
    let mut called = fresh(engine, loaded, &ctx.consumer, bounds.limits, |store| {
        let instance = pre.instantiate(&mut *store)?;
        let verdict =
            instance.maestro_plugin_validate().call_validate(store, &wit_ctx, op.into(), manifest, settings)?;
        Ok(Verdict::from(verdict))
    });
    if let Ok(verdict) = &called.result {
        let size = verdict_len(verdict);
        if let Err(err) = check_len("the result", size, bounds.max_result_bytes) {
            called.result = Err(err);
        }
    }
    called
}

fn verdict_len(verdict: &Verdict) -> usize {
    match verdict {
        Verdict::Allow => 0,
        Verdict::Mutate(json) => json.len(),
        Verdict::Deny(violations) => violations.iter().map(|v| v.path.len() + v.message.len()).sum(),
    }
}

pub fn status(
    engine: &Engine,
    loaded: &Loaded,
    ctx: &Context,
    live: &String,
    desired: &String,
    settings: &String,
    bounds: Bounds,
) -> Called<Report> {
    let Pre::StatusFeedback(pre) = &loaded.pre else { return wrong_world(loaded, "status-feedback") };
    let wit_ctx = WitContext::from(ctx);
    let called = pooled(
        engine,
        &loaded.feedback_pool,
        loaded,
        &ctx.consumer,
        bounds.limits,
        |store| pre.instantiate(store),
        |instance: &feedback::StatusFeedback, store| {
            instance.maestro_plugin_feedback().call_status(store, &wit_ctx, live, desired, settings)
        },
    );
    let result = called.result.and_then(|answer| {
        let report = Report::from(answer.map_err(CallError::Plugin)?);
        let size: usize = report.values.iter().map(|v| v.name.len() + v.value.len()).sum();
        check_len("the report", size, bounds.max_result_bytes)?;
        Ok(report)
    });
    Called { result, memory_peak: called.memory_peak }
}

/// `encode` (true) or `decode` (false) on a warm instance.
pub fn transcode(
    engine: &Engine,
    loaded: &Loaded,
    ctx: &Context,
    encode: bool,
    data: &[u8],
    settings: &String,
    bounds: Bounds,
) -> Called<Vec<u8>> {
    let Pre::Codec(pre) = &loaded.pre else { return wrong_world(loaded, "codec") };
    let wit_ctx = WitContext::from(ctx);
    let called = pooled(
        engine,
        &loaded.codec_pool,
        loaded,
        &ctx.consumer,
        bounds.limits,
        |store| pre.instantiate(store),
        |instance: &codec::Codec, store| {
            let transcode = instance.maestro_plugin_transcode();
            if encode {
                transcode.call_encode(store, &wit_ctx, data, settings)
            } else {
                transcode.call_decode(store, &wit_ctx, data, settings)
            }
        },
    );
    let result = called.result.and_then(|answer| {
        let bytes = answer.map_err(CallError::Plugin)?;
        check_len("the result", bytes.len(), bounds.max_result_bytes)?;
        Ok(bytes)
    });
    Called { result, memory_peak: called.memory_peak }
}

/// Which hook of the reconcile-hook world to call.
pub enum Hook<'a> {
    BeforeApply,
    AfterApply(&'a [Applied]),
    BeforeDelete,
}

/// The answer of a hook, by hook.
pub enum HookAnswer {
    BeforeApply(BeforeApplyOutcome),
    AfterApply(Result<(), String>),
    BeforeDelete(BeforeDeleteOutcome),
}

pub fn hook(
    engine: &Engine,
    loaded: &Loaded,
    ctx: &Context,
    which: Hook<'_>,
    bundle: &HookBundle,
    settings: &String,
    bounds: Bounds,
) -> Called<HookAnswer> {
    let Pre::ReconcileHook(pre) = &loaded.pre else { return wrong_world(loaded, "reconcile-hook") };
    let (wit_ctx, wit_bundle) = (WitContext::from(ctx), hooks::exports::maestro::plugin::hooks::Bundle::from(bundle));
    let mut called = fresh(engine, loaded, &ctx.consumer, bounds.limits, |store| {
        let instance: hooks::ReconcileHook = pre.instantiate(&mut *store)?;
        let hooks = instance.maestro_plugin_hooks();
        Ok(match which {
            Hook::BeforeApply => {
                HookAnswer::BeforeApply(hooks.call_before_apply(store, &wit_ctx, &wit_bundle, settings)?.into())
            }
            Hook::AfterApply(results) => {
                let results: Vec<_> = results.iter().map(Into::into).collect();
                HookAnswer::AfterApply(hooks.call_after_apply(store, &wit_ctx, &wit_bundle, &results, settings)?)
            }
            Hook::BeforeDelete => {
                HookAnswer::BeforeDelete(hooks.call_before_delete(store, &wit_ctx, &wit_bundle, settings)?.into())
            }
        })
    });
    if let Ok(HookAnswer::BeforeApply(BeforeApplyOutcome::Proceed(manifests))) = &called.result
        && let Err(err) = check_len("the manifests", manifests.iter().map(String::len).sum(), bounds.max_result_bytes)
    {
        called.result = Err(err);
    }
    called
}

/// A validator instance kept warm across calls. Validators run on a fresh instance per call in
/// production; this exists so `maestro bench plugins` can show what instantiation costs.
pub struct WarmValidator {
    store: Store<HostState>,
    instance: bindings::Validator,
    limits: Limits,
}

impl WarmValidator {
    pub fn new(engine: &Engine, loaded: &Loaded, limits: Limits) -> Result<Self, CallError> {
        let Pre::Validator(pre) = &loaded.pre else {
            return Err(CallError::WrongWorld { found: loaded.world.point(), wanted: "validate" });
        };
        let mut store = new_store(engine, loaded, "", limits);
        let instance = pre.instantiate(&mut store).map_err(|err| classify(err, store.data(), limits))?;
        Ok(WarmValidator { store, instance, limits })
    }

    pub fn validate(
        &mut self,
        ctx: &Context,
        op: Operation,
        manifest: &String,
        settings: &String,
    ) -> Result<Verdict, CallError> {
        self.store.set_epoch_deadline(ticks_for(self.limits.timeout));
        let validate = self.instance.maestro_plugin_validate();
        match validate.call_validate(&mut self.store, &WitContext::from(ctx), op.into(), manifest, settings) {
            Ok(verdict) => Ok(verdict.into()),
            Err(err) => Err(classify(err, self.store.data(), self.limits)),
        }
    }
}
