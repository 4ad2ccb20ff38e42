//! kuttl's declarative end-to-end tests (SPEC.md §6), run by `maestro test` against the
//! simulator or any cluster: a folder of numbered YAML steps, each applied to the cluster and
//! followed by partial-object asserts that must hold within a timeout.
//!
//! - [`model`]: kuttl's own objects (`TestSuite`, `TestStep`, `TestAssert`, commands), in
//!   `kuttl.dev/v1beta1` and the older `kudo.dev/v1alpha1`.
//! - [`files`]: cases and steps read from folders, by kuttl's file-name rules.
//! - [`subset`]: kuttl's matching rule, with every differing field listed.
//! - [`check`]: one evaluation of a step's asserts and errors against the cluster.
//! - [`command`]: suite, step and assert commands, with KUDO CLI calls optionally run as
//!   `maestro operator`.
//! - [`cluster`]: the cluster through `kube`: create-or-merge-patch, reads, watches as wake-ups.
//! - [`run`]: a suite, its cases in parallel, each step until its checks hold.
//! - [`report`]: text, JUnit XML and JSON reports.

pub mod check;
pub mod cluster;
pub mod command;
pub mod files;
pub mod model;
pub mod report;
pub mod run;
pub mod subset;
