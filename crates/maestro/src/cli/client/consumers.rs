//! `maestro consumer`: list, get, create, label, delete.

use super::*;

pub(super) async fn run_consumer(cmd: ConsumerCmd) -> anyhow::Result<()> {
    let hub = Hub::connect(&cmd.hub)?;
    let printer = Printer { format: cmd.hub.output };
    match cmd.action {
        ConsumerAction::List(args) => {
            let listing = hub.list("/consumers", &args).await.context("listing consumers")?;
            printer.list(&listing, Columns::Consumer, "consumers", args.all)
        }
        ConsumerAction::Get { name } => {
            let consumer = hub.get(&consumer_path(&name)).await?;
            printer.one(&consumer, Columns::Consumer)
        }
        ConsumerAction::Create { name, labels } => {
            let labels: Map<String, Value> = labels.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            let body = json!({"name": name, "labels": labels});
            let created = hub
                .send(Method::POST, "/consumers", &body)
                .await
                .with_context(|| format!("creating consumer {name}"))?;
            printer.outcome(&format!("consumer {name} created (id {})", field(&created, "id")))?;
            printer.written(vec![created])
        }
        ConsumerAction::Label { name, changes } => {
            let labelled = label(&hub, &name, &changes).await.with_context(|| format!("labelling consumer {name}"))?;
            printer.outcome(&format!("consumer {name} labelled"))?;
            printer.written(vec![labelled])
        }
        ConsumerAction::Delete { name, cascade } => {
            let path = consumer_path(&name);
            let path = if cascade { format!("{path}?cascade=true") } else { path };
            hub.delete(&path).await.with_context(|| format!("deleting consumer {name}"))?;
            printer.outcome(&format!("consumer {name} deleted"))
        }
    }
}

pub(super) fn consumer_path(name: &str) -> String {
    format!("/consumers/{}", segment(name))
}

/// The API replaces all labels at once, so the changes are applied to the labels just read.
pub(super) async fn label(hub: &Hub, name: &str, changes: &[LabelChange]) -> Result<Value, RequestError> {
    let current = hub.get(&consumer_path(name)).await?;
    let mut labels = current.get("labels").and_then(Value::as_object).cloned().unwrap_or_default();
    for change in changes {
        match change {
            LabelChange::Set(key, value) => labels.insert(key.clone(), Value::String(value.clone())),
            LabelChange::Remove(key) => labels.remove(key),
        };
    }
    hub.send(Method::PATCH, &consumer_path(name), &json!({"labels": labels})).await
}

pub(super) fn field(object: &Value, name: &str) -> String {
    match object.get(name) {
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
        None => "?".to_string(),
    }
}
