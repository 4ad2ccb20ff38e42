//! Reading a package from a directory or a `.tgz`, with KUDO's layout rules
//! (`pkg/kudoctl/packages/reader`): `operator.yaml` and `params.yaml` at the root, templates
//! anywhere under `templates/` whose name contains `.yaml` (KUDO's unanchored `.*\.yaml`), keyed
//! by their path under `templates/`; other files are kept for the archive and otherwise ignored.
//!
//! Archives are outside input: entries with `..`, absolute paths, links or devices are refused,
//! and the archive, each file and the unpacked total are bounded ([`Limits`]).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path};

use crate::PackageError;
use crate::types::{API_VERSION, OperatorFile, ParamsFile};

/// Bounds on what a package may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest archive, compressed.
    pub max_archive_bytes: u64,
    /// Largest single file.
    pub max_file_bytes: u64,
    /// Largest total of all files.
    pub max_total_bytes: u64,
    pub max_files: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_archive_bytes: 10 << 20, max_file_bytes: 4 << 20, max_total_bytes: 32 << 20, max_files: 2000 }
    }
}

/// A package as read: its two files parsed, its templates, and every file (for archives).
#[derive(Debug, Clone)]
pub struct Package {
    pub operator: OperatorFile,
    pub params: ParamsFile,
    /// Key: path under `templates/`.
    pub templates: BTreeMap<String, String>,
    /// Every regular file, by path relative to the package root.
    pub files: BTreeMap<String, Vec<u8>>,
}

/// Reads a directory, or a `.tgz` file.
pub fn read_path(path: &Path, limits: &Limits) -> Result<Package, PackageError> {
    let meta = std::fs::metadata(path).map_err(|e| PackageError::io(path, e))?;
    if meta.is_dir() {
        return read_dir(path, limits);
    }
    if meta.len() > limits.max_archive_bytes {
        return Err(PackageError::Limit(format!(
            "{}: {} bytes, over the archive limit of {}",
            path.display(),
            meta.len(),
            limits.max_archive_bytes
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| PackageError::io(path, e))?;
    read_tgz(&bytes, limits)
}

pub fn read_dir(root: &Path, limits: &Limits) -> Result<Package, PackageError> {
    let mut files = BTreeMap::new();
    let mut total = 0u64;
    walk(root, root, limits, &mut files, &mut total)?;
    Package::from_files(files)
}

fn walk(
    root: &Path,
    dir: &Path,
    limits: &Limits,
    files: &mut BTreeMap<String, Vec<u8>>,
    total: &mut u64,
) -> Result<(), PackageError> {
    let entries = std::fs::read_dir(dir).map_err(|e| PackageError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| PackageError::io(dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| PackageError::io(&path, e))?;
        let relative = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
        if kind.is_symlink() {
            return Err(PackageError::Unsafe(format!("{relative}: links are not allowed in a package")));
        }
        if kind.is_dir() {
            walk(root, &path, limits, files, total)?;
        } else if kind.is_file() {
            let size = entry.metadata().map_err(|e| PackageError::io(&path, e))?.len();
            admit(&relative, size, files.len(), total, limits)?;
            files.insert(relative, std::fs::read(&path).map_err(|e| PackageError::io(&path, e))?);
        }
    }
    Ok(())
}

/// Counts a file against the limits.
fn admit(name: &str, size: u64, count: usize, total: &mut u64, limits: &Limits) -> Result<(), PackageError> {
    if size > limits.max_file_bytes {
        return Err(PackageError::Limit(format!(
            "{name}: {size} bytes, over the file limit of {}",
            limits.max_file_bytes
        )));
    }
    if count >= limits.max_files {
        return Err(PackageError::Limit(format!("more than {} files", limits.max_files)));
    }
    *total += size;
    if *total > limits.max_total_bytes {
        return Err(PackageError::Limit(format!("more than {} bytes unpacked", limits.max_total_bytes)));
    }
    Ok(())
}

/// Reads a gzipped tar archive held in memory.
pub fn read_tgz(bytes: &[u8], limits: &Limits) -> Result<Package, PackageError> {
    if bytes.len() as u64 > limits.max_archive_bytes {
        return Err(PackageError::Limit(format!(
            "archive of {} bytes, over the limit of {}",
            bytes.len(),
            limits.max_archive_bytes
        )));
    }
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut files = BTreeMap::new();
    let mut total = 0u64;
    let entries = archive.entries().map_err(|e| PackageError::Archive(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| PackageError::Archive(e.to_string()))?;
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        match entry.header().entry_type() {
            tar::EntryType::Directory => continue,
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            // Extended headers carry long names; the tar crate applies them to the next entry.
            tar::EntryType::XHeader | tar::EntryType::XGlobalHeader | tar::EntryType::GNULongName => continue,
            other => {
                return Err(PackageError::Unsafe(format!(
                    "{name}: a {other:?} entry; a package holds regular files only"
                )));
            }
        }
        let path = safe_path(&name)?;
        admit(&path, entry.size(), files.len(), &mut total, limits)?;
        let mut content = Vec::new();
        // Read at most one byte past the limit, whatever the header claims.
        (&mut entry)
            .take(limits.max_file_bytes + 1)
            .read_to_end(&mut content)
            .map_err(|e| PackageError::Archive(format!("{name}: {e}")))?;
        if content.len() as u64 > limits.max_file_bytes {
            return Err(PackageError::Limit(format!("{name}: over the file limit of {}", limits.max_file_bytes)));
        }
        if files.insert(path.clone(), content).is_some() {
            return Err(PackageError::Archive(format!("{path}: the archive holds it twice")));
        }
    }
    Package::from_files(files)
}

/// An archive path made relative and checked: no `..`, no root, no drive.
fn safe_path(name: &str) -> Result<String, PackageError> {
    let mut parts = Vec::new();
    for component in Path::new(name).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(PackageError::Unsafe(format!("{name}: paths must stay inside the package")));
            }
        }
    }
    if parts.is_empty() {
        return Err(PackageError::Unsafe(format!("{name:?}: an entry without a name")));
    }
    Ok(parts.join("/"))
}

impl Package {
    /// A package from its files, by path relative to the root.
    pub fn from_files(files: BTreeMap<String, Vec<u8>>) -> Result<Package, PackageError> {
        let mut operator: OperatorFile = parse_yaml(&files, "operator.yaml")?;
        let mut params: ParamsFile = parse_yaml(&files, "params.yaml")?;
        check_api_version("operator.yaml", &mut operator.api_version)?;
        check_api_version("params.yaml", &mut params.api_version)?;
        let mut templates = BTreeMap::new();
        for (path, content) in &files {
            let Some(key) = path.strip_prefix("templates/") else { continue };
            if !key.contains(".yaml") {
                continue;
            }
            let text = String::from_utf8(content.clone())
                .map_err(|_| PackageError::Yaml { file: path.clone(), message: "not UTF-8 text".into() })?;
            templates.insert(key.to_string(), text);
        }
        Ok(Package { operator, params, templates, files })
    }

    /// The parameter by name.
    pub fn parameter(&self, name: &str) -> Option<&crate::types::Parameter> {
        self.params.parameters.iter().find(|p| p.name == name)
    }
}

fn parse_yaml<T: serde::de::DeserializeOwned>(
    files: &BTreeMap<String, Vec<u8>>,
    name: &str,
) -> Result<T, PackageError> {
    let content = files.get(name).ok_or_else(|| PackageError::Missing(name.to_string()))?;
    serde_yaml::from_slice(content).map_err(|e| PackageError::Yaml { file: name.to_string(), message: e.to_string() })
}

fn check_api_version(file: &str, version: &mut String) -> Result<(), PackageError> {
    if version.is_empty() {
        *version = API_VERSION.to_string();
    }
    if version != API_VERSION {
        return Err(PackageError::Yaml {
            file: file.to_string(),
            message: format!("apiVersion {version:?} is not supported: only {API_VERSION}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_paths_stay_inside_the_package() {
        assert_eq!(safe_path("./templates/a.yaml").unwrap(), "templates/a.yaml");
        for bad in ["../x", "/etc/passwd", "templates/../../x", "."] {
            assert!(matches!(safe_path(bad), Err(PackageError::Unsafe(_))), "{bad}");
        }
    }
}
