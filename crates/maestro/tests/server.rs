//! The `maestro server` and `maestro migrate` commands as a user runs them: configuration
//! from flags, environment and file, and start-up failures that name the setting to fix.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn maestro() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_maestro"));
    command.env_remove("MAESTRO_BIND").env_remove("MAESTRO_DATABASE_URL").env_remove("MAESTRO_CONFIG");
    command
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Waits until the server answers /healthz on `port`, or its process ends.
fn wait_healthy(child: &mut Child, port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.write_all(b"GET /healthz HTTP/1.0\r\n\r\n");
            let mut reply = String::new();
            let _ = std::io::Read::read_to_string(&mut stream, &mut reply);
            if reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200") {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_config_file_sets_what_flags_and_environment_do_not() {
    let dir = tempfile::tempdir().expect("dir");
    let (file_port, flag_port) = (free_port(), free_port());
    let config = dir.path().join("maestro.toml");
    std::fs::write(
        &config,
        format!("bind = \"127.0.0.1:{file_port}\"\ndata-dir = \"{}\"\nmax-page-size = 50\n", dir.path().display()),
    )
    .expect("write config");

    let mut from_file =
        maestro().args(["server", "--config"]).arg(&config).stderr(Stdio::null()).spawn().expect("spawn");
    assert!(wait_healthy(&mut from_file, file_port), "the file's bind address is used");
    assert!(dir.path().join("maestro.db").exists(), "the file's data directory holds the SQLite database");
    stop(from_file);

    let mut flag_wins = maestro()
        .args(["server", "--config"])
        .arg(&config)
        .arg(format!("--bind=127.0.0.1:{flag_port}"))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    assert!(wait_healthy(&mut flag_wins, flag_port), "a flag wins over the file");
    stop(flag_wins);

    let env_port = free_port();
    let mut env_wins = maestro()
        .args(["server", "--config"])
        .arg(&config)
        .env("MAESTRO_BIND", format!("127.0.0.1:{env_port}"))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    assert!(wait_healthy(&mut env_wins, env_port), "the environment wins over the file");
    stop(env_wins);
}

#[test]
fn an_unknown_setting_in_the_config_file_is_named() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("maestro.toml");
    std::fs::write(&config, "bnid = \"127.0.0.1:1\"\n").expect("write");
    let output = maestro().args(["server", "--config"]).arg(&config).output().expect("run");
    assert!(!output.status.success());
    let stderr = stderr_of(&output);
    assert!(stderr.contains("unknown setting 'bnid'") && stderr.contains("bind"), "{stderr}");
}

#[test]
fn serving_beyond_loopback_without_authentication_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let output = maestro().args(["server", "--bind", "0.0.0.0:0", "--data-dir"]).arg(dir.path()).output().expect("run");
    assert!(!output.status.success());
    assert!(stderr_of(&output).contains("--auth-token-file"), "{}", stderr_of(&output));
}

#[test]
fn a_database_url_of_another_kind_is_refused_naming_the_flag() {
    let output = maestro().args(["migrate", "--database-url", "mysql://root@localhost/x"]).output().expect("run");
    assert!(!output.status.success());
    assert!(stderr_of(&output).contains("--database-url"), "{}", stderr_of(&output));
}

#[test]
fn migrate_prepares_an_sqlite_database_once_and_again_harmlessly() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}/m.db", dir.path().display());
    for _ in 0..2 {
        let output = maestro().args(["migrate", "--database-url", &url]).output().expect("run");
        assert!(output.status.success(), "{}", stderr_of(&output));
    }
    let tables = Command::new("sqlite3").arg(dir.path().join("m.db")).arg(".tables").output();
    if let Ok(tables) = tables {
        let listed = String::from_utf8_lossy(&tables.stdout);
        for table in ["consumers", "resource_bundles", "outbox"] {
            assert!(listed.contains(table), "{table} missing from {listed}");
        }
    }
}

#[test]
fn help_documents_every_server_setting_with_its_environment_variable() {
    let output = maestro().args(["server", "--help"]).output().expect("run");
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--database-url",
        "--data-dir",
        "--bind",
        "--auth-token-file",
        "--jwt-hs256-secret-file",
        "--config",
        "--max-page-size",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    assert!(help.contains("MAESTRO_DATABASE_URL"));
}

#[test]
fn sigterm_stops_the_server_promptly_and_cleanly() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let mut server = maestro()
        .args(["server", "--bind", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir.path())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    assert!(wait_healthy(&mut server, port));
    let sent = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().expect("kill");
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "SIGTERM did not stop the server");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "a requested stop is a clean exit: {status:?}");
}
