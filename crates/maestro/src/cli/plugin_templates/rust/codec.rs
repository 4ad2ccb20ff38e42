//! {{name}}: a Maestro codec. This one XORs every byte with a key byte from settings, to show
//! the shape; replace `encode` and `decode` with a real transformation. `decode` must undo
//! `encode` exactly.

use maestro_plugin::prelude::*;

pub struct {{Type}};

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub key: u8,
}

impl Codec for {{Type}} {
    type Settings = Settings;

    fn encode(_ctx: &Context, data: Vec<u8>, settings: &Settings) -> Result<Vec<u8>, String> {
        Ok(data.into_iter().map(|b| b ^ settings.key).collect())
    }

    fn decode(_ctx: &Context, data: Vec<u8>, settings: &Settings) -> Result<Vec<u8>, String> {
        Ok(data.into_iter().map(|b| b ^ settings.key).collect())
    }
}

maestro_plugin::export_codec!({{Type}});

#[cfg(test)]
mod tests {
    use maestro_plugin::testing;

    use super::*;

    #[test]
    fn data_round_trips() {
        let settings = json!({"key": 42});
        let encoded = testing::encode::<{{Type}}>(b"hello", &settings).unwrap();
        assert_ne!(encoded, b"hello");
        assert_eq!(testing::decode::<{{Type}}>(&encoded, &settings).unwrap(), b"hello");
    }
}
