//! Codec: signs bundle data with HMAC-SHA256 under a key from settings, and refuses data
//! whose signature does not verify. The consumer's name is signed too, so data signed for one
//! cluster cannot be replayed to another.
//!
//! Wire format: `MSIG1` (5 bytes), the 32-byte tag, then the data unchanged.

use hmac::{Hmac, Mac};
use maestro_plugin::prelude::*;
use sha2::Sha256;

pub struct HmacCodec;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The shared key, hex encoded, at least 32 bytes (64 hex digits).
    pub key_hex: String,
}

const MAGIC: &[u8] = b"MSIG1";
const TAG_LEN: usize = 32;
const MIN_KEY_LEN: usize = 32;

impl Codec for HmacCodec {
    type Settings = Settings;

    fn validate_settings(settings: &Settings) -> Result<(), String> {
        key(settings).map(|_| ())
    }

    fn encode(ctx: &Context, data: Vec<u8>, settings: &Settings) -> Result<Vec<u8>, String> {
        let tag = mac(&key(settings)?, &ctx.consumer, &data).finalize().into_bytes();
        let mut out = Vec::with_capacity(MAGIC.len() + TAG_LEN + data.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&tag);
        out.extend_from_slice(&data);
        Ok(out)
    }

    fn decode(ctx: &Context, data: Vec<u8>, settings: &Settings) -> Result<Vec<u8>, String> {
        let rest = data.strip_prefix(MAGIC).ok_or("data is not signed (no MSIG1 header)")?;
        if rest.len() < TAG_LEN {
            return Err("signed data is truncated".into());
        }
        let (tag, payload) = rest.split_at(TAG_LEN);
        mac(&key(settings)?, &ctx.consumer, payload)
            .verify_slice(tag)
            .map_err(|_| format!("signature does not verify for consumer {}", ctx.consumer))?;
        Ok(payload.to_vec())
    }
}

fn key(settings: &Settings) -> Result<Vec<u8>, String> {
    let hex = settings.key_hex.trim();
    if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("key_hex must be hex digits".into());
    }
    let key: Vec<u8> = (0..hex.len()).step_by(2).filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok()).collect();
    if key.len() < MIN_KEY_LEN {
        return Err(format!("key_hex must hold at least {MIN_KEY_LEN} bytes, it holds {}", key.len()));
    }
    Ok(key)
}

fn mac(key: &[u8], consumer: &str, data: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(&(consumer.len() as u64).to_be_bytes());
    mac.update(consumer.as_bytes());
    mac.update(data);
    mac
}

maestro_plugin::export_codec!(HmacCodec);

#[cfg(test)]
mod tests {
    use maestro_plugin::{codec, testing};

    use super::*;

    fn settings() -> Value {
        json!({"key_hex": "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"})
    }

    #[test]
    fn signed_data_decodes_to_the_original() {
        let signed = testing::encode::<HmacCodec>(b"{\"manifests\": []}", &settings()).unwrap();
        assert!(signed.starts_with(MAGIC));
        assert_eq!(testing::decode::<HmacCodec>(&signed, &settings()).unwrap(), b"{\"manifests\": []}");
    }

    #[test]
    fn tampered_data_or_another_key_is_refused() {
        let mut signed = testing::encode::<HmacCodec>(b"replicas: 1", &settings()).unwrap();
        let other = json!({"key_hex": "ff112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"});
        assert!(testing::decode::<HmacCodec>(&signed, &other).is_err());
        *signed.last_mut().unwrap() = b'9';
        assert!(testing::decode::<HmacCodec>(&signed, &settings()).unwrap_err().contains("does not verify"));
    }

    #[test]
    fn data_signed_for_one_consumer_is_refused_by_another() {
        let for_a =
            codec::run_encode::<HmacCodec>(Context::for_consumer("a"), b"x".to_vec(), &settings().to_string()).unwrap();
        let as_b = codec::run_decode::<HmacCodec>(Context::for_consumer("b"), for_a, &settings().to_string());
        assert!(as_b.unwrap_err().contains("consumer b"));
    }

    #[test]
    fn short_or_non_hex_keys_are_refused_in_settings() {
        assert!(testing::codec_settings::<HmacCodec>(&json!({"key_hex": "0011"})).unwrap_err().contains("at least 32"));
        assert!(testing::codec_settings::<HmacCodec>(&json!({"key_hex": "xyz"})).is_err());
        assert!(testing::codec_settings::<HmacCodec>(&json!({})).unwrap_err().contains("key_hex"));
    }
}
