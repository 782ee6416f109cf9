//! `--unix-socket`: the real binary serves HTTP over a real Unix domain socket with the mode
//! asked for, replaces a socket file left by a server that is gone, refuses one in use or a
//! path that is not a socket, and removes its socket at exit.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::net::get_unix;
use crate::common::{append, wait_until};

/// Starts the binary on `socket` (and port 0) for `log`; returns once it printed the socket.
fn start(socket: &Path, log: &Path, args: &[&str]) -> Child {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_cometail"))
        .args(["--port", "0", "--unix-socket"])
        .arg(socket)
        .args(args)
        .arg(log)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap_or_default();
            if line.contains("unix:") {
                let _ = tx.send(line);
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("cometail prints its socket");
    assert!(line.contains(&socket.display().to_string()), "{line}");
    child
}

fn stop(mut child: Child) {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let _ = child.wait();
}

#[tokio::test]
async fn http_over_a_unix_socket_with_its_mode_and_removed_at_exit() {
    let dir = tempfile::tempdir().unwrap();
    let (socket, log) = (dir.path().join("cometail.sock"), dir.path().join("app.log"));
    append(&log, "");
    let child = start(&socket, &log, &["--unix-socket-mode", "660"]);
    let meta = std::fs::symlink_metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(get_unix(&socket, "/healthz").await, (200, "ok\n".into()));
    append(&log, "over the socket\n");
    wait_until(
        "the line is read over the socket",
        Duration::from_secs(10),
        || async {
            get_unix(&socket, "/api/streams/app.log/lines?last=1")
                .await
                .1
                .contains("over the socket")
        },
    )
    .await;
    stop(child);
    assert!(!socket.exists(), "the socket file is removed at exit");
}

#[tokio::test]
async fn a_stale_socket_is_replaced_and_one_in_use_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (socket, log) = (dir.path().join("cometail.sock"), dir.path().join("app.log"));
    // A socket file whose server is gone: nothing accepts on it.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let child = start(&socket, &log, &[]);
    assert_eq!(
        std::fs::symlink_metadata(&socket)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert_eq!(get_unix(&socket, "/healthz").await.0, 200);

    let second = Command::new(env!("CARGO_BIN_EXE_cometail"))
        .args(["--port", "0", "--unix-socket"])
        .arg(&socket)
        .arg(&log)
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("--unix-socket") && err.contains("listening"),
        "{err}"
    );
    assert_eq!(
        get_unix(&socket, "/healthz").await.0,
        200,
        "the first still serves"
    );
    stop(child);
}

#[test]
fn a_path_that_is_not_a_socket_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "keep me").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cometail"))
        .args(["--port", "0", "--unix-socket"])
        .arg(&path)
        .arg(dir.path().join("app.log"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a socket"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
    let bad = Command::new(env!("CARGO_BIN_EXE_cometail"))
        .args([
            "--unix-socket",
            "/tmp/x.sock",
            "--unix-socket-mode",
            "9",
            "a.log",
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
