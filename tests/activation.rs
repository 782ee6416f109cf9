//! systemd socket activation (`LISTEN_FDS`): the real binary, started by the real
//! `systemd-socket-activate` (Debian's systemd package), serves live lines on the TCP and Unix
//! sockets it passes and `/metrics` alone on the one named `metrics`, binds neither `--bind`
//! nor `--unix-socket`, leaves the socket file to its maker, and its `--cmd` children inherit
//! neither the sockets nor the variables. A passed descriptor that is not a listening stream
//! socket, or a public one without authentication, is exit 2 naming it; variables meant for
//! another process are ignored. A hub serves the sockets passed to it as well.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use crate::common::net::get_unix;
use crate::common::sse::Connection;
use crate::common::{Reaped, append};

/// How long a started process has to say something.
const SAY: Duration = Duration::from_secs(20);

/// The lines of a child's pipe, read on a thread of their own.
fn lines(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The first line of `rx` that contains `needle`, waited for up to [`SAY`]; panics with the
/// lines seen instead.
fn expect_line(rx: &Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + SAY;
    let mut seen = Vec::new();
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if line.contains(needle) {
            return line;
        }
        seen.push(line);
    }
    panic!("no line with {needle:?} within {SAY:?}; saw {seen:#?}");
}

/// A socket for `systemd-socket-activate -l`: an IP address (a free port is picked) or a path.
enum Listen<'a> {
    Ip(&'static str),
    Path(&'a Path),
}

/// `systemd-socket-activate` listening, the binary not started yet (the first connection or
/// datagram starts it, in the same process: `LISTEN_PID` is its pid).
struct Activator {
    child: Reaped,
    /// The TCP (or UDP) addresses, in the order given.
    addrs: Vec<SocketAddr>,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

/// Starts `systemd-socket-activate` with a `-l` per `listen`, its options `options`, and the
/// binary with `args`; returns once it listens on every socket. A port taken between picking
/// and binding it is picked again.
fn activate(listen: &[Listen<'_>], options: &[&str], args: &[&str]) -> Activator {
    for _ in 0..5 {
        let mut command = Command::new("systemd-socket-activate");
        let mut addrs = Vec::new();
        for socket in listen {
            command.arg("-l");
            match socket {
                Listen::Ip(ip) => {
                    let probe = TcpListener::bind((*ip, 0)).unwrap();
                    let addr = probe.local_addr().unwrap();
                    drop(probe);
                    addrs.push(addr);
                    command.arg(addr.to_string());
                }
                Listen::Path(path) => {
                    command.arg(path);
                }
            }
        }
        let mut child = Reaped(
            command
                .args(options)
                .arg(env!("CARGO_BIN_EXE_cometail"))
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("systemd-socket-activate runs (Debian's systemd package)"),
        );
        let stdout = lines(child.0.stdout.take().unwrap());
        let stderr = lines(child.0.stderr.take().unwrap());
        // It says "Listening on ADDR as FD." for each socket, or why it cannot.
        let mut listening = 0;
        let deadline = Instant::now() + SAY;
        while listening < listen.len() {
            let line = stderr
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("systemd-socket-activate listens within 20 s");
            assert!(
                !line.contains("Failed") || line.contains("in use"),
                "{line}"
            );
            if line.contains("in use") {
                break;
            }
            listening += line.starts_with("Listening on") as usize;
        }
        if listening == listen.len() {
            return Activator {
                child,
                addrs,
                stdout,
                stderr,
            };
        }
    }
    panic!("five picked ports were taken before systemd-socket-activate could bind them");
}

impl Activator {
    /// How the process ended, within [`SAY`] (it was started by a connection before).
    fn exit_code(mut self) -> Option<i32> {
        let deadline = Instant::now() + SAY;
        while Instant::now() < deadline {
            if let Some(status) = self.child.0.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the activated process did not exit within {SAY:?}");
    }
}

#[tokio::test]
async fn passed_tcp_and_unix_sockets_serve_live_lines_and_no_child_inherits_them() {
    let dir = tempfile::tempdir().unwrap();
    let (log, socket) = (dir.path().join("app.log"), dir.path().join("web.sock"));
    append(&log, "before\n");
    // A port the test holds: were `--bind` still bound, the start would fail on it.
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let held_port = held.local_addr().unwrap().port().to_string();
    // The command lists the descriptors it inherited and the variable it would see.
    let probe = r#"probe=sh -c "ls -l /proc/$$/fd; echo LISTEN_FDS=${LISTEN_FDS-unset}""#;
    let unix = dir.path().join("flag.sock");
    let activator = activate(
        &[
            Listen::Ip("127.0.0.1"),
            Listen::Path(&socket),
            Listen::Ip("127.0.0.1"),
        ],
        &["--fdname=web:proxy:metrics"],
        &[
            "--port",
            &held_port,
            "--unix-socket",
            unix.to_str().unwrap(),
            "--cmd",
            probe,
            log.to_str().unwrap(),
        ],
    );
    let (web, metrics) = (activator.addrs[0], activator.addrs[1]);
    // The first request starts cometail, which answers it on the socket it is handed.
    let client = reqwest::Client::new();
    let url = format!("http://{web}/");
    let events_url = format!("{url}api/streams/app.log/events");
    let events = Connection::open(&client, &events_url, None);
    let mut events = tokio::time::timeout(SAY, events)
        .await
        .expect("cometail answers through the passed socket within 20 s");
    assert_eq!(events.status, 200);
    let (first, _) = events.entries(1, SAY).await;
    assert_eq!(first[0]["text"], "before");
    expect_line(&activator.stdout, "sockets systemd passed");
    expect_line(&activator.stdout, &format!("serving on {url}"));
    expect_line(&activator.stdout, &format!("unix:{}", socket.display()));
    expect_line(
        &activator.stdout,
        &format!("metrics on http://{metrics}/metrics"),
    );
    assert!(!unix.exists(), "--unix-socket is not bound");

    append(&log, "live over the passed socket\n");
    let (live, _) = events.entries(1, SAY).await;
    assert_eq!(live[0]["text"], "live over the passed socket");
    let (status, body) = get_unix(&socket, "/api/streams/app.log/lines?last=1").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("live over the passed socket"), "{body}");

    // `/metrics` alone on the socket named `metrics`.
    let scraped = client
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(scraped.text().await.unwrap().contains("cometail_"));
    let api = client
        .get(format!("http://{metrics}/api/streams"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 404);

    // The command's descriptors are its pipes and /dev/null: no passed socket leaked into it.
    let deadline = Instant::now() + SAY;
    let said = loop {
        let said = client
            .get(format!("{url}api/streams/probe/lines?last=50"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if said.contains("LISTEN_FDS=") {
            break said;
        }
        assert!(
            Instant::now() < deadline,
            "the command's output in 20 s: {said}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(said.contains("LISTEN_FDS=unset"), "{said}");
    assert!(said.contains("pipe:["), "{said}");
    assert!(!said.contains("socket:["), "{said}");

    // Stopped, cometail exits cleanly and leaves the socket file to systemd, which made it.
    drop(events);
    let pid = activator.child.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    assert_eq!(activator.exit_code(), Some(0));
    assert!(socket.exists(), "the passed socket's file is its maker's");
    drop(held);
}

#[tokio::test]
async fn a_public_passed_socket_without_authentication_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let activator = activate(&[Listen::Ip("0.0.0.0")], &[], &[log.to_str().unwrap()]);
    let port = activator.addrs[0].port();
    // The connection starts cometail, which refuses the socket and closes it unanswered.
    let _conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let said = expect_line(&activator.stderr, "cometail: error");
    assert!(
        said.contains(&format!("0.0.0.0:{port}"))
            && said.contains("not a loopback address")
            && said.contains("--public-without-auth"),
        "{said}"
    );
    assert_eq!(activator.exit_code(), Some(2));
}

#[test]
fn descriptors_that_are_not_listening_stream_sockets_are_exit_2_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let log = log.to_str().unwrap();

    // Accept=yes: each connection is passed, already accepted.
    let activator = activate(&[Listen::Ip("127.0.0.1")], &["--accept"], &[log]);
    let _conn = std::net::TcpStream::connect(activator.addrs[0]).unwrap();
    let said = expect_line(&activator.stderr, "cometail: error");
    assert!(
        said.contains(r#"fd 3 ("unknown")"#) && said.contains("TCP socket that is not listening"),
        "{said}"
    );
    // systemd-socket-activate reports its child's exit code.
    expect_line(&activator.stderr, "died with code 2");

    // A datagram socket: the first datagram starts cometail.
    let activator = activate(
        &[Listen::Ip("127.0.0.1")],
        &["--datagram", "--fdname=syslog"],
        &[log],
    );
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"hello", activator.addrs[0]).unwrap();
    let said = expect_line(&activator.stderr, "cometail: error");
    assert!(
        said.contains(r#"fd 3 ("syslog")"#) && said.contains("a socket of another kind"),
        "{said}"
    );
    assert_eq!(activator.exit_code(), Some(2));

    // A regular file as fd 3, from a shell that execs cometail (so LISTEN_PID is its pid).
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "not a socket").unwrap();
    let out = Command::new("sh")
        .args([
            "-c",
            r#"LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=notes exec "$0" "$@" 3<"$NOTES""#,
            env!("CARGO_BIN_EXE_cometail"),
            log,
        ])
        .env("NOTES", &notes)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains(r#"fd 3 ("notes")"#) && said.contains("a regular file"),
        "{said}"
    );
}

#[tokio::test]
async fn a_unix_socket_named_metrics_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let (log, socket) = (dir.path().join("app.log"), dir.path().join("metrics.sock"));
    let activator = activate(
        &[Listen::Path(&socket)],
        &["--fdname=metrics"],
        &[log.to_str().unwrap()],
    );
    // A blocking connect: it returns once the connection is queued. Tokio's connect also
    // reads the socket's error once writable, and that is a reset when cometail has already
    // refused the socket and exited.
    let _conn = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    let said = expect_line(&activator.stderr, "cometail: error");
    assert!(
        said.contains(r#"fd 3 ("metrics")"#) && said.contains("is a Unix socket"),
        "{said}"
    );
    assert_eq!(activator.exit_code(), Some(2));
}

#[tokio::test]
async fn listen_variables_meant_for_another_process_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "not a socket").unwrap();
    // The variables name pid 1 (a shell between systemd and cometail that did not `exec`):
    // cometail binds --bind as usual; adopting fd 3 (a file) would have been exit 2.
    let mut child = Reaped(
        Command::new("sh")
            .args([
                "-c",
                r#"LISTEN_PID=1 LISTEN_FDS=1 exec "$0" "$@" 3<"$NOTES""#,
                env!("CARGO_BIN_EXE_cometail"),
                "--port",
                "0",
            ])
            .arg(dir.path().join("app.log"))
            .env("NOTES", &notes)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = lines(child.0.stdout.take().unwrap());
    let line = expect_line(&stdout, "serving on");
    assert!(!line.contains("systemd"), "{line}");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("{line}"));
    let r = reqwest::Client::new()
        .get(format!("{url}healthz"))
        .timeout(SAY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_serves_the_sockets_systemd_passes() {
    use crate::common::nats::{Nats, Role};
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(dir.path());
    let (log, socket) = (dir.path().join("app.log"), dir.path().join("hub.sock"));
    append(&log, "from the agent\n");
    let _agent = Role::agent(&nats.url, "web-1", &[log.to_str().unwrap()]);
    // A port the test holds: were `--port` still bound, the hub would fail on it.
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let held_port = held.local_addr().unwrap().port().to_string();
    let activator = activate(
        &[Listen::Ip("127.0.0.1"), Listen::Path(&socket)],
        &["--fdname=web:proxy"],
        &["hub", "--nats", &nats.url, "--port", &held_port],
    );
    // The first connection starts the hub, which answers once an agent's entry is in.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let last = "/api/streams/web-1~app.log/lines?last=1";
    let url = format!("http://{}{last}", activator.addrs[0]);
    crate::common::wait_until("the hub serves the passed TCP socket", SAY * 3, || async {
        match client.get(&url).send().await {
            Ok(r) => r.text().await.is_ok_and(|t| t.contains("from the agent")),
            Err(_) => false,
        }
    })
    .await;
    expect_line(&activator.stdout, "sockets systemd passed");
    let (status, body) = get_unix(&socket, last).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("from the agent"), "{body}");
}
