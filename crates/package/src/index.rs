//! A KUDO repository's `index.yaml` (`pkg/kudoctl/util/repo/index.go`): per operator name its
//! versions, newest first (by app version, then operator version, as semantic versions), each
//! with its archive's URL and SHA-256 digest. `kubectl kudo repo add` reads it.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Package;
use crate::types::Maintainer;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexFile {
    pub api_version: String,
    #[serde(default)]
    pub entries: BTreeMap<String, Vec<Entry>>,
    #[serde(default)]
    pub generated: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub name: String,
    pub operator_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub app_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maintainers: Vec<Maintainer>,
    #[serde(default)]
    pub urls: Vec<String>,
    pub digest: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
}

/// Hex SHA-256 of an archive: the `digest` of its entry.
pub fn digest(archive: &[u8]) -> String {
    hex::encode(Sha256::digest(archive))
}

impl Entry {
    /// The entry of `package`, whose archive is `archive`, served under `base_url`.
    pub fn of(package: &Package, archive: &[u8], base_url: &str) -> Entry {
        let operator = &package.operator;
        Entry {
            name: operator.name.clone(),
            operator_version: operator.operator_version.clone(),
            app_version: operator.app_version.clone(),
            description: operator.description.clone(),
            maintainers: operator.maintainers.clone(),
            urls: vec![format!("{}/{}", base_url.trim_end_matches('/'), operator.archive_name())],
            digest: digest(archive),
            removed: false,
        }
    }
}

impl IndexFile {
    pub fn new(generated: String) -> IndexFile {
        IndexFile { api_version: "v1".into(), entries: BTreeMap::new(), generated }
    }

    /// Adds an entry; one already there for the same versions is replaced when `overwrite`,
    /// else kept (the first one wins, as with `--merge`).
    pub fn add(&mut self, entry: Entry, overwrite: bool) {
        let versions = self.entries.entry(entry.name.clone()).or_default();
        let same = |e: &Entry| e.operator_version == entry.operator_version && e.app_version == entry.app_version;
        match versions.iter().position(same) {
            Some(at) if overwrite => versions[at] = entry,
            Some(_) => {}
            None => versions.push(entry),
        }
        versions.sort_by(newest_first);
    }

    /// Every entry of `other` this index does not have.
    pub fn merge(&mut self, other: IndexFile) {
        for entry in other.entries.into_values().flatten() {
            self.add(entry, false);
        }
    }

    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).unwrap_or_default()
    }
}

fn newest_first(a: &Entry, b: &Entry) -> Ordering {
    compare_versions(&b.app_version, &a.app_version)
        .then_with(|| compare_versions(&b.operator_version, &a.operator_version))
}

/// Semantic versions compare as such (a leading `v` allowed); anything else as text, after them.
fn compare_versions(a: &str, b: &str) -> Ordering {
    let parse = |v: &str| semver::Version::parse(v.trim_start_matches('v')).ok();
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(app: &str, op: &str) -> Entry {
        Entry { name: "zk".into(), app_version: app.into(), operator_version: op.into(), ..Default::default() }
    }

    #[test]
    fn versions_are_listed_newest_first() {
        let mut index = IndexFile::new("now".into());
        for (app, op) in [("3.4.10", "0.1.0"), ("3.10.0", "0.1.0"), ("3.4.10", "0.10.0"), ("3.4.10", "0.2.0")] {
            index.add(entry(app, op), false);
        }
        let order: Vec<(&str, &str)> =
            index.entries["zk"].iter().map(|e| (e.app_version.as_str(), e.operator_version.as_str())).collect();
        assert_eq!(order, [("3.10.0", "0.1.0"), ("3.4.10", "0.10.0"), ("3.4.10", "0.2.0"), ("3.4.10", "0.1.0")]);
    }

    #[test]
    fn a_merge_keeps_what_the_index_has() {
        let mut index = IndexFile::new("now".into());
        index.add(Entry { digest: "new".into(), ..entry("1.0.0", "0.1.0") }, false);
        let mut old = IndexFile::new("then".into());
        old.add(Entry { digest: "old".into(), ..entry("1.0.0", "0.1.0") }, false);
        old.add(entry("0.9.0", "0.1.0"), false);
        index.merge(old);
        assert_eq!(index.entries["zk"].len(), 2);
        assert_eq!(index.entries["zk"][0].digest, "new");
    }
}
