//! `--config`: the real binary reads a TOML file whose keys are the flags' names; flags win
//! over the environment, the environment over the file, the file over defaults; an unknown
//! key or a refused value is exit 2 naming the key and its line; `--print-config` shows the
//! merged settings and where each came from.

use std::process::{Command, Output};
use std::time::Duration;

fn cometail(dir: &tempfile::TempDir, file: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let path = dir.path().join("cometail.toml");
    std::fs::write(&path, file).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cometail"));
    cmd.arg("--config").arg(&path).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn flags_beat_the_environment_which_beats_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = "lines = 30\nport = 7300\nrotate-grace = \"2s\"\npaths = [\"/tmp/a.log\"]\n";
    let out = cometail(
        &dir,
        file,
        &["--print-config", "--lines", "40"],
        &[("COMETAIL_LINES", "35"), ("COMETAIL_PORT", "7350")],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    for line in [
        "lines = 40  # flag",
        "port = 7350  # env",
        "rotate-grace = \"2s\"  # file",
        "paths = [\"/tmp/a.log\"]  # file",
        "poll-interval = \"250ms\"  # default",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
}

#[test]
fn a_typo_is_exit_2_naming_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = cometail(
        &dir,
        "port = 7001\nmax-line-byte = \"1M\"\n",
        &["a.log"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2") && err.contains("`max-line-byte`") && err.contains("unknown key"),
        "{err}"
    );
}

#[test]
fn a_value_refused_after_parsing_names_the_files_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = cometail(&dir, "\nlines = 99999\n", &["a.log"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--lines") && err.contains("cometail.toml line 2"),
        "{err}"
    );
    let out = cometail(&dir, "poll-interval = \"soon\"\n", &["a.log"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 1: `poll-interval`") && err.contains("soon"),
        "{err}"
    );
}

#[test]
fn a_missing_file_is_exit_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_cometail"))
        .args(["--config", "/nonexistent/cometail.toml", "a.log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/cometail.toml"));
}

#[test]
fn source_tables_add_paths_and_commands_unless_flags_name_sources() {
    let dir = tempfile::tempdir().unwrap();
    let file = "lines = 30\n\n[[source]]\npath = \"/tmp/a.log\"\n\n\
                [[source]]\nname = \"journal\"\ncmd = \"journalctl -f -o short-iso\"\n";
    let out = cometail(&dir, file, &["--print-config"], &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    for line in [
        "# paths = (the [[source]] tables below)",
        "path = \"/tmp/a.log\"",
        "name = \"journal\"",
        "cmd = \"journalctl -f -o short-iso\"",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
    let out = cometail(&dir, file, &["--print-config", "/tmp/b.log"], &[]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines()
            .any(|l| l == "paths = [\"/tmp/b.log\"]  # flag"),
        "the command line's paths replace the file's:\n{text}"
    );
    assert!(!text.contains("/tmp/a.log"), "{text}");
    assert!(
        text.contains("cmd = \"journalctl -f -o short-iso\""),
        "{text}"
    );
}

#[test]
fn a_source_table_that_does_not_fit_is_exit_2_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    for (file, line, key) in [
        (
            "port = 7001\n[[source]]\npath = \"a.log\"\nformt = \"json\"\n",
            4,
            "formt",
        ),
        ("[[source]]\ncmd = \"journalctl -f\"\n", 2, "cmd"),
        (
            "[[source]]\n\npath = \"a.log\"\nname = \"a/b\"\n",
            4,
            "name",
        ),
        (
            "[[source]]\npath = \"a.log\"\nformat = \"xml\"\n",
            3,
            "format",
        ),
        (
            "[[source]]\npath = \"/nonexistent/*.log\"\nrotated = \"/old/*\"\n",
            3,
            "rotated",
        ),
        (
            "[[source]]\npath = \"a.log\"\nname = \"x\"\n\n[[source]]\npath = \"b.log\"\nname = \"x\"\n",
            6,
            "name",
        ),
    ] {
        let out = cometail(&dir, file, &[], &[]);
        assert_eq!(out.status.code(), Some(2), "{file}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("cometail.toml line {line}: `{key}`")),
            "{file}: {err}"
        );
    }
    // A file's stream named as a command is named (on the command line) is refused too.
    let out = cometail(
        &dir,
        "[[source]]\npath = \"a.log\"\nname = \"journal\"\n",
        &["--cmd", "journal=journalctl -f"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`journal`") && err.contains("cometail.toml line 2"),
        "{err}"
    );
}

/// The real binary on port 0 with `--config FILE`, and the URL it prints.
fn serve(dir: &tempfile::TempDir, file: &str) -> (std::process::Child, String) {
    let path = dir.path().join("cometail.toml");
    std::fs::write(&path, file).unwrap();
    let config = path.display().to_string();
    crate::common::spawn_piped(&["--config", &config], &[])
}

async fn json(url: &str) -> serde_json::Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn a_source_tables_name_format_and_rotated_globs_are_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    std::fs::create_dir(dir.path().join("old")).unwrap();
    std::fs::write(
        dir.path().join("old/a.log-20261130"),
        "2026-11-30T09:00:00Z INFO a's older history\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("a.log"),
        "2026-12-01T09:00:00Z INFO a starts\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.log"),
        "2026-12-01T09:00:00Z INFO b starts\n",
    )
    .unwrap();
    let file = format!(
        "[[source]]\npath = \"{d}/a.log\"\nname = \"app\"\nformat = \"iso\"\n\
         rotated = \"{d}/old/a.log-*\"\n\n[[source]]\npath = \"{d}/b.log\"\nformat = \"plain\"\n"
    );
    let (child, url) = serve(&dir, &file);
    let _child = crate::common::Reaped(child);
    let url = url.trim_end_matches('/').to_owned();
    let listing = json(&format!("{url}/api/streams")).await;
    let streams: Vec<(String, String)> = listing["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().into(),
                s["format"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(
        streams,
        [
            ("app".into(), "iso".into()),
            ("b.log".into(), "plain".into())
        ],
        "the table's name is the id, its format is reported from the start: {listing}"
    );
    // Live: under `iso`, a JSON line is part of the record before it; under `plain`, every
    // line is an entry of its own, with no event time.
    let lines = "2026-12-01T10:00:00Z ERROR first\n{\"level\":\"warn\",\"msg\":\"x\"}\n\
                 2026-12-01T10:00:01Z INFO second\n    at Foo.bar(Foo.java:1)\n\
                 2026-12-01T10:00:02Z INFO third\n";
    crate::common::append(&dir.path().join("a.log"), lines);
    crate::common::append(&dir.path().join("b.log"), lines);
    let entries = |id: &'static str| {
        let url = url.clone();
        async move {
            json(&format!("{url}/api/streams/{id}/lines?last=100")).await["entries"]
                .as_array()
                .unwrap()
                .clone()
        }
    };
    crate::common::wait_until(
        "both streams' third line",
        Duration::from_secs(10),
        || async {
            let done = |e: &[serde_json::Value]| {
                e.iter()
                    .any(|e| e["text"].as_str().is_some_and(|t| t.ends_with("third")))
            };
            done(&entries("app").await) && done(&entries("b.log").await)
        },
    )
    .await;
    let app = entries("app").await;
    let app_texts: Vec<&str> = app.iter().filter_map(|e| e["text"].as_str()).collect();
    assert_eq!(
        app_texts,
        [
            "2026-11-30T09:00:00Z INFO a's older history",
            "2026-12-01T09:00:00Z INFO a starts",
            "2026-12-01T10:00:00Z ERROR first\n{\"level\":\"warn\",\"msg\":\"x\"}",
            "2026-12-01T10:00:01Z INFO second\n    at Foo.bar(Foo.java:1)",
            "2026-12-01T10:00:02Z INFO third",
        ],
        "a's history continues into its own rotated glob: {app:?}"
    );
    let app_lines = app.iter().filter(|e| e.get("text").is_some());
    assert!(app_lines.clone().all(|e| e["ts"].is_i64()), "{app:?}");
    assert_eq!(app.len() - app_lines.count(), 1, "one notice: {app:?}");
    assert_eq!(app[0]["notice"], "rotated", "{app:?}");
    let b = entries("b.log").await;
    let b_texts: Vec<&str> = b.iter().filter_map(|e| e["text"].as_str()).collect();
    let mut want = vec!["2026-12-01T09:00:00Z INFO b starts"];
    want.extend(lines.lines());
    assert_eq!(
        b_texts, want,
        "b has no older history of a's, and no records: {b:?}"
    );
    assert!(
        b.iter().all(|e| e.get("ts").is_none()),
        "plain reads no time: {b:?}"
    );
    assert_eq!(b[1]["level"], "error", "levels are still read: {b:?}");
}

#[test]
fn print_config_shows_source_tables_that_load_back() {
    let dir = tempfile::tempdir().unwrap();
    let file = "lines = 30\npaths = [\"/tmp/top.log\"]\n\n[[source]]\npath = \"/tmp/a.log\"\n\
                name = \"app\"\nformat = \"json\"\nrotated = [\"/tmp/old/a-*\"]\n\n\
                [[source]]\nname = \"db\"\ncmd = \"psql postgres://app:hunter2@db/x\"\n\
                format = \"plain\"\n";
    let out = cometail(&dir, file, &["--print-config"], &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let tables = "\n[[source]]  # file\npath = \"/tmp/a.log\"\nname = \"app\"\n\
                  format = \"json\"\nrotated = [\"/tmp/old/a-*\"]\n\n[[source]]  # file\n\
                  name = \"db\"\ncmd = \"psql 'postgres://app:***@db/x'\"\nformat = \"plain\"\n";
    assert!(text.ends_with(tables), "no tables at the end of:\n{text}");
    assert!(
        text.lines()
            .any(|l| l == "paths = [\"/tmp/top.log\"]  # file"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l == "# cmd = (the [[source]] tables below)"),
        "{text}"
    );
    assert!(text.lines().any(|l| l == "# rotated = (not set)"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    // What it prints is a configuration file that gives the same settings.
    let again = cometail(&dir, &text, &["--print-config"], &[]);
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    let strip = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| !l.starts_with("# file:"))
            .map(|l| l.split("  # ").next().unwrap_or_default().to_owned())
            .collect()
    };
    let again = String::from_utf8(again.stdout).unwrap();
    assert_eq!(strip(&again), strip(&text));
}

#[test]
fn durations_take_minutes_hours_and_days_in_flags_the_environment_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = "retire-after = \"1h\"\nrotate-grace = \"10m\"\npaths = [\"/tmp/a.log\"]\n";
    let out = cometail(
        &dir,
        file,
        &["--print-config", "--header-timeout", "5m"],
        &[
            ("COMETAIL_MERGE_DELAY", "0.5s"),
            ("COMETAIL_POLL_INTERVAL", "1m"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    for line in [
        "retire-after = \"1h\"  # file",
        "rotate-grace = \"10m\"  # file",
        "header-timeout = \"5m\"  # flag",
        "poll-interval = \"1m\"  # env",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
    // `m` is minutes: 10m is the most --rotate-grace takes, 11m is refused as too long.
    let out = cometail(&dir, "\nrotate-grace = \"11m\"\n", &["a.log"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--rotate-grace: at most 600s") && err.contains("cometail.toml line 2"),
        "{err}"
    );
    let out = cometail(&dir, "retire-after = \"1y\"\n", &["a.log"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 1: `retire-after`") && err.contains("ms, s, m, h or d"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_cometail"))
        .args(["--retire-after", "2d", "--poll-interval", "2m", "a.log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--poll-interval: must be between 10ms and 60s"),
        "{err}"
    );
}
