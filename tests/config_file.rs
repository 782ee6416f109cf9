//! `--config`: the real binary reads a TOML file whose keys are the flags' names; flags win
//! over the environment, the environment over the file, the file over defaults; an unknown
//! key or a refused value is exit 2 naming the key and its line; `--print-config` shows the
//! merged settings and where each came from.

use std::process::{Command, Output};

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
fn source_tables_add_paths_commands_and_rotated_globs_unless_flags_name_sources() {
    let dir = tempfile::tempdir().unwrap();
    let file = "lines = 30\n\n[[source]]\npath = \"/tmp/a.log\"\nrotated = \"/tmp/old/a-*\"\n\n\
                [[source]]\nname = \"journal\"\ncmd = \"journalctl -f -o short-iso\"\n";
    let out = cometail(&dir, file, &["--print-config"], &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    for line in [
        "paths = [\"/tmp/a.log\"]  # file",
        "cmd = [\"journal=journalctl -f -o short-iso\"]  # file",
        "rotated = [\"/tmp/old/a-*\"]  # file",
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
    assert!(text.contains("journal=journalctl"), "{text}");
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
            "[[source]]\n\npath = \"a.log\"\nname = \"app\"\n",
            4,
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
}
