//! `maestro resource` and `maestro bundle`: list, get, create, apply, delete.

use super::*;

/// What differs between the resource and the bundle commands.
#[derive(Debug, Clone, Copy)]
pub(super) struct Kind {
    pub(super) noun: &'static str,
    pub(super) plural: &'static str,
    pub(super) path: &'static str,
    pub(super) columns: Columns,
    /// The field that makes a document an API object of this kind rather than a bare manifest.
    pub(super) object_key: &'static str,
}

pub(super) const RESOURCE: Kind = Kind {
    noun: "resource",
    plural: "resources",
    path: "/resources",
    columns: Columns::Resource,
    object_key: "manifest",
};
pub(super) const BUNDLE: Kind = Kind {
    noun: "bundle",
    plural: "bundles",
    path: "/resource-bundles",
    columns: Columns::Bundle,
    object_key: "manifests",
};

impl Kind {
    pub(super) fn item_path(self, id: &str) -> String {
        format!("{}/{}", self.path, segment(id))
    }
}

pub(super) async fn run_objects(kind: Kind, args: HubArgs, action: ObjectAction) -> anyhow::Result<()> {
    let hub = Hub::connect(&args)?;
    let printer = Printer { format: args.output };
    match action {
        ObjectAction::List(list) => {
            let listing = hub.list(kind.path, &list).await.with_context(|| format!("listing {}", kind.plural))?;
            printer.list(&listing, kind.columns, kind.plural, list.all)
        }
        ObjectAction::Get { id } => {
            let object = hub.get(&kind.item_path(&id)).await?;
            printer.one(&object, kind.columns)
        }
        ObjectAction::Create(files) => write(&hub, &printer, kind, &files, Mode::Create).await,
        ObjectAction::Apply(files) => write(&hub, &printer, kind, &files, Mode::Apply).await,
        ObjectAction::Delete { id, force } => {
            let path = kind.item_path(&id);
            let path = if force { format!("{path}?force=true") } else { path };
            hub.delete(&path).await.with_context(|| format!("deleting {} {id}", kind.noun))?;
            if force {
                printer.outcome(&format!("{} {id} deleted without waiting for its agent", kind.noun))
            } else {
                printer.outcome(&format!("{} {id} marked for deletion; it goes once its agent confirms", kind.noun))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Create,
    Apply,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Created,
    Updated,
    Unchanged,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
        })
    }
}

/// Sends every request body built from the file, in order, stopping at the first failure:
/// later documents may depend on earlier ones.
pub(super) async fn write(
    hub: &Hub,
    printer: &Printer,
    kind: Kind,
    files: &FileArgs,
    mode: Mode,
) -> anyhow::Result<()> {
    let (label, text) = read_input(&files.file)?;
    let documents = parse_documents(&label, &text)?;
    let items = classify(documents, kind.object_key)?;
    let bodies = match kind.columns {
        Columns::Resource => resource_bodies(items, files)?,
        _ => bundle_bodies(items, files, &label, mode)?,
    };
    let mut written = Vec::with_capacity(bodies.len());
    for Body { origin, fields } in bodies {
        let result = match mode {
            Mode::Create => {
                hub.send(Method::POST, kind.path, &Value::Object(fields)).await.map(|object| (Outcome::Created, object))
            }
            Mode::Apply => apply(hub, kind, &fields).await,
        };
        let (outcome, object) = result.context(origin)?;
        printer.outcome(&format!(
            "{} {} {outcome} (id {}, version {})",
            kind.noun,
            field(&object, "name"),
            field(&object, "id"),
            field(&object, "version")
        ))?;
        written.push(object);
    }
    printer.written(written)
}

/// Creates the object, or updates the one that exists with the version just read. A write
/// that lost a race is retried once on a fresh read; a second loss is reported.
pub(super) async fn apply(hub: &Hub, kind: Kind, body: &Map<String, Value>) -> Result<(Outcome, Value), RequestError> {
    let Some(mut current) = find_existing(hub, kind, body).await? else {
        let created = hub.send(Method::POST, kind.path, &Value::Object(body.clone())).await?;
        return Ok((Outcome::Created, created));
    };
    let id = field(&current, "id");
    let mut retried = false;
    loop {
        let read = current.get("version").and_then(Value::as_i64).unwrap_or_default();
        let mut update = body.clone();
        update.insert("version".into(), json!(read));
        match hub.send(Method::PUT, &kind.item_path(&id), &Value::Object(update)).await {
            Ok(object) => {
                let moved = object.get("version").and_then(Value::as_i64) != Some(read);
                return Ok((if moved { Outcome::Updated } else { Outcome::Unchanged }, object));
            }
            Err(err) if !retried && err.is_stale_version(read) => {
                retried = true;
                current = hub.get(&kind.item_path(&id)).await?;
            }
            Err(err) => return Err(err),
        }
    }
}

/// The stored object a body is about: by `id` when it has one, else by consumer and name.
pub(super) async fn find_existing(
    hub: &Hub,
    kind: Kind,
    body: &Map<String, Value>,
) -> Result<Option<Value>, RequestError> {
    let text = |name: &str| body.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
    if let Some(id) = text("id") {
        return match hub.get(&kind.item_path(id)).await {
            Ok(object) => Ok(Some(object)),
            Err(err) if err.status() == Some(StatusCode::NOT_FOUND) => Ok(None),
            Err(err) => Err(err),
        };
    }
    let (Some(consumer), Some(name)) = (text("consumer_name"), text("name")) else {
        return Ok(None);
    };
    let search = format!("consumer_name = {} and name = {}", quote(consumer), quote(name));
    let page = hub.call(Method::GET, kind.path, &[("search", search)], None).await?.unwrap_or(Value::Null);
    Ok(page.get("items").and_then(Value::as_array).and_then(|items| items.first()).cloned())
}
