//! What a long-running local proxy (`proxy app`, `proxy db`, `proxy kube`) shows
//! while it runs: on a terminal, one status line (indicatif, redrawn four times a
//! second) with connections open / total, bytes each way, identity time left,
//! direct or upgraded, and the last error; when stderr is not a terminal, one log
//! line per closed connection; with `--quiet`, neither. A warning some minutes
//! before the identity expires. Ctrl-C: the first stops accepting and says how long
//! it waits for how many connections, a second closes them at once. Log lines go
//! through [`LogWriter`], so they print above the status line instead of through it.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::client::dial::Dialer;
use crate::net::meter::{human_bytes, Meter, Snapshot};
use crate::net::tasks::Tasks;

/// Options of every long-running local proxy.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// How long open connections may finish after Ctrl-C (a second Ctrl-C closes
    /// them at once).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::util::duration::parse)]
    pub drain_timeout: Duration,
    /// Show nothing while running: no status line, no line per connection
    /// (warnings and errors still print).
    #[arg(long, short)]
    pub quiet: bool,
}

/// How often the status line is redrawn.
const REDRAW: Duration = Duration::from_millis(250);

/// The longest lead of the expiry warning.
const WARN_LEAD_MAX: Duration = Duration::from_secs(600);

/// The status line, while one is shown.
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// The session whose mode the status line shows (multiplexed or not), once known.
static SESSION: Mutex<Option<Arc<crate::client::session::Session>>> = Mutex::new(None);

/// Shows `session`'s mode on the status line.
pub fn watch_session(session: &Arc<crate::client::session::Session>) {
    *SESSION.lock().unwrap_or_else(|p| p.into_inner()) = Some(session.clone());
}

fn session_words() -> Option<&'static str> {
    SESSION.lock().unwrap_or_else(|p| p.into_inner()).as_ref().and_then(|s| s.mode_words())
}

fn bar() -> Option<ProgressBar> {
    BAR.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// stderr for log lines: above the status line when one is shown. A line that
/// cannot be written is dropped.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match bar() {
            Some(b) => b.suspend(|| std::io::stderr().write_all(buf))?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> LogWriter {
        LogWriter
    }
}

/// Prints a line on stdout, above the status line if one is shown (so the banner
/// printed after the line first appears does not leave a stale copy of it on the
/// screen). A closed stdout is ignored.
pub fn say(line: &str) {
    let print = || {
        let mut out = std::io::stdout();
        let _ = out.write_all(format!("{line}\n").as_bytes());
        let _ = out.flush();
    };
    match bar() {
        Some(b) => b.suspend(print),
        None => print(),
    }
}

/// Prints a line on stderr (in one write), above the status line if one is shown.
pub fn tell(line: &str) {
    let _ = LogWriter.write_all(format!("{line}\n").as_bytes());
}

/// What to show while running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    /// A status line (stderr is a terminal).
    Status,
    /// One line per closed connection (stderr is not a terminal).
    Lines,
    /// Nothing (`--quiet`).
    Nothing,
}

impl Show {
    /// The choice for `args` and this process's stderr.
    pub fn choose(args: &RunArgs) -> Show {
        if args.quiet {
            Show::Nothing
        } else if std::io::stderr().is_terminal() {
            Show::Status
        } else {
            Show::Lines
        }
    }
}

/// A running local proxy's display and signal handling; [`Live::finish`] when it
/// stopped.
#[derive(Debug)]
pub struct Live {
    show: Show,
}

/// Starts the display for a proxy whose connections are counted in `meter` and run
/// in `tasks`, and takes over Ctrl-C / SIGTERM (registered before returning): the
/// first cancels `shutdown` and says what the drain waits for, a second closes the
/// connections at once.
pub fn start(
    args: &RunArgs,
    dialer: Arc<Dialer>,
    meter: Arc<Meter>,
    tasks: Tasks,
    shutdown: CancellationToken,
) -> Live {
    let show = Show::choose(args);
    meter.log_each(show == Show::Lines);
    let grace = args.drain_timeout;
    let mut signals = crate::util::shutdown::Signals::register();
    let m = meter.clone();
    let stop = shutdown.clone();
    // Bare spawn: waits for signals for the life of the process.
    tokio::spawn(async move {
        signals.recv().await;
        let open = m.open();
        stop.cancel();
        if open > 0 {
            tell(&drain_sentence(open, grace));
        }
        signals.recv().await;
        let open = m.open();
        if open > 0 {
            tell(&format!("Closing {} now.", connections(open)));
        }
        tasks.force_close();
    });
    if show == Show::Status {
        let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
        b.set_style(ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
        *BAR.lock().unwrap_or_else(|p| p.into_inner()) = Some(b);
    }
    // Bare spawn: only reads counters and redraws; ends with the process.
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(REDRAW);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut warned: Option<String> = None;
        let mut path = None;
        loop {
            tick.tick().await;
            let caller = dialer.identity().caller;
            let now = SystemTime::now();
            let not_after = UNIX_EPOCH + Duration::from_secs(caller.not_after.max(0) as u64);
            let not_before = UNIX_EPOCH + Duration::from_secs(caller.not_before.max(0) as u64);
            let left = not_after.duration_since(now).unwrap_or(Duration::ZERO);
            if left > Duration::ZERO
                && left <= warn_lead(not_after.duration_since(not_before).unwrap_or(Duration::ZERO))
                && warned.as_deref() != Some(caller.serial.as_str())
            {
                warned = Some(caller.serial.clone());
                tell(&format!("WARNING: {}", expiry_warning(&caller.user, not_after, now)));
            }
            path = dialer.upgraded_now().or(path);
            if let Some(b) = bar() {
                b.set_message(status_line(&meter.snapshot(), left, path, session_words()));
            }
        }
    });
    Live { show }
}

impl Live {
    /// Leaves the last status line on the screen.
    pub fn finish(self) {
        if self.show == Show::Status {
            if let Some(b) = BAR.lock().unwrap_or_else(|p| p.into_inner()).take() {
                b.abandon();
            }
        }
    }
}

/// What the first Ctrl-C says.
pub fn drain_sentence(open: u64, grace: Duration) -> String {
    format!(
        "Stopping: waiting up to {} for {} to finish; press Ctrl-C again to close {} now.",
        crate::util::duration::format(grace),
        connections(open),
        if open == 1 { "it" } else { "them" }
    )
}

fn connections(n: u64) -> String {
    format!("{n} open connection{}", if n == 1 { "" } else { "s" })
}

/// How long before expiry to warn: 10 minutes, or a sixth of the lifetime if that
/// is shorter (a 6-second test identity is warned about a second ahead).
pub fn warn_lead(lifetime: Duration) -> Duration {
    (lifetime / 6).min(WARN_LEAD_MAX)
}

/// The warning before expiry.
pub fn expiry_warning(user: &str, not_after: SystemTime, now: SystemTime) -> String {
    let unix = not_after.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs() as i64;
    let at = crate::util::utc::format_or_epoch(unix, "-", " ", ":");
    let left = not_after.duration_since(now).unwrap_or(Duration::ZERO);
    format!(
        "the identity for {user} expires at {} UTC (in {}); after that new connections are refused: get a new \
         one and run `oneport login`",
        &at[11..],
        time_left(left)
    )
}

/// `2h 5m`, `4m 10s`, `9s`.
pub fn time_left(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

/// The status line.
pub fn status_line(s: &Snapshot, identity_left: Duration, upgraded: Option<bool>, mode: Option<&str>) -> String {
    let identity = if identity_left.is_zero() {
        "identity EXPIRED (new connections refused)".to_string()
    } else {
        format!("identity {} left", time_left(identity_left))
    };
    let path = match upgraded {
        Some(true) => "upgraded (through the load balancer)",
        Some(false) => "direct",
        None => "path not chosen yet",
    };
    let mut line = format!(
        "{} open / {} total | up {} | down {} | {identity} | {path}",
        s.open,
        s.total,
        human_bytes(s.up),
        human_bytes(s.down)
    );
    if let Some(m) = mode {
        line.push_str(&format!(", {m}"));
    }
    if let Some((at, msg)) = &s.last_error {
        let unix = at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs() as i64;
        let stamp = crate::util::utc::format_or_epoch(unix, "-", " ", ":");
        line.push_str(&format!(" | last error {}: {msg}", &stamp[11..]));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_shows_counts_bytes_identity_path_and_last_error() {
        let mut s = Snapshot { open: 1, total: 3, up: 77, down: 2048, last_error: None };
        assert_eq!(
            status_line(&s, Duration::from_secs(7200 + 61), Some(false), None),
            "1 open / 3 total | up 77 B | down 2.0 KiB | identity 2h 1m left | direct"
        );
        assert_eq!(
            status_line(&s, Duration::from_secs(59), Some(false), Some("multiplexed")),
            "1 open / 3 total | up 77 B | down 2.0 KiB | identity 59s left | direct, multiplexed"
        );
        s.last_error = Some((UNIX_EPOCH + Duration::from_secs(1_796_156_123), "database pg1: boom".into()));
        assert_eq!(
            status_line(&s, Duration::ZERO, Some(true), None),
            "1 open / 3 total | up 77 B | down 2.0 KiB | identity EXPIRED (new connections refused) | upgraded \
             (through the load balancer) | last error 20:15:23: database pg1: boom"
        );
    }

    #[test]
    fn drain_sentence_counts_connections() {
        assert_eq!(
            drain_sentence(1, Duration::from_secs(10)),
            "Stopping: waiting up to 10s for 1 open connection to finish; press Ctrl-C again to close it now."
        );
        assert_eq!(
            drain_sentence(3, Duration::from_secs(90)),
            "Stopping: waiting up to 1m30s for 3 open connections to finish; press Ctrl-C again to close them now."
        );
    }

    #[test]
    fn warning_lead_scales_with_the_lifetime() {
        assert_eq!(warn_lead(Duration::from_secs(12 * 3600)), Duration::from_secs(600));
        assert_eq!(warn_lead(Duration::from_secs(6)), Duration::from_secs(1));
        let at = UNIX_EPOCH + Duration::from_secs(1_796_156_123);
        assert_eq!(
            expiry_warning("carol", at, at - Duration::from_secs(250)),
            "the identity for carol expires at 20:15:23 UTC (in 4m 10s); after that new connections are refused: \
             get a new one and run `oneport login`"
        );
    }
}
