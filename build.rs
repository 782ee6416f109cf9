//! Embeds every file of `ui/` in the binary: writes `$OUT_DIR/assets.rs`, a table of
//! `(name, bytes)` built with `include_bytes!`, so the page ships inside the one binary and
//! debug and release builds serve the same bytes. Also sets `COMETAIL_GIT_HASH`, the commit
//! `--version` names: the build environment's `COMETAIL_GIT_HASH` when given (a container
//! build has no `.git`), else `git rev-parse`, else `unknown`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    git_hash(&manifest);
    let ui = Path::new(&manifest).join("ui");
    println!("cargo:rerun-if-changed={}", ui.display());
    let mut names: Vec<String> = std::fs::read_dir(&ui)
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    // A binary without its page would answer 404 at `/`: refuse to build one.
    assert!(
        names.iter().any(|n| n == "index.html"),
        "{} has no index.html: the page cannot be embedded",
        ui.display()
    );
    let mut table = String::from("&[\n");
    for name in &names {
        let path = ui.join(name);
        println!("cargo:rerun-if-changed={}", path.display());
        writeln!(
            table,
            "    ({name:?}, include_bytes!({:?}) as &[u8]),",
            path.display().to_string()
        )
        .expect("writing to a String cannot fail");
    }
    table.push_str("]\n");
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("assets.rs");
    std::fs::write(out, table).expect("OUT_DIR is writable");
}

/// Sets `COMETAIL_GIT_HASH` for `--version`, and reruns when the checked-out commit moves.
fn git_hash(manifest: &str) {
    println!("cargo:rerun-if-env-changed=COMETAIL_GIT_HASH");
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(manifest)
            .output()
            .ok()
            .filter(|o| o.status.success())?;
        let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
        (!text.is_empty()).then_some(text)
    };
    let hash = std::env::var("COMETAIL_GIT_HASH")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]));
    // HEAD, the branch it names and packed refs; only files that exist (cargo would rerun
    // this script on every build for one that does not).
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = git(&["rev-parse", "--symbolic-full-name", "HEAD"]) {
        watched.push(git(&["rev-parse", "--git-path", &branch]));
    }
    watched.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    for path in watched.into_iter().flatten() {
        let path = Path::new(manifest).join(path);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    println!(
        "cargo:rustc-env=COMETAIL_GIT_HASH={}",
        hash.as_deref().unwrap_or("unknown")
    );
}
