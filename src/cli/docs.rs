//! Shell completions and man pages, generated from the clap definitions. The
//! committed copies under `completions/` and `man/` are checked by `tests/generated.rs`
//! (run it with `ONEPORT_REGENERATE=1` to rewrite them).

use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// Every generated file: (path relative to the repository root, contents).
///
/// # Errors
/// When rendering fails (it writes to memory, so it does not).
pub fn render() -> std::io::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut out = Vec::new();
    for (shell, file) in [
        (Shell::Bash, "oneport.bash"),
        (Shell::Zsh, "_oneport"),
        (Shell::Fish, "oneport.fish"),
        (Shell::PowerShell, "_oneport.ps1"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "oneport", &mut buf);
        out.push((PathBuf::from("completions").join(file), buf));
    }
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    man_pages(cmd, &mut out)?;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn man_pages(cmd: clap::Command, out: &mut Vec<(PathBuf, Vec<u8>)>) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
        man_pages(sub, out)?;
    }
    let man = clap_mangen::Man::new(cmd);
    let mut buf = Vec::new();
    man.render(&mut buf)?;
    out.push((PathBuf::from("man").join(man.get_filename()), buf));
    Ok(())
}
