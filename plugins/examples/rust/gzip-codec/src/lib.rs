//! Codec: gzip (RFC 1952) compression of bundle data. Decoding is bounded by a maximum size,
//! so a small hostile payload cannot expand into gigabytes.

use maestro_plugin::prelude::*;

pub struct Gzip;

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Compression level, 0 (store) to 10 (smallest).
    pub level: u8,
    /// Refuse to decode data that expands beyond this many bytes.
    pub max_decoded_bytes: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { level: 6, max_decoded_bytes: 64 << 20 }
    }
}

const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
const FLAG_HCRC: u8 = 2;
const FLAG_EXTRA: u8 = 4;
const FLAG_NAME: u8 = 8;
const FLAG_COMMENT: u8 = 16;

impl Codec for Gzip {
    type Settings = Settings;

    fn validate_settings(settings: &Settings) -> Result<(), String> {
        if settings.level > 10 { Err(format!("level {} is not within 0..=10", settings.level)) } else { Ok(()) }
    }

    fn encode(_ctx: &Context, data: Vec<u8>, settings: &Settings) -> Result<Vec<u8>, String> {
        let mut out = HEADER.to_vec();
        out.extend(miniz_oxide::deflate::compress_to_vec(&data, settings.level));
        out.extend(crc32(&data).to_le_bytes());
        out.extend((data.len() as u32).to_le_bytes());
        Ok(out)
    }

    fn decode(_ctx: &Context, data: Vec<u8>, settings: &Settings) -> Result<Vec<u8>, String> {
        let body_start = header_len(&data)?;
        let trailer = data.len().checked_sub(8).filter(|&t| t >= body_start).ok_or("gzip data is truncated")?;
        let decoded =
            miniz_oxide::inflate::decompress_to_vec_with_limit(&data[body_start..trailer], settings.max_decoded_bytes)
                .map_err(|err| format!("gzip data does not inflate: {:?}", err.status))?;
        let word = |at: usize| u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
        if word(trailer) != crc32(&decoded) || word(trailer + 4) != decoded.len() as u32 {
            return Err("gzip checksum mismatch: the data was corrupted".into());
        }
        Ok(decoded)
    }
}

/// Length of the gzip header, skipping the optional fields other writers add.
fn header_len(data: &[u8]) -> Result<usize, String> {
    if data.len() < 10 || data[0..3] != HEADER[0..3] {
        return Err("not gzip data (bad magic or method)".into());
    }
    let flags = data[3];
    let mut at = 10;
    let truncated = || "gzip header is truncated".to_string();
    if flags & FLAG_EXTRA != 0 {
        let len = data.get(at..at + 2).ok_or_else(truncated)?;
        at += 2 + u16::from_le_bytes([len[0], len[1]]) as usize;
    }
    for flag in [FLAG_NAME, FLAG_COMMENT] {
        if flags & flag != 0 {
            at += data.get(at..).ok_or_else(truncated)?.iter().position(|&b| b == 0).ok_or_else(truncated)? + 1;
        }
    }
    if flags & FLAG_HCRC != 0 {
        at += 2;
    }
    if at > data.len() { Err(truncated()) } else { Ok(at) }
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

maestro_plugin::export_codec!(Gzip);

#[cfg(test)]
mod tests {
    use maestro_plugin::testing;

    use super::*;

    fn bundle_data() -> Vec<u8> {
        let manifests: Vec<_> =
            (0..50).map(|i| json!({"kind": "ConfigMap", "metadata": {"name": format!("c{i}")}})).collect();
        json!({"manifests": manifests}).to_string().into_bytes()
    }

    #[test]
    fn data_round_trips_smaller() {
        let data = bundle_data();
        let encoded = testing::encode::<Gzip>(&data, &json!({})).unwrap();
        assert!(encoded.len() * 4 < data.len(), "{} -> {}", data.len(), encoded.len());
        assert_eq!(testing::decode::<Gzip>(&encoded, &json!({})).unwrap(), data);
    }

    #[test]
    fn the_check_value_matches_the_standard_crc32() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn corrupted_truncated_and_oversized_data_is_refused() {
        let data = bundle_data();
        let mut encoded = testing::encode::<Gzip>(&data, &json!({"level": 1})).unwrap();
        assert!(testing::decode::<Gzip>(&encoded[..12], &json!({})).is_err());
        assert!(testing::decode::<Gzip>(&encoded, &json!({"max_decoded_bytes": 100})).is_err());
        let last = encoded.len() - 5;
        encoded[last] ^= 0xff;
        assert!(testing::decode::<Gzip>(&encoded, &json!({})).unwrap_err().contains("checksum"));
        assert!(testing::decode::<Gzip>(b"{\"plain\": true}", &json!({})).unwrap_err().contains("not gzip"));
    }

    #[test]
    fn a_level_above_ten_is_refused_in_settings() {
        assert!(testing::codec_settings::<Gzip>(&json!({"level": 11})).is_err());
    }
}
