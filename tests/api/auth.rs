//! Authentication: off on loopback by default; with a token file or a JWT key every /api route
//! needs valid credentials, while probes and metrics stay open.

use std::io::Write;

use jsonwebtoken::{EncodingKey, Header};
use maestro_hub::api::auth::AuthConfig;
use maestro_tests::{Backend, HubSetup, TestHub};
use serde_json::json;

use crate::assert_error;

fn file(contents: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(contents.as_bytes()).expect("write");
    file
}

async fn status_with(hub: &TestHub, token: Option<&str>) -> maestro_tests::Reply {
    let mut request = hub.client.get(hub.url("/api/maestro/v1/consumers"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    TestHub::reply(request).await
}

#[tokio::test]
async fn with_a_token_file_only_listed_tokens_get_in() {
    let tokens = file("# team tokens\ns3cret-one\ns3cret-two\n");
    let setup = HubSetup {
        auth: AuthConfig { token_file: Some(tokens.path().into()), ..Default::default() },
        ..Default::default()
    };
    let hub = TestHub::start_with(Backend::Sqlite, setup).await;

    let anonymous = status_with(&hub, None).await;
    assert_error(&anonymous, 401, 15);
    assert_eq!(anonymous.headers.get("www-authenticate").and_then(|v| v.to_str().ok()), Some("Bearer"));
    assert_error(&status_with(&hub, Some("guess")).await, 401, 15);
    assert_eq!(status_with(&hub, Some("s3cret-two")).await.status, 200);
    assert_error(&TestHub::reply(hub.client.get(hub.url("/api/maestro/v1/openapi"))).await, 401, 15);

    for open in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(TestHub::reply(hub.client.get(hub.url(open))).await.status, 200, "{open} needs no credentials");
    }
    hub.stop().await;
}

#[tokio::test]
async fn with_an_hs256_key_valid_jwts_get_in() {
    let secret = file("jwt-signing-secret\n");
    let setup = HubSetup {
        auth: AuthConfig {
            jwt_hs256_secret_file: Some(secret.path().into()),
            jwt_issuer: Some("https://sso.example".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let hub = TestHub::start_with(Backend::Sqlite, setup).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let sign = |claims: serde_json::Value, key: &[u8]| {
        jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(key)).expect("token")
    };
    let good = sign(json!({"sub": "ops", "iss": "https://sso.example", "exp": now + 600}), b"jwt-signing-secret");
    assert_eq!(status_with(&hub, Some(&good)).await.status, 200);

    let expired = sign(json!({"sub": "ops", "iss": "https://sso.example", "exp": now - 3600}), b"jwt-signing-secret");
    let reply = status_with(&hub, Some(&expired)).await;
    assert_error(&reply, 401, 15);
    assert!(reply.body["reason"].as_str().unwrap_or("").contains("xpired"), "{}", reply.body);

    let wrong_issuer =
        sign(json!({"sub": "ops", "iss": "https://evil.example", "exp": now + 600}), b"jwt-signing-secret");
    assert_error(&status_with(&hub, Some(&wrong_issuer)).await, 401, 15);
    let wrong_key = sign(json!({"sub": "ops", "iss": "https://sso.example", "exp": now + 600}), b"another-secret");
    assert_error(&status_with(&hub, Some(&wrong_key)).await, 401, 15);
    hub.stop().await;
}

/// A hub on SQLite in `dir` with the given address and authentication.
fn config(dir: &tempfile::TempDir, bind: &str, auth: AuthConfig) -> maestro_hub::HubConfig {
    maestro_hub::HubConfig {
        bind: bind.parse().expect("addr"),
        database_url: format!("sqlite://{}/m.db", dir.path().display()),
        db: Default::default(),
        limits: Default::default(),
        auth,
        plugins: None,
    }
}

#[tokio::test]
async fn without_authentication_the_hub_refuses_to_listen_beyond_loopback() {
    let dir = tempfile::tempdir().expect("dir");
    let err = maestro_hub::start(config(&dir, "0.0.0.0:0", AuthConfig::default())).await.err().expect("refused");
    assert!(err.to_string().contains("--auth-token-file"), "{err}");
}

#[tokio::test]
async fn an_unreadable_token_file_stops_the_hub_with_the_flag_named() {
    let dir = tempfile::tempdir().expect("dir");
    let auth = AuthConfig { token_file: Some(dir.path().join("missing")), ..Default::default() };
    let err = maestro_hub::start(config(&dir, "127.0.0.1:0", auth)).await.err().expect("refused");
    assert!(err.to_string().contains("--auth-token-file"), "{err}");
}

#[tokio::test]
async fn with_an_rs256_public_key_tokens_signed_by_its_private_key_get_in() {
    let dir = tempfile::tempdir().expect("dir");
    let (private, public) = (dir.path().join("key.pem"), dir.path().join("key.pub.pem"));
    let openssl = |args: &[&str]| {
        let status = std::process::Command::new("openssl")
            .args(args)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl is installed");
        assert!(status.success(), "openssl {args:?}");
    };
    openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", &private.to_string_lossy()]);
    openssl(&["pkey", "-in", &private.to_string_lossy(), "-pubout", "-out", &public.to_string_lossy()]);
    let setup = HubSetup {
        auth: AuthConfig {
            jwt_rs256_public_key_file: Some(public),
            jwt_audience: Some("maestro".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let hub = TestHub::start_with(Backend::Sqlite, setup).await;
    let key = EncodingKey::from_rsa_pem(&std::fs::read(&private).expect("key")).expect("rsa key");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let sign = |audience: &str| {
        jsonwebtoken::encode(
            &Header::new(jsonwebtoken::Algorithm::RS256),
            &json!({"sub": "ci", "aud": audience, "exp": now + 600}),
            &key,
        )
        .expect("token")
    };
    assert_eq!(status_with(&hub, Some(&sign("maestro"))).await.status, 200);
    assert_error(&status_with(&hub, Some(&sign("someone-else"))).await, 401, 15);
    let hs256 = jsonwebtoken::encode(
        &Header::default(),
        &json!({"aud": "maestro", "exp": now + 600}),
        &EncodingKey::from_secret(b"x"),
    )
    .expect("token");
    assert_error(&status_with(&hub, Some(&hs256)).await, 401, 15);
    hub.stop().await;
}
