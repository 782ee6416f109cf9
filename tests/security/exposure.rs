//! Exposure: the default bind, public binds, where secrets may come from.

use super::*;

#[test]
fn default_bind_is_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cometail"))
        .args(["--port", "0"])
        .arg(dir.path().join("app.log"))
        .env_remove("COMETAIL_BIND")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        line.starts_with("cometail: serving on http://127.0.0.1:"),
        "{line:?}"
    );
}

#[test]
fn public_bind_without_auth_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cometail"))
        .args(["--bind", "0.0.0.0", "--port", "0"])
        .arg(dir.path().join("app.log"))
        .env_remove("COMETAIL_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not a loopback address") && stderr.contains("--public-without-auth"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "it never started serving");
}

#[test]
fn public_bind_with_the_explicit_opt_out_starts_and_warns() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cometail"))
        .args(["--bind", "0.0.0.0", "--port", "0", "--public-without-auth"])
        .arg(dir.path().join("app.log"))
        .env("RUST_LOG", "cometail=warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Other warnings (a file that does not exist yet) may come first.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.contains("without authentication"))
    {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        seen.iter().any(|l| l.contains("without authentication")),
        "{seen:?}"
    );
}

#[test]
fn a_token_from_the_environment_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cometail"))
        .args(["--port", "0"])
        .arg(dir.path().join("app.log"))
        .env("COMETAIL_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(
        !line.contains(TOKEN),
        "a given token is not printed: {line}"
    );
    let a: SocketAddr = line
        .trim()
        .trim_start_matches("cometail: serving on http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (without, with) = rt.block_on(async {
        (
            net::get(a, "/api/streams", &[]).await.status,
            net::get(
                a,
                "/api/streams",
                &[("Authorization", &format!("Bearer {TOKEN}"))],
            )
            .await
            .status,
        )
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!((without, with), (401, 200));
}

#[test]
fn secrets_are_refused_on_the_command_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_cometail"))
        .args(["--token", "abc", "x.log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "there is no --token VALUE flag");
}

// ---------------------------------------------------------------- authentication

#[tokio::test(flavor = "multi_thread")]
async fn generated_token_is_printed_in_the_url_and_works() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("app.log"), "x\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cometail"))
        .args(["--port", "0", "--auth", "token"])
        .arg(dir.path().join("app.log"))
        .env_remove("COMETAIL_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let url = line.trim().trim_start_matches("cometail: serving on ");
    let (base, token) = url
        .split_once("/?token=")
        .expect("the URL carries the token");
    assert_eq!(token.len(), 64, "32 random bytes, hex");
    let a: SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let without = net::get(a, "/api/streams", &[]).await;
    let bearer = format!("Bearer {token}");
    let with = net::get(a, "/api/streams", &[("Authorization", &bearer)]).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(without.status, 401);
    assert_eq!(with.status, 200, "{}", with.body);
}
