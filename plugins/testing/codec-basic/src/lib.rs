//! Test codec: `encode` prefixes the magic `mz1:` and XORs every byte with the settings' `key`
//! (0-255); `decode` reverses it and refuses data without the magic. Data equal to `trap`
//! makes either call trap, for the host's recycling tests.

wit_bindgen::generate!({ path: "../../../wit", world: "codec" });

use exports::maestro::plugin::transcode::Guest;
use maestro::plugin::types::Context;

struct CodecBasic;

const MAGIC: &[u8] = b"mz1:";

fn key(settings: &str) -> Result<u8, String> {
    let value: serde_json::Value =
        serde_json::from_str(settings).map_err(|err| format!("settings are not JSON: {err}"))?;
    let key = value.get("key").and_then(|k| k.as_u64()).ok_or("settings need \"key\": an integer 0-255")?;
    u8::try_from(key).map_err(|_| format!("key must be 0-255, found {key}"))
}

impl Guest for CodecBasic {
    fn validate_settings(settings: String) -> Result<(), String> {
        key(&settings).map(|_| ())
    }

    fn encode(_ctx: Context, data: Vec<u8>, settings: String) -> Result<Vec<u8>, String> {
        if data == b"trap" {
            panic!("asked to trap");
        }
        let key = key(&settings)?;
        Ok(MAGIC.iter().copied().chain(data.iter().map(|b| b ^ key)).collect())
    }

    fn decode(_ctx: Context, data: Vec<u8>, settings: String) -> Result<Vec<u8>, String> {
        if data == b"trap" {
            panic!("asked to trap");
        }
        let key = key(&settings)?;
        let body = data.strip_prefix(MAGIC).ok_or("data was not encoded by codec-basic (no mz1: prefix)")?;
        Ok(body.iter().map(|b| b ^ key).collect())
    }
}

export!(CodecBasic);
