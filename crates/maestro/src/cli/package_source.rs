//! Where `maestro package verify|list|render` find a package, in KUDO's resolution order: a
//! local folder or `.tgz`; an `http(s)://` URL of a `.tgz`; or a name looked up in a
//! repository's `index.yaml` (`--repo URL`: newest version unless `--operator-version` /
//! `--app-version` say otherwise), whose digest the download must match. A repository may also
//! be a local folder holding `index.yaml` and the archives, or a folder of package sources
//! laid out as KUDO's kudobuilder/operators repository (`<name>/operator/`, or deeper for
//! several versions): any folder there with an `operator.yaml` is a package.
//!
//! Downloads are bounded in time and size, as any outside input.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use maestro_package::index::{Entry, IndexFile, digest};
use maestro_package::{Limits, Package, read_path, read_tgz};

/// How to find a package that is not a local path.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct SourceArgs {
    /// A repository (a folder URL holding index.yaml, e.g. a hub's
    /// .../api/maestro/v1/operator-repository, or a local folder: with index.yaml and archives,
    /// or of package sources as in kudobuilder/operators) to look the package name up in.
    #[arg(long, value_name = "URL", env = "MAESTRO_OPERATOR_REPO")]
    pub repo: Option<String>,
    /// With --repo: this operator version rather than the newest.
    #[arg(long)]
    pub operator_version: Option<String>,
    /// With --repo: this app version rather than the newest.
    #[arg(long)]
    pub app_version: Option<String>,
}

const TIMEOUT: Duration = Duration::from_secs(60);

pub async fn resolve(package: &str, source: &SourceArgs) -> anyhow::Result<Package> {
    let limits = Limits::default();
    if Path::new(package).exists() {
        return read_path(Path::new(package), &limits).with_context(|| format!("reading the package {package}"));
    }
    if package.starts_with("http://") || package.starts_with("https://") {
        let bytes = download(package, limits.max_archive_bytes).await?;
        return read_tgz(&bytes, &limits).with_context(|| format!("reading the package at {package}"));
    }
    let Some(repo) = &source.repo else {
        bail!("{package}: no such file or folder (give --repo URL to look the name up in a repository)");
    };
    let folder = Path::new(repo);
    if folder.is_dir() && !folder.join("index.yaml").exists() {
        return from_sources(folder, package, source);
    }
    let entry = lookup(repo, package, source).await?;
    let url = entry.urls.first().with_context(|| format!("{package}: the index lists no URL"))?;
    let url = absolute(repo, url);
    let bytes = fetch(&url, limits.max_archive_bytes).await?;
    if digest(&bytes) != entry.digest {
        bail!("{url}: the download's SHA-256 is {}, the index says {}", digest(&bytes), entry.digest);
    }
    read_tgz(&bytes, &limits).with_context(|| format!("reading the package at {url}"))
}

/// The index's entry for `name` and the versions asked for (newest first otherwise).
async fn lookup(repo: &str, name: &str, source: &SourceArgs) -> anyhow::Result<Entry> {
    let index_url = format!("{}/index.yaml", repo.trim_end_matches('/'));
    let text = String::from_utf8(fetch(&index_url, 16 << 20).await?).context("index.yaml is not UTF-8")?;
    let index: IndexFile =
        serde_yaml::from_str(&text).with_context(|| format!("{index_url}: not a repository index"))?;
    let versions = index.entries.get(name).with_context(|| format!("{name}: not in {index_url}"))?;
    let wanted = |e: &&Entry| {
        source.operator_version.as_ref().is_none_or(|v| &e.operator_version == v)
            && source.app_version.as_ref().is_none_or(|v| &e.app_version == v)
    };
    versions.iter().find(wanted).cloned().with_context(|| format!("{name}: no such version in {index_url}"))
}

/// How deep package sources may sit in a folder repository (`repository/cassandra/3.11/operator`).
const SOURCE_DEPTH: usize = 5;

/// The package `name` (newest unless versions are asked for) among the package sources under
/// `repo`.
fn from_sources(repo: &Path, name: &str, source: &SourceArgs) -> anyhow::Result<Package> {
    let mut found: Vec<(semver::Version, std::path::PathBuf)> = Vec::new();
    let mut pending = vec![(repo.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = pending.pop() {
        if let Some(file) = operator_file(&dir) {
            let wanted = file.name == name
                && source.operator_version.as_ref().is_none_or(|v| &file.operator_version == v)
                && source.app_version.as_ref().is_none_or(|v| &file.app_version == v);
            if wanted {
                let version = semver::Version::parse(file.operator_version.trim_start_matches('v'))
                    .unwrap_or(semver::Version::new(0, 0, 0));
                found.push((version, dir.clone()));
            }
            continue;
        }
        if depth >= SOURCE_DEPTH {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if path.is_dir() && !hidden {
                pending.push((path, depth + 1));
            }
        }
    }
    found.sort();
    let Some((_, dir)) = found.pop() else {
        bail!("{name}: no package of that name (and version) under {}", repo.display());
    };
    read_path(&dir, &Limits::default()).with_context(|| format!("reading the package {}", dir.display()))
}

/// The name and versions of the package in `dir`, if `dir` holds one.
fn operator_file(dir: &Path) -> Option<maestro_package::types::OperatorFile> {
    let text = std::fs::read_to_string(dir.join("operator.yaml")).ok()?;
    serde_yaml::from_str(&text).ok()
}

/// A URL from an index, which may be relative to the repository.
fn absolute(repo: &str, url: &str) -> String {
    if url.contains("://") {
        url.to_string()
    } else {
        format!("{}/{}", repo.trim_end_matches('/'), url.trim_start_matches('/'))
    }
}

/// A file of a repository: downloaded, or read when the repository is a local folder.
async fn fetch(location: &str, limit: u64) -> anyhow::Result<Vec<u8>> {
    if location.contains("://") {
        return download(location, limit).await;
    }
    let size = std::fs::metadata(location).with_context(|| format!("reading {location}"))?.len();
    if size > limit {
        bail!("{location}: more than {limit} bytes");
    }
    std::fs::read(location).with_context(|| format!("reading {location}"))
}

async fn download(url: &str, limit: u64) -> anyhow::Result<Vec<u8>> {
    maestro_net::install_crypto_provider();
    let client = reqwest::Client::builder().timeout(TIMEOUT).connect_timeout(TIMEOUT).build()?;
    let mut response = client.get(url).send().await.with_context(|| format!("fetching {url}"))?;
    if !response.status().is_success() {
        bail!("fetching {url}: {}", response.status());
    }
    if response.content_length().is_some_and(|n| n > limit) {
        bail!("{url}: more than {limit} bytes");
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.with_context(|| format!("fetching {url}"))? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() as u64 > limit {
            bail!("{url}: more than {limit} bytes");
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_urls_may_be_relative_to_the_repository() {
        assert_eq!(absolute("http://h/repo/", "zk-1.tgz"), "http://h/repo/zk-1.tgz");
        assert_eq!(absolute("http://h/repo", "https://cdn/zk-1.tgz"), "https://cdn/zk-1.tgz");
    }
}
