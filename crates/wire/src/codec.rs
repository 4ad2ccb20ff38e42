//! Codec plugins on the wire (WIT interface `transcode`): every event on a consumer's topics,
//! both directions, carries its data encoded with the codecs that consumer's policies give,
//! in order, and names them in the CloudEvent extension `maestrocodec` (comma separated, in
//! the order applied). The receiver decodes in reverse with the plugins of the same names and
//! the settings its own policies give them. It works like HTTP's `Content-Encoding`:
//! `datacontenttype` keeps naming the decoded data.
//!
//! A consumer without codecs gets exactly the events it got before (no extension, same bytes),
//! so OCM's work agents keep working. Codecs fail closed by default: what cannot be encoded is
//! not sent (never in the clear), what cannot be decoded is dropped.

use std::sync::Arc;

use super::wire::{MqttMessage, PROPERTY_PREFIX, ext};
use maestro_plugins::{PluginFailure, PluginRuntime, Subject, World};

/// More codecs than this on one event is nonsense, not a policy.
const MAX_CODECS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("extension maestrocodec is not a list of codec names: {0:?}")]
    BadExtension(String),
    #[error(
        "the event is encoded with {0} but no plugins run here to decode it (a --plugin-dir holding the same codec plugins is needed)"
    )]
    NoPlugins(String),
    #[error("decoding failed: {0}")]
    Decode(PluginFailure),
}

impl CodecError {
    /// A fixed label for the dropped-events metric.
    pub fn reason(&self) -> &'static str {
        match self {
            CodecError::BadExtension(_) => "invalid extension",
            CodecError::NoPlugins(_) => "codec unavailable",
            CodecError::Decode(_) => "decode failed",
        }
    }
}

/// The codec names of a `maestrocodec` value, in the order they were applied.
pub fn parse_names(value: &str) -> Result<Vec<String>, CodecError> {
    let bad = || CodecError::BadExtension(value.to_string());
    let names: Vec<String> = value.split(',').map(|name| name.trim().to_string()).collect();
    let valid = |name: &String| {
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    if names.len() > MAX_CODECS || !names.iter().all(valid) {
        return Err(bad());
    }
    Ok(names)
}

fn property_name() -> String {
    format!("{PROPERTY_PREFIX}{}", ext::CODEC)
}

/// The codecs a received message names, if it names any.
pub fn names_of(message: &MqttMessage) -> Result<Option<Vec<String>>, CodecError> {
    let name = property_name();
    match message.user_properties.iter().find(|(key, _)| *key == name) {
        None => Ok(None),
        Some((_, value)) => parse_names(value).map(Some),
    }
}

/// The plugin runtime as the transport sees it: absent, or present with or without codecs in
/// any policy. Cheap to clone.
#[derive(Clone, Default)]
pub struct Codecs {
    runtime: Option<Arc<PluginRuntime>>,
}

impl std::fmt::Debug for Codecs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codecs").field("plugins", &self.runtime.is_some()).finish()
    }
}

impl Codecs {
    pub fn new(runtime: Option<Arc<PluginRuntime>>) -> Codecs {
        Codecs { runtime }
    }

    /// Whether any policy in force has codecs: when none has, events go out untouched and
    /// callers skip building a [`Subject`].
    pub fn active(&self) -> bool {
        self.runtime.as_ref().is_some_and(|rt| rt.has_point(World::Codec))
    }

    /// Encodes the payload with the subject's codecs and names them in `maestrocodec`; the
    /// message is unchanged when no codec applies.
    pub async fn encode(&self, subject: &Subject, mut message: MqttMessage) -> Result<MqttMessage, PluginFailure> {
        let Some(runtime) = self.runtime.as_ref().filter(|_| self.active()) else { return Ok(message) };
        // Most consumers have no codec even when some have: skip the blocking thread for them.
        if runtime.steps_for(World::Codec, subject).is_empty() {
            return Ok(message);
        }
        let payload = std::mem::take(&mut message.payload);
        let encoded = runtime.encode(subject.clone(), payload).await?;
        message.payload = encoded.data;
        if !encoded.codecs.is_empty() {
            message.user_properties.push((property_name(), encoded.codecs.join(",")));
        }
        Ok(message)
    }

    /// Decodes a message naming codecs (and removes the extension); others pass unchanged.
    pub async fn decode(&self, subject: &Subject, mut message: MqttMessage) -> Result<MqttMessage, CodecError> {
        let Some(names) = names_of(&message)? else { return Ok(message) };
        let Some(runtime) = &self.runtime else { return Err(CodecError::NoPlugins(names.join(","))) };
        let payload = std::mem::take(&mut message.payload);
        message.payload = runtime.decode(subject.clone(), names, payload).await.map_err(CodecError::Decode)?;
        let name = property_name();
        message.user_properties.retain(|(key, _)| *key != name);
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(codec: Option<&str>) -> MqttMessage {
        let mut user_properties = vec![("ce-specversion".to_string(), "1.0".to_string())];
        if let Some(codec) = codec {
            user_properties.push(("ce-maestrocodec".into(), codec.into()));
        }
        MqttMessage { user_properties, content_type: Some("application/json".into()), payload: b"{}".to_vec() }
    }

    #[test]
    fn the_extension_lists_codecs_in_the_order_applied() {
        assert_eq!(parse_names("hmac-codec,gzip-codec").unwrap(), ["hmac-codec", "gzip-codec"]);
        assert_eq!(parse_names(" gzip-codec ").unwrap(), ["gzip-codec"]);
        for bad in ["", "a,,b", "a,", "a b", "x/y", "a;b", &vec!["c"; 17].join(",")] {
            assert!(matches!(parse_names(bad), Err(CodecError::BadExtension(_))), "{bad:?} accepted");
        }
        assert_eq!(names_of(&message(None)).unwrap(), None);
        assert_eq!(names_of(&message(Some("gzip-codec"))).unwrap(), Some(vec!["gzip-codec".to_string()]));
    }

    #[tokio::test]
    async fn without_plugins_plain_events_pass_and_encoded_ones_are_refused() {
        let codecs = Codecs::default();
        let subject = Subject::consumer("c1", &Default::default());
        assert!(!codecs.active());
        let plain = message(None);
        assert_eq!(codecs.encode(&subject, plain.clone()).await.unwrap(), plain, "no codec: byte-identical");
        assert_eq!(codecs.decode(&subject, plain.clone()).await.unwrap(), plain);

        let refused = codecs.decode(&subject, message(Some("gzip-codec"))).await.unwrap_err();
        assert!(matches!(&refused, CodecError::NoPlugins(names) if names == "gzip-codec"), "{refused}");
        assert_eq!(refused.reason(), "codec unavailable");
        let bad = codecs.decode(&subject, message(Some("a b"))).await.unwrap_err();
        assert_eq!(bad.reason(), "invalid extension");
    }
}
