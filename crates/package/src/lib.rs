//! KUDO operator packages: `operator.yaml`, `params.yaml` and `templates/`, read from a
//! directory or a `.tgz` exactly as KUDO reads them, verified with KUDO's checks, rendered
//! with Go's template semantics (`maestro-gotmpl`), archived reproducibly, and indexed as a
//! KUDO repository.
//!
//! Modules: [`types`] (the two files), [`read`] (directories and archives, bounded),
//! [`verify`] (`package verify`: errors and warnings), [`crd`] (KUDO's Operator, OperatorVersion
//! and Instance, and their CRDs), [`render`] (templates with an instance's
//! parameters and metadata), [`archive`] (`package create`), [`index`] (a repository's
//! `index.yaml`).

pub mod archive;
pub mod crd;
pub mod index;
pub mod read;
pub mod render;
pub mod types;
pub mod verify;

pub use read::{Limits, Package, read_path, read_tgz};

use std::path::Path;

/// Why a package could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{0} is missing: a package has operator.yaml and params.yaml at its root")]
    Missing(String),
    #[error("{file}: {message}")]
    Yaml { file: String, message: String },
    #[error("archive: {0}")]
    Archive(String),
    #[error("unsafe archive entry: {0}")]
    Unsafe(String),
    #[error("over a limit: {0}")]
    Limit(String),
}

impl PackageError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> PackageError {
        PackageError::Io { path: path.display().to_string(), source }
    }
}
