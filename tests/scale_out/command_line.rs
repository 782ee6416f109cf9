//! The roles' command lines, run as the real binary (no engine needed: each is refused or
//! answered before any connection): a flag that means nothing to a role is exit 2 naming it
//! and why, never accepted and ignored; `--help` says the roles exist and names them as
//! they are typed; durations take every unit.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::nats::Role;

/// No engine listens here; a role that got past its command line would wait for it.
const NOWHERE: &str = "nats://127.0.0.1:1";

#[test]
fn server_flags_given_to_an_agent_are_refused_naming_the_flag() {
    for (flag, value) in [
        ("--port", Some("8080")),
        ("--bind", Some("0.0.0.0")),
        ("--auth", Some("token")),
        ("--metrics-bind", Some("127.0.0.1:9100")),
        ("--unix-socket", Some("/tmp/cometail-agent.sock")),
        ("--tls-cert", None),
        ("--public-without-auth", None),
        ("--config", Some("/etc/cometail/cometail.toml")),
    ] {
        let mut args = vec!["agent", "--nats", NOWHERE, "--host", "web-1"];
        args.push(flag);
        // `--tls-cert` needs `--tls-key`: both are given, the first is named.
        match (flag, value) {
            ("--tls-cert", _) => args.extend(["c.pem", "--tls-key", "k.pem"]),
            (_, Some(v)) => args.push(v),
            _ => {}
        }
        args.push("app.log");
        let (code, err) = Role::run(&args);
        assert_eq!(code, Some(2), "{flag}: {err}");
        assert!(
            err.contains(&format!("error: {flag}:")),
            "names {flag}: {err}"
        );
        let why = if flag == "--config" {
            "reads no configuration file"
        } else {
            "an agent serves no HTTP"
        };
        assert!(err.contains(why), "{flag}: {err}");
        // Not the standalone server's reasons (`--bind 0.0.0.0` is no public-address problem).
        assert!(!err.contains("not a loopback address"), "{flag}: {err}");
    }
}

#[test]
fn follower_flags_given_to_a_hub_are_refused_naming_the_flag() {
    for args in [
        &["--cmd", "journal=journalctl -f"][..],
        &["--poll"],
        &["--rotate-grace", "5s"],
        &["--retire-after", "1h"],
        &["--rotated", "/var/log/old/app.log.*"],
        &["--timezone", "Europe/Berlin"],
        &["--memory", "64M"],
    ] {
        let mut all = vec!["hub", "--nats", NOWHERE, "--port", "0"];
        all.extend_from_slice(args);
        let (code, err) = Role::run(&all);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&format!("error: {}:", args[0])) && err.contains("a hub follows no files"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_server_setting_in_the_environment_is_a_warning_from_an_agent() {
    // One shell may start a hub and agents alike: COMETAIL_PORT is the hub's, so an agent
    // says it ignores it and goes on (to wait for the engine, here).
    let mut child = Command::new(env!("CARGO_BIN_EXE_cometail"))
        .args(["agent", "--nats", NOWHERE, "--host", "web-1", "app.log"])
        .env("COMETAIL_PORT", "7001")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let end = Instant::now() + Duration::from_secs(20);
    let warned = loop {
        match rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
            Ok(line) if line.contains("COMETAIL_PORT") => break Some(line),
            Ok(_) => {}
            Err(_) => break None,
        }
    };
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    let warned = warned.expect("the agent warns of COMETAIL_PORT");
    assert!(
        warned.contains("WARN") && warned.contains("(--port) is ignored: an agent serves no HTTP"),
        "{warned}"
    );
    assert!(running, "the agent goes on");
}

#[test]
fn durations_take_minutes_hours_and_days_in_every_role() {
    // 10m is the most --rotate-grace takes and 11m one too many: `m` is minutes, not refused.
    let agent = |grace: &str| {
        Role::run(&[
            "agent",
            "--nats",
            NOWHERE,
            "--retire-after",
            "1h",
            "--retention-age",
            "7d",
            "--heartbeat",
            "1m",
            "--rotate-grace",
            grace,
        ])
    };
    // Every duration parsed and in range, the agent refuses what it checks last: no paths.
    let (code, err) = agent("10m");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("nothing to follow"), "{err}");
    let (code, err) = agent("11m");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--rotate-grace: at most 600s"), "{err}");
    let (code, err) = Role::run(&["agent", "--nats", NOWHERE, "--heartbeat", "1y", "a.log"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("`1y` is not a duration") && err.contains("ms, s, m, h or d"),
        "{err}"
    );
    let (code, err) = Role::run(&[
        "hub",
        "--nats",
        NOWHERE,
        "--stale-after",
        "2m",
        "--header-timeout",
        "6m",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--header-timeout"), "{err}");
}

#[test]
fn help_names_the_roles_and_each_role_as_it_is_typed() {
    let help = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_cometail"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    for top in [help(&["--help"]), help(&["-h"])] {
        assert!(
            top.contains("cometail agent --nats URL")
                && top.contains("cometail hub --nats URL")
                && top.contains("cometail agent --help")
                && top.contains("cometail hub --help"),
            "{top}"
        );
    }
    for role in ["agent", "hub"] {
        let text = help(&[role, "--help"]);
        assert!(
            text.contains(&format!("Usage: cometail {role} [OPTIONS] --nats <URL>")),
            "{text}"
        );
        assert!(text.contains("ms, s, m, h or d"), "{text}");
        assert!(!text.contains("cometail agent --nats URL"), "{text}");
    }
    // Each role's help lists only the flags that mean something to it.
    let agent = help(&["agent", "--help"]);
    assert!(
        agent.contains("--rotate-grace") && !agent.contains("--port"),
        "{agent}"
    );
    let hub = help(&["hub", "--help"]);
    assert!(
        hub.contains("--port") && !hub.contains("--rotate-grace"),
        "{hub}"
    );
}
