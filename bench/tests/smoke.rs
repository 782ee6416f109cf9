//! The benchmark's own smoke test: runs the real `cometail-bench` binary against the real
//! `cometail` binary at toy sizes (`--smoke`, seconds per scenario) so the commands the README
//! and docs/PERFORMANCE.md give cannot rot. The figures of such a run mean nothing; what is
//! checked is that every scenario runs, exits 0 and prints its figures and the run's header.
//!
//! `cometail` is looked for next to `cometail-bench` (as `cargo test --workspace` builds it),
//! or given by `COMETAIL_BIN`.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn bench() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cometail-bench"))
}

fn cometail() -> PathBuf {
    let path = std::env::var_os("COMETAIL_BIN").map_or_else(
        || bench().with_file_name(format!("cometail{}", std::env::consts::EXE_SUFFIX)),
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "no cometail binary at {}: run `cargo test --workspace` (it builds it) or set COMETAIL_BIN",
        path.display()
    );
    path
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("cometail-bench-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `program args`, killing it after `deadline`.
fn run(program: &str, args: &[String], deadline: Duration) -> Output {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(deadline) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("{program} {args:?} still running after {deadline:?}");
        }
    }
}

fn args(list: &[&str], scratch: &Scratch) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| (*s).to_string()).collect();
    v.extend([
        "--smoke".into(),
        "--json".into(),
        "--cometail".into(),
        cometail().display().to_string(),
        "--workdir".into(),
        scratch.0.display().to_string(),
    ]);
    v
}

/// The rows of the JSON the bench prints after its tables (`--json`).
fn rows(stdout: &str) -> Vec<serde_json::Value> {
    let at = stdout.find("\n[").expect("JSON rows after the tables");
    serde_json::from_str::<Vec<serde_json::Value>>(&stdout[at..]).expect("JSON rows")
}

fn metric(row: &serde_json::Value, name: &str) -> f64 {
    row["metrics"][name]
        .as_f64()
        .unwrap_or_else(|| panic!("no {name} in {row}"))
}

#[test]
fn every_scenario_runs_in_smoke_mode_and_prints_its_figures() {
    let scratch = Scratch::new("all");
    let bench = bench();
    let out = run(
        &bench.display().to_string(),
        // Every client mode (raw follows and long polls are counted live like SSE) and two
        // ingest layouts, one without stamps and one through the parsing engine.
        &args(
            &[
                "all",
                "--modes",
                "sse,raw,longpoll",
                "--ingest-formats",
                "plain,ts",
            ],
            &scratch,
        ),
        // Every scenario in turn takes about 3 minutes on two cores at load 5-7; CI ran out
        // of 300 s once at load 10-11 (other builds on the same cores). A hang is still caught.
        Duration::from_secs(600),
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(!stderr.contains(" failed:"), "a scenario failed:\n{stderr}");
    assert!(stdout.contains("cometail-bench: commit "), "{stdout}");
    assert!(
        stdout.contains("SHARED these cores") || stdout.contains("PINNED to separate cores"),
        "{stdout}"
    );
    let rows = rows(&stdout);
    for scenario in [
        "startup",
        "latency",
        "throughput",
        "storm",
        "idle",
        "ingest",
        "history",
        "seek",
        "grep",
        "search",
        "memory",
    ] {
        assert!(
            stdout.contains(&format!("== {scenario} ==")),
            "no {scenario} table:\n{stdout}"
        );
        assert!(
            rows.iter().any(|r| r["scenario"] == scenario),
            "no {scenario} row"
        );
    }
    for r in &rows {
        match r["scenario"].as_str() {
            Some("latency") => {
                assert_eq!(metric(r, "live"), 2.0, "{r}");
                assert!(metric(r, "lines") >= 1.0, "{r}");
                assert!(metric(r, "p99_ms") > 0.0, "{r}");
                assert_eq!(metric(r, "lost"), 0.0, "{r}");
                assert!(metric(r, "srv_cpu_s") >= 0.0, "{r}");
            }
            Some("throughput") => assert!(metric(r, "max_lines_per_s") > 0.0, "{r}"),
            Some("ingest") => {
                assert!(metric(r, "lines_per_s") > 0.0, "{r}");
                assert!(metric(r, "lines_per_srv_cpu_s") > 0.0, "{r}");
            }
            Some("history") => assert!(metric(r, "last1000_ms") > 0.0, "{r}"),
            Some("idle") => assert_eq!(metric(r, "live"), 2.0, "{r}"),
            _ => {}
        }
    }
}

#[test]
fn storm_takes_its_client_count_from_clients_and_reports_pinned_cores() {
    let scratch = Scratch::new("storm");
    let mut a = vec!["-c".to_string(), "1".into(), bench().display().to_string()];
    a.extend(args(
        &["storm", "--clients", "3", "--server-cpus", "0"],
        &scratch,
    ));
    let out = run("taskset", &a, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = rows(&stdout);
    assert_eq!(rows.len(), 1, "{stdout}");
    assert_eq!(rows[0]["params"], "sse n=3", "{stdout}");
    assert_eq!(metric(&rows[0], "live"), 3.0);
    assert!(
        stdout.contains(
            "load generator on CPUs 1, server on CPUs 0: server and load generator PINNED"
        ),
        "{stdout}"
    );
}
