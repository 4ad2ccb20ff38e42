//! What can go wrong sending to agents: shared by the dispatcher, the resyncs and the policy
//! pushes, so none of them imports another for its error type.

use maestro_plugins::PluginFailure;
use maestro_store::StoreError;
use maestro_wire::mqtt::MqttError;

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Mqtt(#[from] MqttError),
    #[error("stored bundle {id} is unreadable: {source}")]
    Corrupt { id: String, source: serde_json::Error },
    /// A fail-closed codec could not encode the event: nothing was sent.
    #[error("event for {id} not sent: codec {failure}")]
    Encode { id: String, failure: PluginFailure },
    #[error("{0} bundle(s) held back because their codecs failed; their rows stay queued")]
    Held(usize),
}
