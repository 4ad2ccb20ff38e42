//! The `codec` world: transform a bundle's event data for the wire, and back.
//!
//! `decode(encode(x)) == x` is the contract; the host refuses to send data it cannot decode
//! again, so a codec that breaks it fails loudly rather than corrupting bundles.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;

use crate::bindings::codec::exports::maestro::plugin::transcode as wit;
use crate::bindings::types;
use crate::{Context, parse_settings};

/// An encoding of bundle data (compression, encryption, signing). Export it with
/// [`crate::export_codec!`].
pub trait Codec {
    type Settings: DeserializeOwned;

    fn validate_settings(_settings: &Self::Settings) -> Result<(), String> {
        Ok(())
    }

    fn encode(ctx: &Context, data: Vec<u8>, settings: &Self::Settings) -> Result<Vec<u8>, String>;

    fn decode(ctx: &Context, data: Vec<u8>, settings: &Self::Settings) -> Result<Vec<u8>, String>;
}

/// `validate-settings` as the component runs it.
pub fn run_validate_settings<P: Codec>(settings: &str) -> Result<(), String> {
    P::validate_settings(&parse_settings::<P::Settings>(settings)?)
}

/// `encode` as the component runs it.
pub fn run_encode<P: Codec>(ctx: Context, data: Vec<u8>, settings: &str) -> Result<Vec<u8>, String> {
    P::encode(&ctx, data, &parse_settings::<P::Settings>(settings)?)
}

/// `decode` as the component runs it.
pub fn run_decode<P: Codec>(ctx: Context, data: Vec<u8>, settings: &str) -> Result<Vec<u8>, String> {
    P::decode(&ctx, data, &parse_settings::<P::Settings>(settings)?)
}

#[doc(hidden)]
pub struct Export<P>(PhantomData<P>);

impl<P: Codec> wit::Guest for Export<P> {
    fn validate_settings(settings: String) -> Result<(), String> {
        run_validate_settings::<P>(&settings)
    }

    fn encode(ctx: types::Context, data: Vec<u8>, settings: String) -> Result<Vec<u8>, String> {
        run_encode::<P>(ctx.into(), data, &settings)
    }

    fn decode(ctx: types::Context, data: Vec<u8>, settings: String) -> Result<Vec<u8>, String> {
        run_decode::<P>(ctx.into(), data, &settings)
    }
}

/// Exports a [`Codec`] as the component's `codec` world: `maestro_plugin::export_codec!(MyCodec);`
#[macro_export]
macro_rules! export_codec {
    ($plugin:ty) => {
        #[doc(hidden)]
        type __MaestroCodecExport = $crate::codec::Export<$plugin>;
        $crate::bindings::codec::export!(__MaestroCodecExport with_types_in $crate::bindings::codec);
    };
}
