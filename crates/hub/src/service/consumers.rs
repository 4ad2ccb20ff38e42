//! Consumer writes: identity and label checks, the store. A label change queues a policy push
//! for the consumer's agent in the same transaction (the store does it).

use std::sync::Arc;

use serde_json::{Map, Value};

use maestro_model::Consumer;
use maestro_model::validate::{Violation, validate_labels, validate_name};
use maestro_store::Store;

use super::{ServiceError, refuse_if_any};

/// A consumer to create; the id defaults to a new UUID and the name to the id.
#[derive(Debug, Clone, Default)]
pub struct NewConsumer {
    pub id: Option<String>,
    pub name: Option<String>,
    pub labels: Map<String, Value>,
}

pub struct ConsumerService {
    store: Arc<Store>,
}

impl ConsumerService {
    pub fn new(store: Arc<Store>) -> Self {
        ConsumerService { store }
    }

    pub async fn create(&self, new: NewConsumer) -> Result<Consumer, ServiceError> {
        let id = new.id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let name = new.name.unwrap_or_else(|| id.clone());
        let mut violations = Vec::new();
        check_id(&id, &mut violations);
        validate_name(&name, "name", &mut violations);
        validate_labels(&Value::Object(new.labels.clone()), "labels", &mut violations);
        refuse_if_any(violations)?;
        let consumer = self.store.create_consumer(&id, &name, &new.labels).await?;
        tracing::info!(consumer = %consumer.name, id = %consumer.id, "consumer created");
        Ok(consumer)
    }

    /// Replaces the labels of the consumer with this id or name.
    pub async fn set_labels(&self, id_or_name: &str, labels: Map<String, Value>) -> Result<Consumer, ServiceError> {
        let mut violations = Vec::new();
        validate_labels(&Value::Object(labels.clone()), "labels", &mut violations);
        refuse_if_any(violations)?;
        let consumer = self.store.set_consumer_labels(id_or_name, &labels).await?;
        tracing::info!(consumer = %consumer.name, "consumer labels replaced");
        Ok(consumer)
    }

    /// The name of a consumer given by id or name.
    pub async fn name_of(&self, id_or_name: &str) -> Result<String, ServiceError> {
        Ok(self.store.get_consumer(id_or_name).await?.name)
    }

    pub async fn delete(&self, id_or_name: &str) -> Result<(), ServiceError> {
        self.store.delete_consumer(id_or_name).await?;
        tracing::info!(consumer = %id_or_name, "consumer deleted");
        Ok(())
    }
}

/// Consumer ids appear in URLs and logs: keep them to a safe alphabet.
fn check_id(id: &str, violations: &mut Vec<Violation>) {
    let ok = !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        violations.push(Violation {
            field: "id".into(),
            message: format!("id must be 1 to 64 letters, digits, '-' or '_', found {id:?}"),
        });
    }
}
