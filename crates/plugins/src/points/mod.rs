//! The extension points, one module each: what the runtime does with the answers of the
//! plugins a consumer's policies name, step by step, under each step's failure mode.

mod codec;
mod feedback;
mod hooks;
mod validate;
