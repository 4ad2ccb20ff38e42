//! Keeps the registry in step with the plugin directory, without a restart.
//!
//! A cheap scan (one `readdir` and a `stat` per file) runs every `scan_interval`; a file whose
//! modification time, size or sidecar changed is read, checked, compiled (or loaded from the
//! cache), linked, and its settings are checked against every policy that names it, all on a
//! blocking thread, off the request path. Only then is it swapped in; until then, and if it is
//! rejected, the previous version goes on serving. Write files elsewhere and rename them into
//! the directory so a scan never sees half a file; one that does rejects it and the next scan,
//! which sees the finished file, loads it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::policy::PolicyFile;
use super::registry::{LoadError, Loaded, Loader};
use super::{PluginRuntime, RuntimeRef};

/// What a file looked like when it was last loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    modified: Option<SystemTime>,
    size: u64,
    sidecar: Option<(Option<SystemTime>, u64)>,
}

#[derive(Debug, Default)]
pub struct ScanState {
    files: HashMap<String, Fingerprint>,
    policy_file: Option<Fingerprint>,
}

/// The file names the watcher reads policies from, first found wins.
const POLICY_FILES: [&str; 3] = ["policies.toml", "policies.yaml", "policies.yml"];

pub async fn run(runtime: RuntimeRef, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(runtime) = runtime.upgrade() else { return };
        runtime.rescan().await;
    }
}

fn fingerprint(path: &Path) -> Option<Fingerprint> {
    let meta = std::fs::metadata(path).ok()?;
    let sidecar = std::fs::metadata(path.with_extension("toml")).ok().map(|m| (m.modified().ok(), m.len()));
    Some(Fingerprint { modified: meta.modified().ok(), size: meta.len(), sidecar })
}

/// `<name>.wasm` files of the directory, by name.
fn list(dir: &Path) -> std::io::Result<HashMap<String, PathBuf>> {
    let mut found = HashMap::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let is_wasm = path.extension().is_some_and(|e| e == "wasm");
        let name = path.file_stem().and_then(|s| s.to_str()).map(str::to_string);
        if let (true, Some(name)) = (is_wasm, name)
            && !name.starts_with('.')
            && path.is_file()
        {
            found.insert(name, path);
        }
    }
    Ok(found)
}

impl PluginRuntime {
    pub(super) fn scan_blocking(&self) {
        let mut state = self.scan.lock().unwrap_or_else(|p| p.into_inner());
        let listing = match list(&self.config.dir) {
            Ok(listing) => listing,
            Err(err) => {
                tracing::error!(dir = %self.config.dir.display(), error = %err, "cannot read the plugin directory");
                return;
            }
        };
        // Policies first, so a new plugin file is checked against the policies in force.
        self.scan_policy_file(&mut state);
        let gone: Vec<String> = self.registry.names().into_iter().filter(|n| !listing.contains_key(n)).collect();
        for name in gone {
            state.files.remove(&name);
            self.registry.remove(&name);
            self.metrics.load(&name, "removed");
            tracing::info!(plugin = %name, "plugin removed: its file is gone");
        }
        for (name, path) in listing {
            let Some(print) = fingerprint(&path) else { continue };
            if state.files.get(&name) == Some(&print) {
                continue;
            }
            state.files.insert(name.clone(), print);
            self.load_file(&name, &path);
        }
    }

    fn load_file(&self, name: &str, path: &Path) {
        let loader = Loader {
            engine: &self.engine,
            linker: &self.linker,
            cache: &self.cache,
            max_file_bytes: self.config.max_file_bytes,
        };
        let started = std::time::Instant::now();
        let file = match loader.read(path) {
            Ok(file) => file,
            Err(err) => return self.reject(name, None, err.to_string()),
        };
        let loaded = match loader.load(name, path, &file) {
            Ok(loaded) => loaded,
            Err(LoadError::Read { .. }) if !path.exists() => return,
            Err(err) => return self.reject(name, Some(file.digest), err.to_string()),
        };
        if let Err(reason) = self.check_against_policies(&loaded) {
            return self.reject(name, Some(file.digest), reason);
        }
        tracing::info!(plugin = name, version = %loaded.version, world = loaded.world.point(), digest = %loaded.digest,
            took_ms = started.elapsed().as_millis() as u64, "plugin loaded");
        self.registry.install(Arc::new(loaded));
        self.metrics.load(name, "loaded");
    }

    fn reject(&self, name: &str, digest: Option<String>, reason: String) {
        let serving = self.registry.get(name).map(|l| l.digest.clone());
        tracing::error!(plugin = name, reason = %reason, still_serving = serving.as_deref().unwrap_or("nothing"),
            "plugin file rejected");
        self.registry.reject(name, digest, reason);
        self.metrics.load(name, "rejected");
    }

    /// Every policy step that names this plugin must accept it: same world, pin (if any)
    /// matching, settings accepted by the new version's `validate-settings`.
    fn check_against_policies(&self, loaded: &Loaded) -> Result<(), String> {
        for policy in self.policies.load().iter() {
            for world in super::World::ALL {
                let Some(point) = policy.point(world) else { continue };
                for step in point.plugins.iter().filter(|s| *s.plugin == *loaded.name) {
                    if loaded.world != world {
                        return Err(format!(
                            "policy '{}' uses it at {}, but the file is a {} plugin",
                            policy.name,
                            world.point(),
                            loaded.world.point()
                        ));
                    }
                    if let Some(pin) = &step.sha256
                        && !pin.eq_ignore_ascii_case(&loaded.digest)
                    {
                        return Err(format!("policy '{}' pins sha256 {pin}", policy.name));
                    }
                    self.settings_verdict(loaded, step.settings.to_string())
                        .map_err(|message| format!("policy '{}': {message}", policy.name))?;
                }
            }
        }
        Ok(())
    }

    fn scan_policy_file(&self, state: &mut ScanState) {
        let found = POLICY_FILES.iter().map(|f| self.config.dir.join(f)).find(|p| p.is_file());
        let Some(path) = found else {
            if state.policy_file.take().is_some() {
                tracing::info!("policy file removed: its policies no longer apply");
                self.set_file_policies(Vec::new());
            }
            return;
        };
        let Some(print) = fingerprint(&path) else { return };
        if state.policy_file == Some(print) {
            return;
        }
        state.policy_file = Some(print);
        match read_policy_file(&path) {
            Ok(policies) => {
                for policy in &policies {
                    for world in super::World::ALL {
                        for step in policy.steps(world) {
                            if self.registry.get(&step.plugin).is_none() {
                                tracing::warn!(policy = %policy.name, plugin = %step.plugin, "policy file names a plugin that is not loaded");
                            }
                        }
                    }
                }
                tracing::info!(file = %path.display(), policies = policies.len(), "policy file loaded");
                self.set_file_policies(policies);
                self.metrics.load("policies", "loaded");
            }
            Err(reason) => {
                tracing::error!(file = %path.display(), reason = %reason, "policy file rejected; the previous policies stay");
                self.metrics.load("policies", "rejected");
            }
        }
    }
}

fn read_policy_file(path: &Path) -> Result<Vec<super::policy::PolicySpec>, String> {
    let text = std::fs::read_to_string(path).map_err(|err| err.to_string())?;
    let file: PolicyFile = if path.extension().is_some_and(|e| e == "toml") {
        toml::from_str(&text).map_err(|err| err.to_string())?
    } else {
        serde_yaml::from_str(&text).map_err(|err| err.to_string())?
    };
    for policy in &file.policy {
        if let Some((field, message)) = policy.check_shape().into_iter().next() {
            return Err(format!("policy '{}': {field}: {message}", policy.name));
        }
    }
    Ok(file.policy)
}
