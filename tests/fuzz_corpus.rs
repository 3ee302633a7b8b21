//! The fuzz corpus, replayed without libFuzzer or nightly: every file under
//! `fuzz/corpus/<target>/` (the seeds and what fuzzing kept) and under
//! `fuzz/artifacts/<target>/` (inputs that once crashed, kept as regressions) goes
//! to the same entry function the fuzz target calls, and none may panic.
//! docs/fuzzing.md says how to fuzz for real.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use oneport::fuzzing::TARGETS;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect();
    out.sort();
    out
}

#[test]
fn every_corpus_and_regression_file_runs_without_panic() {
    let mut failed = Vec::new();
    let mut counts = Vec::new();
    for (name, entry) in TARGETS {
        let seeds = files(&oneport::fuzzing::corpus_dir(root(), name));
        assert!(!seeds.is_empty(), "fuzz/corpus/{name}/ has no seed files");
        let regressions = files(&root().join("fuzz").join("artifacts").join(name));
        counts.push(format!("{name}: {} + {}", seeds.len(), regressions.len()));
        for file in seeds.iter().chain(&regressions) {
            let data = std::fs::read(file).unwrap();
            if catch_unwind(AssertUnwindSafe(|| entry(&data))).is_err() {
                failed.push(file.strip_prefix(root()).unwrap_or(file).display().to_string());
            }
        }
    }
    eprintln!("replayed (corpus + regressions): {}", counts.join(", "));
    assert!(
        failed.is_empty(),
        "these inputs panic (reproduce: cargo fuzz run <target> <file>):\n{}",
        failed.join("\n")
    );
}

/// Each `fuzz/fuzz_targets/*.rs` has its entry here, and the other way round, so
/// the replay cannot silently miss a target.
#[test]
fn the_replay_knows_every_fuzz_target() {
    let mut on_disk: Vec<String> = files(&root().join("fuzz").join("fuzz_targets"))
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    on_disk.sort();
    let mut known: Vec<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    known.sort();
    assert_eq!(on_disk, known);
}
