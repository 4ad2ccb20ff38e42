//! Files of YAML manifests (or bodies) turned into request bodies for resources and bundles.

use super::*;

/// One document of a file, with where it came from for messages.
#[derive(Debug)]
pub(crate) struct Document {
    pub(crate) origin: String,
    pub(crate) value: Value,
}

pub(crate) fn read_input(file: &str) -> anyhow::Result<(String, String)> {
    if file == "-" {
        let text = std::io::read_to_string(std::io::stdin()).context("reading standard input")?;
        return Ok(("stdin".to_string(), text));
    }
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
    Ok((file.to_string(), text))
}

/// YAML or JSON documents separated by `---`. JSON is read as YAML, of which it is nearly a
/// subset; a top-level list counts as one document per element. Empty documents are skipped.
pub(crate) fn parse_documents(label: &str, text: &str) -> anyhow::Result<Vec<Document>> {
    let mut documents = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let number = index + 1;
        let value = Value::deserialize(document)
            .with_context(|| format!("{label}: document {number} is not valid YAML or JSON"))?;
        match value {
            Value::Null => {}
            Value::Array(elements) => {
                documents.extend(elements.into_iter().enumerate().map(|(i, value)| Document {
                    origin: format!("{label}: document {number}, item {}", i + 1),
                    value,
                }))
            }
            value => documents.push(Document { origin: format!("{label}: document {number}"), value }),
        }
    }
    if documents.is_empty() {
        bail!("{label} holds no documents");
    }
    Ok(documents)
}

/// What a document turned out to be.
#[derive(Debug)]
pub(super) enum Item {
    /// An API object (a resource or bundle as the hub shows it), sent nearly as written.
    Object(Map<String, Value>),
    /// A Kubernetes manifest, to be wrapped in an API object.
    Manifest(Value),
}

/// Tells API objects (which carry `object_key`: `manifest` or `manifests`) from bare manifests
/// (`apiVersion` and `kind`), and opens Kubernetes lists into their manifests.
pub(super) fn classify(documents: Vec<Document>, object_key: &str) -> anyhow::Result<Vec<(String, Item)>> {
    let mut items = Vec::new();
    for Document { origin, value } in documents {
        let Value::Object(object) = value else {
            bail!("{origin} is {}, not a mapping", describe(&value));
        };
        if object.contains_key(object_key) {
            items.push((origin, Item::Object(object)));
        } else if is_manifest(&object) {
            match list_items(&object) {
                Some(elements) => {
                    for (i, element) in elements.iter().enumerate() {
                        let origin = format!("{origin}, list item {}", i + 1);
                        if !element.as_object().is_some_and(is_manifest) {
                            bail!("{origin} is not a Kubernetes manifest: it needs apiVersion and kind");
                        }
                        items.push((origin, Item::Manifest(element.clone())));
                    }
                }
                None => items.push((origin, Item::Manifest(Value::Object(object)))),
            }
        } else {
            bail!(
                "{origin} is neither an API object (with `{object_key}`) nor a Kubernetes manifest (with apiVersion and kind)"
            );
        }
    }
    Ok(items)
}

pub(super) fn is_manifest(object: &Map<String, Value>) -> bool {
    object.get("apiVersion").is_some_and(Value::is_string) && object.get("kind").is_some_and(Value::is_string)
}

/// The manifests of a `List` (or `DeploymentList` and the like).
pub(super) fn list_items(object: &Map<String, Value>) -> Option<&Vec<Value>> {
    let kind = object.get("kind").and_then(Value::as_str)?;
    if !kind.ends_with("List") {
        return None;
    }
    object.get("items").and_then(Value::as_array)
}

pub(super) fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// A request body and the document it came from.
#[derive(Debug)]
pub(super) struct Body {
    pub(super) origin: String,
    pub(super) fields: Map<String, Value>,
}

/// One resource per API object or bare manifest. A bare manifest's resource is named after
/// the manifest (unless --name says otherwise), so applying the same file again finds it.
pub(super) fn resource_bodies(items: Vec<(String, Item)>, files: &FileArgs) -> anyhow::Result<Vec<Body>> {
    if files.name.is_some() && items.len() != 1 {
        bail!("--name names one resource, but {} describes {}", files.file, items.len());
    }
    let consumer = files.consumer.as_deref();
    let name = files.name.as_deref();
    items
        .into_iter()
        .map(|(origin, item)| {
            let fields = match item {
                Item::Object(object) => resource_object(&origin, object, consumer, name)?,
                Item::Manifest(manifest) => bare_resource(&origin, manifest, consumer, name)?,
            };
            Ok(Body { origin, fields })
        })
        .collect()
}

/// A resource as written, with the consumer and name filled in where it has none.
pub(super) fn resource_object(
    origin: &str,
    mut object: Map<String, Value>,
    consumer: Option<&str>,
    name: Option<&str>,
) -> anyhow::Result<Map<String, Value>> {
    if let Some(name) = name {
        set_name(origin, &mut object, name)?;
    }
    if !object.contains_key("id")
        && !object.contains_key("name")
        && let Some(name) = object.get("manifest").and_then(derived_name)
    {
        object.insert("name".into(), Value::String(name));
    }
    with_consumer(origin, object, consumer)
}

pub(super) fn bare_resource(
    origin: &str,
    manifest: Value,
    consumer: Option<&str>,
    name: Option<&str>,
) -> anyhow::Result<Map<String, Value>> {
    let consumer = bare_consumer(origin, &manifest, consumer)?;
    let mut object = Map::new();
    object.insert("consumer_name".into(), Value::String(consumer.to_string()));
    if let Some(name) = name.map(str::to_string).or_else(|| derived_name(&manifest)) {
        object.insert("name".into(), Value::String(name));
    }
    object.insert("manifest".into(), manifest);
    Ok(object)
}

/// One bundle per bundle object, plus one holding every bare manifest, in file order.
pub(super) fn bundle_bodies(
    items: Vec<(String, Item)>,
    files: &FileArgs,
    label: &str,
    mode: Mode,
) -> anyhow::Result<Vec<Body>> {
    let consumer = files.consumer.as_deref();
    let mut bodies = Vec::new();
    let mut manifests = Vec::new();
    for (origin, item) in items {
        match item {
            Item::Object(object) => bodies.push(Body { fields: with_consumer(&origin, object, consumer)?, origin }),
            Item::Manifest(manifest) => {
                bare_consumer(&origin, &manifest, consumer)?;
                manifests.push(manifest);
            }
        }
    }
    let Some(consumer) = consumer.filter(|_| !manifests.is_empty()) else {
        if files.name.is_some() {
            bail!(
                "--name names the bundle made of bare manifests, but {label} has none; set `name` in the bundle objects"
            );
        }
        return Ok(bodies);
    };
    let mut fields = Map::new();
    fields.insert("consumer_name".into(), Value::String(consumer.to_string()));
    match &files.name {
        Some(name) => {
            fields.insert("name".into(), Value::String(name.clone()));
        }
        None if mode == Mode::Apply => {
            bail!("{label}: apply needs --name for the bundle made of its bare manifests, to find that bundle again");
        }
        None => {}
    }
    let origin = format!("{label}: bundle of {} bare manifests", manifests.len());
    fields.insert("manifests".into(), Value::Array(manifests));
    bodies.push(Body { origin, fields });
    Ok(bodies)
}

pub(super) fn set_name(origin: &str, object: &mut Map<String, Value>, name: &str) -> anyhow::Result<()> {
    match object.get("name").and_then(Value::as_str) {
        Some(own) if own != name => bail!("{origin} is named '{own}' but --name says '{name}'"),
        _ => {
            object.insert("name".into(), Value::String(name.to_string()));
            Ok(())
        }
    }
}

/// Fills in the consumer from --consumer, which must not contradict the document's own.
pub(super) fn with_consumer(
    origin: &str,
    mut object: Map<String, Value>,
    consumer: Option<&str>,
) -> anyhow::Result<Map<String, Value>> {
    let own = object.get("consumer_name").and_then(Value::as_str).filter(|own| !own.is_empty());
    match (own, consumer) {
        (Some(own), Some(flag)) if own != flag => {
            bail!("{origin} is for consumer '{own}' but --consumer says '{flag}'")
        }
        (Some(_), _) => {}
        (None, Some(flag)) => {
            object.insert("consumer_name".into(), Value::String(flag.to_string()));
        }
        // An update by id needs no consumer; a create without one is refused by the hub.
        (None, None) if object.contains_key("id") => {}
        (None, None) => {
            bail!("{origin} has no consumer_name; say which consumer gets it with --consumer NAME")
        }
    }
    Ok(object)
}

pub(super) fn bare_consumer<'a>(origin: &str, manifest: &Value, consumer: Option<&'a str>) -> anyhow::Result<&'a str> {
    consumer.ok_or_else(|| {
        let kind = manifest.get("kind").and_then(Value::as_str).unwrap_or("object");
        let name = manifest.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("without a name");
        anyhow!(
            "{origin} is a bare Kubernetes manifest ({kind} {name}); say which consumer gets it with --consumer NAME"
        )
    })
}

/// `kind.namespace.name` (or `kind.name` when cluster-scoped), lower-cased and cut to what a
/// DNS-1123 subdomain allows, so the same manifest always gets the same resource name.
pub(super) fn derived_name(manifest: &Value) -> Option<String> {
    let kind = manifest.get("kind").and_then(Value::as_str)?;
    let name = manifest.pointer("/metadata/name").and_then(Value::as_str)?;
    let namespace = manifest.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
    let parts: Vec<String> =
        [kind, namespace, name].iter().map(|part| dns_part(part)).filter(|p| !p.is_empty()).collect();
    let mut text = parts.join(".");
    text.truncate(253);
    let text = text.trim_end_matches(['-', '.']).to_string();
    (!text.is_empty()).then_some(text)
}

pub(super) fn dns_part(text: &str) -> String {
    let mapped: String = text
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '-' })
        .collect();
    mapped.split('.').map(|p| p.trim_matches('-')).filter(|p| !p.is_empty()).collect::<Vec<_>>().join(".")
}
