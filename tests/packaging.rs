//! Packaging: the bash and fish completion scripts load in real shells and complete flags,
//! zsh's loads and registers itself for `cometail` in zsh's completion system, the man
//! page renders with `man`, the systemd unit passes `systemd-analyze verify` without a
//! warning, alone and with its socket unit, the container's command line
//! (packaging/compose.yaml) serves, and `--version` names the commit.

use std::process::{Command, Stdio};

fn cometail(args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_cometail"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    out.stdout
}

#[test]
fn the_bash_completion_loads_and_completes_flags() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("cometail.bash");
    std::fs::write(&script, cometail(&["--completions", "bash"])).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p cometail && COMP_WORDS=(cometail --unix-) COMP_CWORD=1 \
             && _cometail cometail --unix- cometail && echo \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(said.contains("-F _cometail cometail"), "{said}");
    let offered = said.lines().last().unwrap_or_default();
    assert!(
        offered.contains("--unix-socket") && offered.contains("--unix-socket-mode"),
        "{said}"
    );
}

#[test]
fn the_fish_completion_loads_and_completes_flags() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("cometail.fish");
    std::fs::write(&script, cometail(&["--completions", "fish"])).unwrap();
    let out = Command::new("fish")
        .args(["--no-config", "-c"])
        .arg(format!(
            "source {} && complete -C 'cometail --unix-'",
            script.display()
        ))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let offered: Vec<&str> = said
        .lines()
        .map(|l| l.split('\t').next().unwrap_or_default())
        .collect();
    assert!(
        offered.contains(&"--unix-socket") && offered.contains(&"--unix-socket-mode"),
        "{said}"
    );
}

#[test]
fn the_zsh_completion_loads_and_registers_for_cometail() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("_cometail");
    std::fs::write(&script, cometail(&["--completions", "zsh"])).unwrap();
    // zsh's completion system, started without any user file; sourcing the script registers
    // `_cometail` for `cometail` (`compdef`), whose body offers the flags.
    let out = Command::new("zsh")
        .args(["-f", "-c"])
        .arg(format!(
            "autoload -Uz compinit && compinit -u -d {dump} && source {script} \
             && print -r -- \"comp=$_comps[cometail]\" && functions _cometail",
            dump = dir.path().join("zcompdump").display(),
            script = script.display()
        ))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(said.lines().any(|l| l == "comp=_cometail"), "{said}");
    assert!(
        said.contains("--unix-socket-mode") && said.contains("--cmd"),
        "{said}"
    );
}

#[test]
fn the_man_page_renders_and_the_unit_files_verify() {
    let dir = tempfile::tempdir().unwrap();
    let man1 = dir.path().join("man/man1");
    std::fs::create_dir_all(&man1).unwrap();
    let page = man1.join("cometail.1");
    std::fs::write(&page, cometail(&["--man"])).unwrap();
    let rendered = Command::new("man")
        .args(["-l", "-P", "cat"])
        .arg(&page)
        .env("MANWIDTH", "200")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&rendered.stdout);
    assert!(rendered.status.success(), "{rendered:?}");
    for flag in ["--config", "--metrics-bind", "--unix-socket", "--cmd"] {
        assert!(text.contains(flag), "{flag} not in the man page");
    }

    // The unit as shipped, with ExecStart pointing at the binary under test.
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/packaging/cometail.service"
    ))
    .unwrap()
    .replace("/usr/local/bin/cometail", env!("CARGO_BIN_EXE_cometail"));
    for hardening in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "ReadOnlyPaths=/var/log",
    ] {
        assert!(unit.contains(hardening), "{hardening}");
    }
    let path = dir.path().join("cometail.service");
    std::fs::write(&path, unit).unwrap();
    verify(&[&path], &dir.path().join("man"));
    // The socket unit beside it (optional: the service verified alone first), which starts
    // the service on the first connection and passes it the socket.
    let socket = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/packaging/cometail.socket"
    ))
    .unwrap();
    for line in ["ListenStream=127.0.0.1:7001", "Accept=no"] {
        assert!(socket.lines().any(|l| l == line), "{line}");
    }
    let socket_path = dir.path().join("cometail.socket");
    std::fs::write(&socket_path, socket).unwrap();
    verify(&[&socket_path, &path], &dir.path().join("man"));
}

/// `systemd-analyze verify` of `units`, with `man:cometail(1)` found through `manpath`.
/// `verify` exits 0 even for unknown keys: any output fails.
fn verify(units: &[&std::path::Path], manpath: &std::path::Path) {
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(units)
        .env("MANPATH", manpath)
        .stdin(Stdio::null())
        .output()
        .expect("systemd-analyze runs (Debian's systemd package)");
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify {units:?}: {said}"
    );
}

#[tokio::test]
async fn the_containers_command_line_serves_a_mounted_log_directory() {
    use std::io::{BufRead, BufReader};
    // What packaging/compose.yaml runs, with the image's COMETAIL_BIND, on a free port.
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::write(logs.join("app.log"), "hello\n").unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "0123456789abcdef0123\n").unwrap();
    let compose = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/packaging/compose.yaml"
    ))
    .unwrap();
    assert!(
        compose
            .contains(r#"command: ["--token-file", "/run/secrets/cometail-token", "/logs/*.log"]"#)
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_cometail"))
        .env("COMETAIL_BIND", "0.0.0.0")
        .args(["--port", "0", "--token-file"])
        .arg(&token)
        .arg(logs.join("*.log"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    let r = reqwest::Client::new()
        .get(format!("{url}api/streams/app.log/lines?last=1"))
        .bearer_auth("0123456789abcdef0123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("hello"));
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_version_names_the_commit_it_was_built_from() {
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(head.status.success(), "the tests run in a git checkout");
    let head = String::from_utf8(head.stdout).unwrap();
    let version = String::from_utf8(cometail(&["--version"])).unwrap();
    assert_eq!(
        version.trim(),
        format!("cometail {} ({})", env!("CARGO_PKG_VERSION"), head.trim())
    );
}
