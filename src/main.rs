//! The `oneport` binary: parse, set up logging on stderr, run, print the error once.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = oneport::cli::parse();
    init_tracing(cli.global.verbose, cli.quiet());
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(oneport::cli::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // Never `eprintln!`: a closed stderr must not turn an error into a panic.
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr (stdout may carry SSH or data); `RUST_LOG` wins over `-v`, and
/// `-v` over `--quiet` (warnings and errors only). A log line that cannot be written
/// is dropped.
fn init_tracing(verbose: u8, quiet: bool) {
    let default = match verbose {
        0 if quiet => "oneport=warn",
        0 => "oneport=info",
        1 => "oneport=debug",
        _ => "oneport=trace,rustls=debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Above the status line of a running proxy, when one is shown.
        .with_writer(oneport::cli::live::LogWriter)
        .with_ansi(ansi)
        .with_target(false)
        // Otherwise a closed stderr makes every log line an `eprintln!` panic, which
        // kills the task that logged (the signal watcher: SIGTERM then did nothing).
        .log_internal_errors(false)
        .try_init();
}
