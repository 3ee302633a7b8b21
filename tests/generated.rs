//! The committed shell completions (`completions/`) and man pages (`man/`) must match
//! what the clap definitions generate. `ONEPORT_REGENERATE=1 cargo test --test
//! generated` rewrites them.

use std::path::Path;

#[test]
fn completions_and_man_pages_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = oneport::cli::docs::render().unwrap();
    assert!(files.iter().any(|(p, _)| p.ends_with("oneport-proxy-app.1")));
    if std::env::var_os("ONEPORT_REGENERATE").is_some() {
        for dir in ["completions", "man"] {
            let _ = std::fs::remove_dir_all(root.join(dir));
        }
        for (path, bytes) in &files {
            let full = root.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, bytes).unwrap();
        }
        return;
    }
    let mut stale = Vec::new();
    for (path, bytes) in &files {
        if std::fs::read(root.join(path)).ok().as_deref() != Some(bytes.as_slice()) {
            stale.push(path.display().to_string());
        }
    }
    for dir in ["completions", "man"] {
        for entry in std::fs::read_dir(root.join(dir)).into_iter().flatten().flatten() {
            let rel = Path::new(dir).join(entry.file_name());
            if !files.iter().any(|(p, _)| *p == rel) {
                stale.push(format!("{} (no longer generated)", rel.display()));
            }
        }
    }
    assert!(stale.is_empty(), "stale generated files {stale:?}: run ONEPORT_REGENERATE=1 cargo test --test generated");
}
