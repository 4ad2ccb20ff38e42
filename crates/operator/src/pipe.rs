//! A `Pipe` task's pure parts (SPEC.md §3, KUDO's `task_pipe.go`, KEP-17): the user's pod
//! checked and turned into the pipe pod, and the files copied out of it turned into the
//! Secrets and ConfigMaps that later templates name through `.Pipes.<key>`.
//!
//! The pipe pod is the user's pod with one init container that writes files into an `emptyDir`
//! volume, plus a `waiter` container that keeps the volume alive after the init container ends,
//! so the files can be read through pods/exec once the pod runs. The engine does that reading.

use std::path::{Component, Path};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use maestro_package::types::PipeSpec;
use serde_json::{Map, Value, json};

/// Marks a pipe pod, as KUDO marks it.
pub const PIPE_POD_ANNOTATION: &str = "kudo.dev/pipepod";
/// The container the files are read through.
pub const WAITER: &str = "waiter";
/// The largest file a pipe copies (KUDO's limit): artifacts live in etcd.
pub const MAX_FILE_SIZE: usize = 1024 * 1024;

/// The file a pipe copies: `file`, else `envFile`.
pub fn source(pipe: &PipeSpec) -> &str {
    if pipe.file.is_empty() { &pipe.env_file } else { &pipe.file }
}

/// The pipe pod for the user's rendered `pod`, named `name`: checked as KUDO checks it (no
/// containers, exactly one init container, restart policy empty or `OnFailure`, exactly one
/// `emptyDir` volume mounted in the init container, every pipe file under that mount), then
/// marked, and given the `waiter` container that shares the volume.
pub fn pod(mut pod: Value, name: &str, pipes: &[PipeSpec]) -> Result<Value, String> {
    if pod.get("kind").and_then(Value::as_str) != Some("Pod") {
        return Err("the pipe pod template must render to one object of kind Pod".into());
    }
    let spec = pod.get("spec").and_then(Value::as_object).ok_or("the pipe pod has no spec")?;
    let (volume, mount) = shared_volume(spec)?;
    for pipe in pipes {
        check_file(source(pipe), &mount)?;
    }
    let spec = pod.get_mut("spec").and_then(Value::as_object_mut).ok_or("the pipe pod has no spec")?;
    spec.insert("restartPolicy".into(), json!("OnFailure"));
    spec.insert(
        "containers".into(),
        json!([{
            "name": WAITER,
            "image": "busybox",
            "command": ["/bin/sh", "-c"],
            "args": ["sleep infinity"],
            "volumeMounts": [{"name": volume, "mountPath": mount}],
        }]),
    );
    let metadata = pod.as_object_mut().ok_or("the pipe pod is not an object")?.entry("metadata").or_insert(json!({}));
    let metadata = metadata.as_object_mut().ok_or("the pipe pod's metadata is not a map")?;
    metadata.insert("name".into(), json!(name));
    let annotations = metadata.entry("annotations").or_insert(json!({}));
    if !annotations.is_object() {
        *annotations = json!({});
    }
    if let Some(annotations) = annotations.as_object_mut() {
        annotations.insert(PIPE_POD_ANNOTATION.into(), json!("true"));
    }
    Ok(pod)
}

/// The shared `emptyDir` volume's name and where the init container mounts it.
fn shared_volume(spec: &Map<String, Value>) -> Result<(String, String), String> {
    if items(spec.get("containers")).next().is_some() {
        return Err("the pipe pod must not have containers: its init container writes the files".into());
    }
    let init: Vec<&Value> = items(spec.get("initContainers")).collect();
    let [init] = init.as_slice() else {
        return Err("the pipe pod must have exactly one init container, which writes the files".into());
    };
    match spec.get("restartPolicy").and_then(Value::as_str) {
        None | Some("" | "OnFailure") => {}
        Some(other) => return Err(format!("the pipe pod's restartPolicy must be OnFailure, not {other:?}")),
    }
    let empty_dirs: Vec<&str> = items(spec.get("volumes"))
        .filter(|v| v.get("emptyDir").is_some())
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .collect();
    let [volume] = empty_dirs.as_slice() else {
        return Err("the pipe pod must have exactly one emptyDir volume, where the files are written".into());
    };
    let mount = items(init.get("volumeMounts"))
        .find(|m| m.get("name").and_then(Value::as_str) == Some(volume))
        .and_then(|m| m.get("mountPath").and_then(Value::as_str))
        .ok_or_else(|| format!("the pipe pod's init container must mount the emptyDir volume {volume:?}"))?;
    Ok(((*volume).to_string(), mount.to_string()))
}

fn items(list: Option<&Value>) -> impl Iterator<Item = &Value> {
    list.and_then(Value::as_array).into_iter().flatten()
}

/// A pipe file must lie under the shared mount (no `..` escapes) and have a name that can be
/// a Secret or ConfigMap key.
fn check_file(file: &str, mount: &str) -> Result<(), String> {
    let path = Path::new(file);
    let inside = path.starts_with(mount)
        && path != Path::new(mount)
        && path.components().all(|c| !matches!(c, Component::ParentDir | Component::CurDir));
    if !inside {
        return Err(format!("pipe file {file:?} must be under the shared volume's mount path {mount:?}"));
    }
    let base = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if base.is_empty() || !base.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')) {
        return Err(format!("pipe file name {base:?} may contain only letters, digits, '.', '_' and '-'"));
    }
    Ok(())
}

/// The Secret or ConfigMap `name` holding what was copied from `pipe`'s file: a `file` is kept
/// whole under its base name (Secret `data`, ConfigMap `binaryData`), an `envFile`'s
/// `KEY=VALUE` lines become one entry each (Secret `data`, ConfigMap `data`).
pub fn artifact(pipe: &PipeSpec, name: &str, content: &[u8]) -> Result<Value, String> {
    let file = source(pipe);
    let entries: Vec<(String, Vec<u8>)> = if pipe.file.is_empty() {
        env_file(content).map_err(|e| format!("env file {file:?}: {e}"))?
    } else {
        let base = Path::new(file).file_name().and_then(|n| n.to_str()).unwrap_or(file);
        vec![(base.to_string(), content.to_vec())]
    };
    let encoded = |entries: &[(String, Vec<u8>)]| -> Map<String, Value> {
        entries.iter().map(|(k, v)| (k.clone(), Value::String(STANDARD.encode(v)))).collect()
    };
    match pipe.kind.as_str() {
        "Secret" => Ok(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "type": "Opaque", "data": encoded(&entries),
        })),
        "ConfigMap" if pipe.file.is_empty() => {
            let data: Map<String, Value> = entries
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(String::from_utf8_lossy(v).into_owned())))
                .collect();
            Ok(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}))
        }
        "ConfigMap" => Ok(json!({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "binaryData": encoded(&entries),
        })),
        other => Err(format!("pipe kind {other:?} must be Secret or ConfigMap")),
    }
}

/// `KEY=VALUE` lines as kubectl reads an env file: blank lines and `#` comments skipped, leading
/// white space trimmed, the key a valid environment variable name. A line without `=` (which
/// kubectl fills from its own environment) is refused: the engine's environment is no input.
fn env_file(content: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let text = std::str::from_utf8(content).map_err(|_| "is not UTF-8 text".to_string())?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut entries = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {} has no '='", number + 1));
        };
        let valid = key.chars().next().is_some_and(|c| !c.is_ascii_digit())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
        if !valid {
            return Err(format!("line {}: {key:?} is not a valid environment variable name", number + 1));
        }
        entries.push((key.to_string(), value.as_bytes().to_vec()));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe(file: &str, env_file: &str, kind: &str, key: &str) -> PipeSpec {
        PipeSpec { file: file.into(), env_file: env_file.into(), kind: kind.into(), key: key.into() }
    }

    /// The pod of KUDO's cowsay example: an init container writes into /tmp/cowsay.
    fn user_pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "spec": {
                "volumes": [{"name": "shared-data", "emptyDir": {}}],
                "initContainers": [{
                    "name": "init", "image": "busybox",
                    "command": ["/bin/sh", "-c"], "args": ["echo hi > /tmp/cowsay/index.html"],
                    "volumeMounts": [{"name": "shared-data", "mountPath": "/tmp/cowsay"}],
                }],
            },
        })
    }

    #[test]
    fn the_pipe_pod_gets_a_name_the_mark_and_a_waiter_sharing_the_volume() {
        let files = [pipe("/tmp/cowsay/index.html", "", "ConfigMap", "indexHtml")];
        let made = pod(user_pod(), "inst.deploy.main.genfiles.gen.pipepod", &files).unwrap();
        assert_eq!(made["metadata"]["name"], "inst.deploy.main.genfiles.gen.pipepod");
        assert_eq!(made["metadata"]["annotations"][PIPE_POD_ANNOTATION], "true");
        assert_eq!(made["spec"]["restartPolicy"], "OnFailure");
        let waiter = &made["spec"]["containers"][0];
        assert_eq!(waiter["name"], WAITER);
        assert_eq!(waiter["volumeMounts"], json!([{"name": "shared-data", "mountPath": "/tmp/cowsay"}]));
        assert_eq!(made["spec"]["initContainers"], user_pod()["spec"]["initContainers"]);
    }

    #[test]
    fn pods_kudo_would_refuse_are_refused_with_the_rule() {
        let files = [pipe("/tmp/cowsay/index.html", "", "Secret", "k")];
        let with = |edit: &dyn Fn(&mut Value)| {
            let mut p = user_pod();
            edit(&mut p);
            pod(p, "p", &files).unwrap_err()
        };
        assert!(with(&|p| p["spec"]["containers"] = json!([{"name": "c"}])).contains("must not have containers"));
        assert!(with(&|p| p["spec"]["initContainers"] = json!([])).contains("exactly one init container"));
        assert!(with(&|p| p["spec"]["restartPolicy"] = json!("Always")).contains("OnFailure"));
        assert!(with(&|p| p["spec"]["volumes"] = json!([])).contains("exactly one emptyDir"));
        assert!(
            with(&|p| p["spec"]["initContainers"][0]["volumeMounts"] = json!([])).contains("must mount the emptyDir")
        );
        assert!(with(&|p| p["kind"] = json!("Deployment")).contains("kind Pod"));
        let outside = [pipe("/etc/passwd", "", "Secret", "k")];
        assert!(pod(user_pod(), "p", &outside).unwrap_err().contains("under the shared volume"));
        let escaping = [pipe("/tmp/cowsay/../../etc/passwd", "", "Secret", "k")];
        assert!(pod(user_pod(), "p", &escaping).unwrap_err().contains("under the shared volume"));
        let odd = [pipe("/tmp/cowsay/a b", "", "Secret", "k")];
        assert!(pod(user_pod(), "p", &odd).unwrap_err().contains("only letters"));
    }

    #[test]
    fn a_file_is_kept_whole_under_its_base_name() {
        let secret = artifact(&pipe("/tmp/x/key.pem", "", "Secret", "key"), "a.key", b"\x00\xffPEM").unwrap();
        assert_eq!(secret["kind"], "Secret");
        assert_eq!(secret["metadata"]["name"], "a.key");
        assert_eq!(secret["data"]["key.pem"], STANDARD.encode(b"\x00\xffPEM"));
        let map = artifact(&pipe("/tmp/x/index.html", "", "ConfigMap", "html"), "a.html", b"<p>").unwrap();
        assert_eq!(map["binaryData"]["index.html"], STANDARD.encode(b"<p>"));
        assert!(map.get("data").is_none());
    }

    #[test]
    fn an_env_file_becomes_one_entry_per_line() {
        let text = b"\xef\xbb\xbf# settings\n\nUSER=admin\n  PASSWORD=a=b\n";
        let map = artifact(&pipe("", "/tmp/x/env", "ConfigMap", "env"), "a.env", text).unwrap();
        assert_eq!(map["data"], json!({"USER": "admin", "PASSWORD": "a=b"}));
        let secret = artifact(&pipe("", "/tmp/x/env", "Secret", "env"), "a.env", text).unwrap();
        assert_eq!(secret["data"]["USER"], STANDARD.encode("admin"));
        let bad = artifact(&pipe("", "/tmp/x/env", "Secret", "env"), "a", b"JUSTAKEY\n").unwrap_err();
        assert!(bad.contains("line 1 has no '='"), "{bad}");
        let bad = artifact(&pipe("", "/tmp/x/env", "Secret", "env"), "a", b"1X=2\n").unwrap_err();
        assert!(bad.contains("not a valid environment variable name"), "{bad}");
    }
}
