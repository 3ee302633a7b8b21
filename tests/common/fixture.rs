//! The files under `fixtures/` (load-balancer and proxy configs, server configs, the
//! Kubernetes API double's data) and the one renderer of their `{{NAME}}`
//! placeholders. Standalone (std only) so the benchmark includes this very file
//! (`#[path]`) and starts its programs from the same templates as the tests.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

/// `fixtures/REL` in this repository.
pub fn path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
}

/// The text of `fixtures/REL`.
///
/// # Errors
/// When the file cannot be read (the message names it).
pub fn read(rel: &str) -> Result<String, String> {
    let p = path(rel);
    std::fs::read_to_string(&p).map_err(|e| format!("reading fixture {}: {e}", p.display()))
}

/// `fixtures/REL` with every `{{NAME}}` replaced by its value in `vars`.
///
/// # Errors
/// When the file cannot be read, a placeholder has no value, a value fills no
/// placeholder (a misspelt name), or a `{{` is not closed; the message names the
/// file and the placeholder.
pub fn render(rel: &str, vars: &[(&str, &str)]) -> Result<String, String> {
    render_str(&read(rel)?, vars).map_err(|e| format!("fixture {}: {e}", path(rel).display()))
}

/// [`render`], then written to `out`.
///
/// # Errors
/// As [`render`], or when `out` cannot be written.
pub fn render_to(rel: &str, vars: &[(&str, &str)], out: &Path) -> Result<PathBuf, String> {
    let text = render(rel, vars)?;
    std::fs::write(out, text).map_err(|e| format!("writing {}: {e}", out.display()))?;
    Ok(out.to_path_buf())
}

/// Replaces every `{{NAME}}` of `template` (NAME: A-Z, 0-9, _) by its value in
/// `vars`, in one pass (values are not searched for placeholders).
///
/// # Errors
/// See [`render`].
pub fn render_str(template: &str, vars: &[(&str, &str)]) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut used = vec![false; vars.len()];
    let mut rest = template;
    while let Some(at) = rest.find("{{") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after.find("}}").ok_or_else(|| format!("unclosed `{{{{` at {:?}", clip(&rest[at..])))?;
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
            return Err(format!("malformed placeholder {:?}", clip(&rest[at..])));
        }
        let i = vars
            .iter()
            .position(|(k, _)| *k == name)
            .ok_or_else(|| format!("placeholder {{{{{name}}}}} has no value (given: {})", names(vars)))?;
        used[i] = true;
        out.push_str(vars[i].1);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    let unused: Vec<&str> = vars.iter().zip(&used).filter(|(_, u)| !**u).map(|((k, _), _)| *k).collect();
    if !unused.is_empty() {
        return Err(format!("no placeholder for {} (the template has no such {{{{NAME}}}})", unused.join(", ")));
    }
    Ok(out)
}

fn names(vars: &[(&str, &str)]) -> String {
    if vars.is_empty() {
        return "none".into();
    }
    vars.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
}

fn clip(s: &str) -> &str {
    let end = s.char_indices().nth(30).map_or(s.len(), |(i, _)| i);
    &s[..end]
}
