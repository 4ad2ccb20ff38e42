//! Settings of `maestro server` and `maestro migrate`: flags, `MAESTRO_*` environment variables
//! and an optional TOML file, in that order of precedence. The file uses the flags' names
//! (`database-url = "postgres://..."`), so there is one name per setting everywhere.

use std::collections::HashMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;

use maestro_hub::HubConfig;
use maestro_hub::api::Limits;
use maestro_hub::api::auth::AuthConfig;
use maestro_store::DbOptions;

#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// Database: postgres://user:password@host/db, or sqlite://path. Defaults to an SQLite
    /// file in the data directory, created on first start.
    #[arg(long, env = "MAESTRO_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Where the embedded defaults keep their files [default: $XDG_DATA_HOME/maestro or ~/.local/share/maestro].
    #[arg(long, env = "MAESTRO_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Most connections the hub opens to the database.
    #[arg(long, env = "MAESTRO_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,
    /// Bound on connecting, waiting for a connection, and each statement.
    #[arg(long, env = "MAESTRO_DB_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub db_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("config file {path}: {message}")]
    File { path: String, message: String },
    #[error("--mqtt-password-file {path}: {source}")]
    MqttPassword { path: String, source: std::io::Error },
    #[error("--mqtt-broker-users {path}: {message}")]
    BrokerUsers { path: String, message: String },
    #[error("--mqtt-share-group-file {path}: {source}")]
    ShareGroupFile { path: String, source: std::io::Error },
    #[error(
        "--mqtt-share-group {0:?}: a shared subscription group is letters, digits, '-' and '_' (no '/', '+' or '#')"
    )]
    ShareGroup(String),
}

impl DatabaseArgs {
    /// The URL to open: the one given, or the embedded SQLite file (its directory created).
    pub fn url(&self) -> Result<String, ConfigError> {
        if let Some(url) = &self.database_url {
            return Ok(url.clone());
        }
        let dir = self.data_dir.clone().unwrap_or_else(default_data_dir);
        std::fs::create_dir_all(&dir)
            .map_err(|source| ConfigError::DataDir { path: dir.display().to_string(), source })?;
        Ok(format!("sqlite://{}", dir.join("maestro.db").display()))
    }

    pub fn options(&self) -> DbOptions {
        DbOptions { max_connections: self.db_max_connections, timeout: self.db_timeout }
    }

    /// The data directory: the one given, or the default.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(default_data_dir)
    }
}

/// `$XDG_DATA_HOME/maestro`, else `~/.local/share/maestro`.
pub fn default_data_dir() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("maestro");
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => PathBuf::from(home).join(".local/share/maestro"),
        None => PathBuf::from(".maestro"),
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// A TOML file of settings named like these flags (e.g. `bind = "127.0.0.1:8000"`);
    /// flags and environment variables win over it.
    #[arg(long, env = "MAESTRO_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address of the REST API. Without authentication only a loopback address is allowed.
    #[arg(long, env = "MAESTRO_BIND", default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Largest page a list request may ask for (`size`).
    #[arg(long, env = "MAESTRO_MAX_PAGE_SIZE", default_value_t = 1000)]
    pub max_page_size: i64,
    /// Largest request body, in bytes; larger ones get 413.
    #[arg(long, env = "MAESTRO_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Largest single manifest, in bytes.
    #[arg(long, env = "MAESTRO_MAX_MANIFEST_BYTES", default_value_t = 512 * 1024)]
    pub max_manifest_bytes: usize,
    /// Most manifests in one bundle.
    #[arg(long, env = "MAESTRO_MAX_MANIFESTS", default_value_t = 200)]
    pub max_manifests: usize,
    /// A request still running after this answers 503.
    #[arg(long, env = "MAESTRO_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// Force-delete a bundle whose delete no agent confirmed for this long (e.g. `1h`): the
    /// way out of deletes whose cluster is gone for good. Never when unset.
    #[arg(long, env = "MAESTRO_STALE_DELETE_AFTER", value_parser = humantime::parse_duration)]
    pub stale_delete_after: Option<Duration>,
    /// File of accepted bearer tokens, one per line ('#' comments). Turns authentication on.
    #[arg(long, env = "MAESTRO_AUTH_TOKEN_FILE")]
    pub auth_token_file: Option<PathBuf>,
    /// File holding the HS256 secret that signs accepted JWTs. Turns authentication on.
    #[arg(long, env = "MAESTRO_JWT_HS256_SECRET_FILE")]
    pub jwt_hs256_secret_file: Option<PathBuf>,
    /// PEM file of the RSA public key that verifies RS256 JWTs. Turns authentication on.
    #[arg(long, env = "MAESTRO_JWT_RS256_PUBLIC_KEY_FILE")]
    pub jwt_rs256_public_key_file: Option<PathBuf>,
    /// Required `iss` claim of JWTs.
    #[arg(long, env = "MAESTRO_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim of JWTs.
    #[arg(long, env = "MAESTRO_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    #[command(flatten)]
    pub transport: TransportArgs,
    /// Directory of WebAssembly plugins (`<name>.wasm`, optional `<name>.toml`, `policies.toml`),
    /// watched for changes. Without it no plugin runs.
    #[arg(long, env = "MAESTRO_PLUGIN_DIR")]
    pub plugin_dir: Option<PathBuf>,
    /// Where compiled plugins are cached [default: <plugin-dir>/.cache].
    #[arg(long, env = "MAESTRO_PLUGIN_CACHE_DIR")]
    pub plugin_cache_dir: Option<PathBuf>,
}

/// How to prove who we are to an MQTT broker: the same flags for `maestro server` and
/// `maestro agent`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MqttAuthArgs {
    /// Username at the broker.
    #[arg(long, env = "MAESTRO_MQTT_USERNAME")]
    pub mqtt_username: Option<String>,
    /// File holding the broker password (first line); never logged.
    #[arg(long, env = "MAESTRO_MQTT_PASSWORD_FILE")]
    pub mqtt_password_file: Option<PathBuf>,
    /// PEM CA bundle that signs the broker's certificate (mqtts://) [default: the system's CA
    /// certificates].
    #[arg(long, env = "MAESTRO_MQTT_CA_FILE")]
    pub mqtt_ca_file: Option<PathBuf>,
    /// PEM client certificate, for brokers that require one (with --mqtt-key-file).
    #[arg(long, env = "MAESTRO_MQTT_CERT_FILE")]
    pub mqtt_cert_file: Option<PathBuf>,
    /// PEM key of --mqtt-cert-file.
    #[arg(long, env = "MAESTRO_MQTT_KEY_FILE")]
    pub mqtt_key_file: Option<PathBuf>,
}

impl MqttAuthArgs {
    /// The connection to `url` with these credentials; reads the password file.
    pub fn mqtt_config(&self, url: String) -> Result<maestro_wire::mqtt::MqttConfig, ConfigError> {
        let password = match &self.mqtt_password_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::MqttPassword { path: path.display().to_string(), source })?;
                Some(text.lines().next().unwrap_or_default().to_string())
            }
            None => None,
        };
        Ok(maestro_wire::mqtt::MqttConfig {
            username: self.mqtt_username.clone(),
            password,
            ca_file: self.mqtt_ca_file.clone(),
            cert_file: self.mqtt_cert_file.clone(),
            key_file: self.mqtt_key_file.clone(),
            ..maestro_wire::mqtt::MqttConfig::new(url, String::new())
        })
    }
}

/// How `maestro server` reaches agents: an external MQTT 5 broker, or the embedded one.
#[derive(Debug, Clone, clap::Args)]
pub struct TransportArgs {
    /// External MQTT 5 broker, mqtt://host:port or mqtts://host:port. Without it the hub runs
    /// an embedded broker on 127.0.0.1 (see --mqtt-listen).
    #[arg(long, env = "MAESTRO_MQTT_URL")]
    pub mqtt_url: Option<String>,
    #[command(flatten)]
    pub auth: MqttAuthArgs,
    /// Loopback address of the embedded broker [default: a free port on 127.0.0.1, logged].
    #[arg(long, env = "MAESTRO_MQTT_LISTEN")]
    pub mqtt_listen: Option<SocketAddr>,
    /// The `<source>` of the topics, sources/<source>/consumers/<consumer>/...
    #[arg(long, env = "MAESTRO_SOURCE", default_value = "maestro")]
    pub source: String,
    /// Most entries in one resync message.
    #[arg(long, env = "MAESTRO_RESYNC_MAX_ENTRIES", default_value_t = 1000)]
    pub resync_max_entries: usize,
    /// Largest resync message, in bytes (stay under the broker's packet limit).
    #[arg(long, env = "MAESTRO_RESYNC_MAX_BYTES", default_value_t = 256 * 1024)]
    pub resync_max_bytes: usize,
    /// How often the hub asks agents to re-send statuses it lacks (also done on every connect).
    #[arg(long, env = "MAESTRO_STATUS_RESYNC_INTERVAL", default_value = "5m", value_parser = humantime::parse_duration)]
    pub status_resync_interval: Duration,
    /// Ask an agent again for a change it has not confirmed for this long (a status of a new
    /// version, a delete's `Deleted`): an answer lost on the way is recovered within a few
    /// times this, not at the next status resync; `0` turns it off.
    #[arg(long, env = "MAESTRO_CONFIRM_AFTER", default_value = "30s", value_parser = humantime::parse_duration)]
    pub confirm_after: Duration,
    /// The shared-subscription group of the hubs (`$share/<group>/...agentevents`); empty: no
    /// sharing (one hub). A broker's ACL file cannot stop a client from joining a group it can
    /// name, and a member that may not read takes its share of agent events with it: with
    /// several hubs, make it a secret (see --mqtt-share-group-file).
    #[arg(long, env = "MAESTRO_MQTT_SHARE_GROUP", default_value = maestro_hub::transport::DEFAULT_SHARE_GROUP)]
    pub mqtt_share_group: String,
    /// File holding the shared-subscription group (a secret shared by the hubs); wins over
    /// --mqtt-share-group.
    #[arg(long, env = "MAESTRO_MQTT_SHARE_GROUP_FILE")]
    pub mqtt_share_group_file: Option<PathBuf>,
    /// The embedded broker's agents, one `consumer:password` line each ('#' comments). With
    /// it, or whenever the API requires authentication, the embedded broker requires a login
    /// and keeps each agent to its own consumer's topics.
    #[arg(long, env = "MAESTRO_MQTT_BROKER_USERS")]
    pub mqtt_broker_users: Option<PathBuf>,
}

impl TransportArgs {
    /// The embedded broker's agents: from --mqtt-broker-users, or none but the hub when the
    /// API requires authentication (`api_auth`); `None` leaves the broker open.
    pub fn embedded_users(&self, api_auth: bool) -> Result<Option<HashMap<String, String>>, ConfigError> {
        let Some(path) = &self.mqtt_broker_users else {
            if api_auth && self.mqtt_url.is_none() {
                tracing::warn!(
                    "the API requires authentication, so the embedded MQTT broker does too: \
                    no agent can log in until --mqtt-broker-users names them"
                );
                return Ok(Some(HashMap::new()));
            }
            return Ok(None);
        };
        let failed = |message: String| ConfigError::BrokerUsers { path: path.display().to_string(), message };
        let text = std::fs::read_to_string(path).map_err(|err| failed(err.to_string()))?;
        parse_broker_users(&text).map(Some).map_err(failed)
    }

    /// The group from the file when one is given, else the flag; checked either way.
    fn share_group(&self) -> Result<String, ConfigError> {
        let group = match &self.mqtt_share_group_file {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|source| ConfigError::ShareGroupFile { path: path.display().to_string(), source })?
                .trim()
                .to_string(),
            None => self.mqtt_share_group.clone(),
        };
        if !group.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(ConfigError::ShareGroup(group));
        }
        Ok(group)
    }

    pub fn transport_config(&self) -> Result<maestro_hub::transport::TransportConfig, ConfigError> {
        // Read even for the embedded broker, so that a wrong --mqtt-password-file fails at start.
        let mqtt = self.auth.mqtt_config(self.mqtt_url.clone().unwrap_or_default())?;
        let mqtt = self.mqtt_url.is_some().then_some(mqtt);
        Ok(maestro_hub::transport::TransportConfig {
            share_group: self.share_group()?,
            mqtt,
            listen: self.mqtt_listen,
            source: self.source.clone(),
            resync: maestro_hub::transport::resync::ResyncLimits {
                max_entries: self.resync_max_entries,
                max_bytes: self.resync_max_bytes,
            },
            status_resync_interval: self.status_resync_interval,
            confirm_after: self.confirm_after,
            ..Default::default()
        })
    }
}

impl ServerArgs {
    pub fn hub_config(&self) -> Result<HubConfig, ConfigError> {
        let defaults = Limits::default();
        Ok(HubConfig {
            bind: self.bind,
            database_url: self.database.url()?,
            db: self.database.options(),
            limits: Limits {
                max_page_size: self.max_page_size,
                max_body_bytes: self.max_body_bytes,
                request_timeout: self.request_timeout,
                stale_delete_after: self.stale_delete_after,
                manifests: maestro_model::validate::Limits {
                    max_manifest_bytes: self.max_manifest_bytes,
                    max_manifests: self.max_manifests,
                    ..defaults.manifests
                },
            },
            auth: AuthConfig {
                token_file: self.auth_token_file.clone(),
                jwt_hs256_secret_file: self.jwt_hs256_secret_file.clone(),
                jwt_rs256_public_key_file: self.jwt_rs256_public_key_file.clone(),
                jwt_issuer: self.jwt_issuer.clone(),
                jwt_audience: self.jwt_audience.clone(),
            },
            plugins: self.plugin_dir.clone().map(|dir| {
                let mut plugins = maestro_plugins::PluginConfig::new(dir);
                if let Some(cache) = &self.plugin_cache_dir {
                    plugins.cache_dir = cache.clone();
                }
                plugins
            }),
        })
    }
}

/// Turns a config file into extra flags for the settings that neither a flag nor an
/// environment variable set, so precedence is flag > environment > file > default.
///
/// `command` is the subcommand the file configures and `matches` its first parse.
pub fn flags_from_file(
    path: &Path,
    command: &clap::Command,
    matches: &clap::ArgMatches,
) -> Result<Vec<OsString>, ConfigError> {
    let file_error = |message: String| ConfigError::File { path: path.display().to_string(), message };
    let text = std::fs::read_to_string(path).map_err(|err| file_error(err.to_string()))?;
    let table: toml::Table = toml::from_str(&text).map_err(|err| file_error(err.to_string()))?;
    let mut flags = Vec::new();
    for (key, value) in table {
        let id = key.replace('-', "_");
        let Some(arg) = command.get_arguments().find(|a| a.get_id().as_str() == id && a.get_long().is_some()) else {
            let known: Vec<String> = command
                .get_arguments()
                .filter_map(|a| a.get_long().map(str::to_string))
                .filter(|l| l != "config")
                .collect();
            return Err(file_error(format!("unknown setting '{key}'; known settings: {}", known.join(", "))));
        };
        if id == "config" {
            return Err(file_error("a config file cannot name another config file".into()));
        }
        let set_elsewhere =
            matches!(matches.value_source(&id), Some(ValueSource::CommandLine) | Some(ValueSource::EnvVariable));
        if set_elsewhere {
            continue;
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(file_error(format!("setting '{key}' must be a string, number or boolean, found {other}")));
            }
        };
        let long = arg.get_long().unwrap_or(&id);
        flags.push(OsString::from(format!("--{long}={text}")));
    }
    Ok(flags)
}

/// `consumer:password` lines; blank lines and `#` comments skipped.
fn parse_broker_users(text: &str) -> Result<HashMap<String, String>, String> {
    let mut users = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, password)) = line.split_once(':').filter(|(u, p)| !u.is_empty() && !p.is_empty()) else {
            return Err(format!("line {}: expected consumer:password", n + 1));
        };
        if user == maestro_hub::transport::EMBEDDED_HUB_USER {
            return Err(format!("line {}: {user} is the hub's own user", n + 1));
        }
        if users.insert(user.to_string(), password.to_string()).is_some() {
            return Err(format!("line {}: {user} is listed twice", n + 1));
        }
    }
    Ok(users)
}

#[cfg(test)]
mod broker_users_tests {
    use super::parse_broker_users;

    #[test]
    fn broker_users_are_consumer_password_lines_and_errors_name_the_line() {
        let users = parse_broker_users("# agents\ncluster1:s3cr:et\n\ncluster2:pw\n").expect("parses");
        assert_eq!(users.get("cluster1").map(String::as_str), Some("s3cr:et"));
        assert_eq!(users.len(), 2);
        assert_eq!(parse_broker_users("cluster1\n").unwrap_err(), "line 1: expected consumer:password");
        assert!(parse_broker_users("a:1\na:2").unwrap_err().contains("line 2"));
        assert!(parse_broker_users("maestro-hub:x").is_err());
    }
}
