//! `--bind`: host names listened on at each address they resolve to, repeated flags, IPv4 and
//! IPv6, and a clear exit 2 for a name that does not resolve. The real binary.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Starts the binary with `args` and returns it with the URLs it printed (`count` of them).
fn start(args: &[&str], count: usize) -> (std::process::Child, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cometail"))
        .args(["--port", "0"])
        .args(args)
        .arg(dir.path().join("app.log"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut urls = Vec::new();
    while urls.len() < count {
        let mut line = String::new();
        // The server prints its URLs before it serves: a read returns or the child is gone.
        assert!(out.read_line(&mut line).unwrap() > 0, "cometail exited");
        if let Some(u) = line.split_whitespace().find(|w| w.starts_with("http://")) {
            urls.push(u.to_owned());
        }
    }
    (child, urls)
}

#[tokio::test]
async fn a_host_name_and_repeated_binds_listen_on_every_address() {
    let (mut child, urls) = start(&["--bind", "localhost", "--bind", "::1"], 2);
    let client = reqwest::Client::new();
    assert!(
        urls.iter().any(|u| u.starts_with("http://127.0.0.1:")),
        "{urls:?}"
    );
    assert!(
        urls.iter().any(|u| u.starts_with("http://[::1]:")),
        "{urls:?}"
    );
    for url in &urls {
        let r = client.get(format!("{url}healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
        let streams = client
            .get(format!("{url}api/streams"))
            .send()
            .await
            .unwrap();
        assert_eq!(streams.status(), 200, "{url}");
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_name_that_does_not_resolve_is_exit_2_naming_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_cometail"))
        .args(["--bind", "no-such-host.invalid", "app.log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--bind") && err.contains("no-such-host.invalid"),
        "{err}"
    );
}
