//! The layout's rule, checked: folders under `src/` are layers and code only refers
//! to its own layer or one below (`error` < `util` < `identity` < `proto` < `net` <
//! `tools` < `client` | `server` < `cli`); `client` and `server` never refer to each
//! other. Doc comments may link anywhere; code may not.

use std::collections::BTreeSet;
use std::path::Path;

/// The rank of a top-level module; equal ranks in different folders may not mix.
fn rank(layer: &str) -> Option<u8> {
    Some(match layer {
        "error" => 0,
        "util" => 1,
        "identity" => 2,
        "proto" => 3,
        "net" => 4,
        "tools" => 5,
        "client" | "server" => 6,
        "cli" => 7,
        // Fuzzing entry points call parsers of every layer and nothing calls them.
        "fuzzing" => 8,
        _ => return None,
    })
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::<layer>` a line of code names (comments left out).
fn referenced_layers(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                found.insert(name);
            }
        }
    }
    found
}

#[test]
fn imports_point_down_and_client_and_server_stay_apart() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let layer = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        let Some(own) = rank(&layer) else {
            // lib.rs and main.rs sit above every layer.
            assert!(matches!(layer.as_str(), "lib" | "main"), "{} is in no layer; add it to rank()", rel.display());
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for other in referenced_layers(&text) {
            if other == layer || other == "Result" || other == "Error" {
                continue;
            }
            match rank(&other) {
                Some(r) if r < own => {}
                _ => wrong.push(format!("{} (layer {layer}) refers to crate::{other}", rel.display())),
            }
        }
    }
    assert!(wrong.is_empty(), "imports that point sideways or up:\n{}", wrong.join("\n"));
}

#[test]
fn the_checker_sees_code_and_skips_comments() {
    let found = referenced_layers(
        "use crate::server::Server;\n//! see [`crate::client`]\nlet x = crate::net::io::x(); // crate::cli\n",
    );
    assert_eq!(found.into_iter().collect::<Vec<_>>(), ["net", "server"]);
}
