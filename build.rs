//! Embeds every file of `ui/` in the binary: writes `$OUT_DIR/assets.rs`, a table of
//! `(name, bytes)` built with `include_bytes!`, so the page ships inside the one binary and
//! debug and release builds serve the same bytes.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
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
