//! The agent: runs on (or beside) a managed cluster, receives its consumer's bundles from the
//! hub and applies them through the Kubernetes API, then reports their status back.
//!
//! - [`spec`] reads a bundle (strategies, feedback rules, drift policy, delete option);
//! - [`apply`] writes manifests with `kube` (discovery, then the dynamic API: any kind works);
//! - [`watch`] watches what was applied; [`reconcile`] turns spec events, watch events and
//!   retries into writes and statuses; [`status`] and [`jsonpath`] build the status OCM's work
//!   agent would send; [`drift`] decides whether a live object still matches its manifest;
//! - [`local`] is the durable local store (SQLite): what was applied, statuses not yet sent.

pub mod apply;
pub mod drift;
pub mod jsonpath;
pub mod local;
pub mod reconcile;
pub mod spec;
pub mod status;
pub mod watch;
