//! Bad input from the issue: an agent with nothing to follow, a host name subjects cannot
//! carry, a second agent claiming a running agent's host, an engine that is down at start (and
//! a SIGTERM while waiting for it), wrong engine credentials. Each is a clear message (exit 2)
//! or a wait that says so, never a crash loop, a silent agent or a slow stop.

use std::time::{Duration, Instant};

use super::{TRAVEL, chain, numbered, texts, write_lines};
use crate::common::nats::{Nats, Role, free_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_without_paths_or_with_an_unfit_host_name_refuses() {
    let (code, err) = Role::run(&["agent", "--nats", "nats://127.0.0.1:1", "--host", "web-1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("nothing to follow"), "{err}");
    for host in ["web 1", "web>1", "a*", "..", "wéb"] {
        let (code, err) = Role::run(&[
            "agent",
            "--nats",
            "nats://127.0.0.1:1",
            "--host",
            host,
            "x.log",
        ]);
        assert_eq!(code, Some(2), "{host}: {err}");
        assert!(
            err.contains("--host") && err.contains("cannot name a host"),
            "{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_agent_cannot_take_a_running_agents_host() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(dir.path());
    let (log, other) = (dir.path().join("app.log"), dir.path().join("other.log"));
    write_lines(&log, 1, 2);
    let _first = Role::agent(&nats.url, "web-1", &[log.to_str().unwrap()]);
    let hub = Role::hub(&nats.url, &[]);
    chain(&hub.url, "web-1~app.log", 2).await;
    // The hub lists a host from its heartbeat: once listed, the first agent's claim stands.
    let listing = format!("{}/api/streams", hub.url);
    crate::common::wait_until("web-1 listed", TRAVEL, || async {
        super::get(&listing)
            .await
            .is_some_and(|l| l.to_string().contains("web-1~app.log"))
    })
    .await;
    let (code, err) = Role::run(&[
        "agent",
        "--nats",
        &nats.url,
        "--host",
        "web-1",
        other.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("another agent is running as host `web-1`"),
        "{err}"
    );
    // The first agent goes on undisturbed.
    write_lines(&log, 3, 4);
    assert_eq!(
        texts(&chain(&hub.url, "web-1~app.log", 4).await),
        numbered(1, 4)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_started_before_the_engine_says_it_waits_then_publishes() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let log = dir.path().join("app.log");
    write_lines(&log, 1, 5);
    let (_agent, stderr) = Role::agent_watched(&url, "web-1", &[log.to_str().unwrap()]);
    let end = Instant::now() + TRAVEL;
    loop {
        let line = stderr
            .recv_timeout(end.saturating_duration_since(Instant::now()))
            .expect("the agent says it waits for the engine");
        if line.contains("waiting for the engine") && line.contains("retrying") {
            break;
        }
    }
    let _nats = Nats::start_with(dir.path(), port, &[]);
    write_lines(&log, 6, 8);
    let hub = Role::hub(&url, &[]);
    assert_eq!(
        texts(&chain(&hub.url, "web-1~app.log", 8).await),
        numbered(1, 8)
    );
}

#[test]
fn an_agent_or_a_hub_waiting_for_the_engine_stops_at_once_on_sigterm() {
    // A service being stopped while its engine is down: the first request to the engine
    // waits for its 10 s timeout, and a signal must not wait for it.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    write_lines(&log, 1, 1);
    let nowhere = format!("nats://127.0.0.1:{}", free_port());
    let roles = [
        (
            "agent",
            Role::agent(&nowhere, "web-1", &[log.to_str().unwrap()]),
        ),
        ("hub", Role::hub_starting(&nowhere, &[])),
    ];
    for (name, mut role) in roles {
        std::thread::sleep(Duration::from_millis(500));
        let status = role.terminate(Duration::from_secs(3));
        assert!(
            status.is_some_and(|s| s.success()),
            "the {name} exits cleanly within 3 s of SIGTERM: {status:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_engine_credentials_are_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start_with(
        dir.path(),
        free_port(),
        &["--user", "agent", "--pass", "right-secret"],
    );
    let log = dir.path().join("app.log");
    write_lines(&log, 1, 1);
    let started = Instant::now();
    let (code, err) = Role::run_env(
        &[
            "agent",
            "--nats",
            &nats.url,
            "--host",
            "web-1",
            log.to_str().unwrap(),
        ],
        &[
            ("COMETAIL_NATS_USER", "agent"),
            ("COMETAIL_NATS_PASSWORD", "s3cr3t-wrong-pw"),
        ],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("refused the credentials"), "{err}");
    assert!(
        !err.contains("s3cr3t-wrong-pw"),
        "the password is never printed: {err}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}
