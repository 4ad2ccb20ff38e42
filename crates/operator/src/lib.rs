//! The universal operator: one state machine that runs any KUDO package's plans.
//!
//! The decisions are pure functions over KUDO's objects, so they are specified by unit tests
//! and the controller around them only carries them out (kube-runtime's decide + act shape):
//!
//! - [`select`]: which plan an Instance change starts (SPEC.md §2.2, KUDO's admission webhook),
//!   or why the change is refused.
//! - [`enhance`]: the labels, annotations, namespace and owner KUDO puts on what a plan applies.
//! - [`child`]: the child Instance of a `KudoOperator` task, and dependency cycles.
//! - [`depends`]: the dependencies hash that rolls pods when a mounted ConfigMap changes.
//! - [`health`]: when an applied object counts as done (SPEC.md §2.7).
//! - [`pipe`]: a `Pipe` task's pod checked and completed, and the Secret or ConfigMap made of
//!   each file it copies.
//! - [`render`]: a step's templates rendered from the OperatorVersion and Instance, decoded.
//! - [`pass`]: one pass of a running plan over its phases and steps (SPEC.md §2.1, KUDO's
//!   `workflow.Execute`), given what each task reports.

pub mod child;
pub mod depends;
pub mod enhance;
pub mod health;
pub mod pass;
pub mod pipe;
pub mod render;
pub mod select;
