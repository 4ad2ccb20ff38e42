//! Who may call `/api`: nobody needs credentials when authentication is off, which the hub only
//! allows on a loopback address; otherwise a bearer token from a token file or a JWT signed
//! with the configured HS256 secret or RS256 key. Tokens are never logged.

use std::path::{Path, PathBuf};

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use sha2::{Digest, Sha256};

use super::ApiState;
use super::error::ApiError;

/// Where credentials are configured; all empty means authentication is off.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    pub token_file: Option<PathBuf>,
    pub jwt_hs256_secret_file: Option<PathBuf>,
    pub jwt_rs256_public_key_file: Option<PathBuf>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("{flag} {path}: {source}")]
    Read { flag: &'static str, path: String, source: std::io::Error },
    #[error("--auth-token-file {0}: no tokens in it (one token per line; '#' starts a comment)")]
    NoTokens(String),
    #[error("--jwt-rs256-public-key-file {path}: not a PEM RSA public key: {source}")]
    BadKey { path: String, source: jsonwebtoken::errors::Error },
    #[error("--jwt-hs256-secret-file and --jwt-rs256-public-key-file cannot both be set")]
    TwoJwtKeys,
    #[error("--jwt-issuer and --jwt-audience need --jwt-hs256-secret-file or --jwt-rs256-public-key-file")]
    ClaimsWithoutKey,
}

/// A JWT key with the checks its tokens must pass (algorithm, expiry, issuer, audience).
pub type JwtVerifier = (DecodingKey, Validation);

pub enum Auth {
    Off,
    On { token_digests: Vec<[u8; 32]>, jwt: Option<Box<JwtVerifier>> },
}

impl Auth {
    pub fn from_config(config: &AuthConfig) -> Result<Auth, AuthConfigError> {
        let token_digests = match &config.token_file {
            Some(path) => read_tokens(path)?,
            None => Vec::new(),
        };
        let jwt = jwt_verifier(config)?.map(Box::new);
        if token_digests.is_empty() && jwt.is_none() {
            return Ok(Auth::Off);
        }
        Ok(Auth::On { token_digests, jwt })
    }

    pub fn is_on(&self) -> bool {
        matches!(self, Auth::On { .. })
    }

    /// Accepts or refuses a bearer token, with a reason a client can act on.
    pub fn check(&self, bearer: Option<&str>) -> Result<(), String> {
        let Auth::On { token_digests, jwt } = self else { return Ok(()) };
        let Some(token) = bearer else {
            return Err("missing credentials: send Authorization: Bearer <token>".into());
        };
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Compare every digest in full so the time taken does not tell how close a guess was.
        let matched = token_digests.iter().fold(false, |found, known| found | constant_time_eq(known, &digest));
        if matched {
            return Ok(());
        }
        match jwt {
            Some(verifier) => jsonwebtoken::decode::<serde_json::Value>(token, &verifier.0, &verifier.1)
                .map(|_| ())
                .map_err(|err| format!("invalid token: {err}")),
            None => Err("invalid token".into()),
        }
    }
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn read(flag: &'static str, path: &Path) -> Result<String, AuthConfigError> {
    std::fs::read_to_string(path).map_err(|source| AuthConfigError::Read {
        flag,
        path: path.display().to_string(),
        source,
    })
}

fn read_tokens(path: &Path) -> Result<Vec<[u8; 32]>, AuthConfigError> {
    let text = read("--auth-token-file", path)?;
    let digests: Vec<[u8; 32]> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|token| Sha256::digest(token.as_bytes()).into())
        .collect();
    if digests.is_empty() {
        return Err(AuthConfigError::NoTokens(path.display().to_string()));
    }
    Ok(digests)
}

fn jwt_verifier(config: &AuthConfig) -> Result<Option<JwtVerifier>, AuthConfigError> {
    let (key, algorithm) = match (&config.jwt_hs256_secret_file, &config.jwt_rs256_public_key_file) {
        (Some(_), Some(_)) => return Err(AuthConfigError::TwoJwtKeys),
        (Some(path), None) => {
            let secret = read("--jwt-hs256-secret-file", path)?;
            (DecodingKey::from_secret(secret.trim_end().as_bytes()), Algorithm::HS256)
        }
        (None, Some(path)) => {
            let pem = read("--jwt-rs256-public-key-file", path)?;
            let key = DecodingKey::from_rsa_pem(pem.as_bytes())
                .map_err(|source| AuthConfigError::BadKey { path: path.display().to_string(), source })?;
            (key, Algorithm::RS256)
        }
        (None, None) if config.jwt_issuer.is_some() || config.jwt_audience.is_some() => {
            return Err(AuthConfigError::ClaimsWithoutKey);
        }
        (None, None) => return Ok(None),
    };
    let mut validation = Validation::new(algorithm);
    match &config.jwt_audience {
        Some(audience) => validation.set_audience(&[audience]),
        None => validation.validate_aud = false,
    }
    if let Some(issuer) = &config.jwt_issuer {
        validation.set_issuer(&[issuer]);
    }
    Ok(Some((key, validation)))
}

/// Refuses `/api` requests without valid credentials, in Maestro's error shape.
pub async fn require(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    match state.auth.check(bearer) {
        Ok(()) => next.run(request).await,
        Err(reason) => {
            let mut response = ApiError::unauthenticated(reason).into_response();
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn token_auth(contents: &str) -> Auth {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(contents.as_bytes()).unwrap();
        Auth::from_config(&AuthConfig { token_file: Some(file.path().into()), ..Default::default() }).unwrap()
    }

    #[test]
    fn no_credentials_configured_means_off() {
        assert!(!Auth::from_config(&AuthConfig::default()).unwrap().is_on());
    }

    #[test]
    fn token_file_accepts_listed_tokens_only() {
        let auth = token_auth("# operators\nalpha\n\nbeta\n");
        assert!(auth.check(Some("alpha")).is_ok());
        assert!(auth.check(Some("beta")).is_ok());
        assert!(auth.check(Some("gamma")).is_err());
        assert!(auth.check(None).unwrap_err().contains("missing credentials"));
    }

    #[test]
    fn an_empty_token_file_is_a_configuration_error() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"# nothing\n").unwrap();
        let err = Auth::from_config(&AuthConfig { token_file: Some(file.path().into()), ..Default::default() });
        assert!(matches!(err, Err(AuthConfigError::NoTokens(_))));
    }
}
