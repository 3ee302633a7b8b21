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

#[test]
fn man_pages_have_the_program_footer_and_the_usual_sections() {
    let files = oneport::cli::docs::render().unwrap();
    let page = |name: &str| -> String {
        let (_, b) = files.iter().find(|(p, _)| p.ends_with(name)).unwrap_or_else(|| panic!("no {name}"));
        String::from_utf8(b.clone()).unwrap()
    };
    for (path, bytes) in files.iter().filter(|(p, _)| p.starts_with("man")) {
        let text = String::from_utf8_lossy(bytes);
        let th = text.lines().find(|l| l.starts_with(".TH ")).unwrap_or_default();
        assert!(th.ends_with(r#""oneport 0.1.0" "#), "{}: {th}", path.display());
        assert!(!text.contains(".SH EXTRA"), "{}", path.display());
        assert!(text.contains(".SH \"EXIT STATUS\""), "{}", path.display());
        assert_eq!(text.matches(".ds Aq").count(), 2, "{}: one preamble", path.display());
    }
    let top = page("man/oneport.1");
    for var in [
        "ONEPORT_PROXY",
        "ONEPORT_IDENTITY",
        "ONEPORT_CA",
        "ONEPORT_INSECURE",
        "ONEPORT_TOKEN",
        "ONEPORT_HOME",
        "ONEPORT_TLS_ROUTING_CONN_UPGRADE",
        "ONEPORT_TLS_ROUTING_CONN_UPGRADE_MODE",
    ] {
        assert!(top.contains(&format!("\\fB{var}\\fR")), "oneport.1 lacks {var}");
    }
    assert!(top.contains(".SH ENVIRONMENT") && top.contains(".SH FILES"), "{top}");
    assert!(top.contains("~/.config/oneport/") && top.contains("~/.local/share/oneport/"), "{top}");
    // Client-only options are neither listed nor described on server-side pages.
    for name in
        ["man/oneport-server-start.1", "man/oneport-server-issue.1", "man/oneport-demo.1", "man/oneport-server.1"]
    {
        let text = page(name);
        for flag in ["\\-\\-proxy", "\\-\\-identity", "\\-\\-ca\\fR", "\\-\\-insecure", "ONEPORT_PROXY"] {
            assert!(!text.contains(flag), "{name} mentions {flag}");
        }
    }
    let client = page("man/oneport-db-connect.1");
    assert!(client.contains("\\fB\\-\\-proxy\\fR") && client.contains(".SH ENVIRONMENT"), "{client}");
}
