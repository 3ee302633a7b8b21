//! The `oneport` binary: parse, set up logging on stderr, run, print the error once.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    tune_malloc();
    let cli = oneport::cli::parse();
    init_tracing(cli.global.verbose, cli.quiet());
    // Every command runs on one thread. A local proxy's connections share one
    // multiplexed session, and on one thread its streams, the session's HTTP/2 task
    // and the TLS I/O wake each other without crossing cores (benches/throughput:
    // bulk on a session 1.5x faster). The routing server (`server start`, `demo`)
    // accepts here and serves its connections on worker threads of their own, one
    // single-threaded runtime each (`workers`, net/shards.rs).
    // TOKIO_WORKER_THREADS (tokio's own setting) asks for a multi-threaded runtime
    // of that many workers for any command.
    let mut builder = if std::env::var_os("TOKIO_WORKER_THREADS").is_some() {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let rt = match builder.enable_all().build() {
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

/// glibc's malloc hands memory back to the kernel whenever more than 128 KiB is free
/// at the top of a heap, and a multiplexed session frees and allocates buffers of
/// tens of KiB for every HTTP/2 frame: a bulk transfer on a session then spent ~10%
/// of its CPU in page faults and `brk`/`madvise` calls (perf and strace on
/// benches/throughput), and moved 25-45% less than with this. Keeps up to 8 MiB
/// free per heap and allocations under 1 MiB out of `mmap`. Glibc's own
/// `MALLOC_TRIM_THRESHOLD_`/`MALLOC_MMAP_THRESHOLD_` still win when set.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    unsafe extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    const M_TRIM_THRESHOLD: i32 = -1;
    const M_MMAP_THRESHOLD: i32 = -3;
    for (param, env, value) in
        [(M_TRIM_THRESHOLD, "MALLOC_TRIM_THRESHOLD_", 8 << 20), (M_MMAP_THRESHOLD, "MALLOC_MMAP_THRESHOLD_", 1 << 20)]
    {
        if std::env::var_os(env).is_none() {
            // SAFETY: mallopt only sets allocator parameters; it is called before
            // any other thread exists.
            unsafe {
                mallopt(param, value);
            }
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

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
