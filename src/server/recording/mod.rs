//! Recording of `kubectl exec` and `attach` sessions (wire.md §11, docs/recording.md).
//!
//! - [`Recording`]: the `recording` block of a `kube` entry (mode, directory, groups).
//! - [`Sink`]: where recordings go, and [`Recorder`]: one session's recording. The
//!   directory sink ([`dir::DirSink`]) is the one destination today; another (an
//!   upload, a log pipeline) is one more `Sink`.
//! - [`plan`](mod@plan): what the kube backend does with one request: not a session; a session
//!   to record; one to run unrecorded (and why); or a refusal (fail closed).
//! - [`session`]: the relay of an upgraded exec/attach stream that reads the channel
//!   frames both ways without changing them and feeds the recorder.
//! - [`asciicast`]: the file format; [`play`]: playing a file in the terminal.

pub mod asciicast;
pub mod dir;
pub mod plan;
pub mod play;
pub mod session;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use asciicast::Meta;
pub use plan::{plan, Plan};

/// Whether sessions are recorded, and what happens when they cannot be.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Not recorded.
    #[default]
    Off,
    /// Fail open: recorded when possible, otherwise the session runs and the server
    /// logs why it was not recorded.
    BestEffort,
    /// Fail closed: a session that cannot be recorded does not happen.
    Required,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Off => "off",
            Mode::BestEffort => "best_effort",
            Mode::Required => "required",
        })
    }
}

/// The `recording` block of a `kube` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recording {
    /// off | best_effort | required.
    #[serde(default)]
    pub mode: Mode,
    /// The recordings directory (relative to the config file); needed unless off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// Only callers in one of these groups are recorded (empty: everyone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

impl Recording {
    /// Whether the mode is off (the block is left out of a written config then).
    pub fn is_off(&self) -> bool {
        *self == Recording::default()
    }

    /// Checks the block: a directory unless off.
    ///
    /// # Errors
    /// A message for the config error.
    pub fn validate(&self) -> Result<(), String> {
        if self.mode != Mode::Off && self.dir.is_none() {
            return Err(format!("recording mode {} needs `dir` (where recordings go)", self.mode));
        }
        Ok(())
    }
}

/// One timed event of a session, as the relay hands it to the recorder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// stdout or stderr bytes.
    Output(Vec<u8>),
    /// stdin bytes.
    Input(Vec<u8>),
    /// A terminal size.
    Resize(u16, u16),
    /// The session's end, with what the error channel said (`exit 0`, ...).
    End(String),
}

/// Where recordings go.
pub trait Sink: fmt::Debug + Send + Sync {
    /// Where, in words (`directory /var/lib/oneport/recordings`).
    fn describe(&self) -> String;
    /// Whether a recording could be started now (for requests that are refused
    /// anyway, so that the reason given is the right one).
    ///
    /// # Errors
    /// Why not, in the operator's words.
    fn check(&self) -> Result<(), String>;
    /// Starts the recording of a session that began at `started_ms` (Unix time in
    /// milliseconds).
    ///
    /// # Errors
    /// Why it cannot be started, in the operator's words.
    fn create(&self, meta: &Meta, started_ms: i64) -> Result<Box<dyn Recorder>, String>;
}

/// One session's recording. Its calls run on a blocking thread, in event order.
pub trait Recorder: Send {
    /// The recording's name (its file), for logs and the audit line.
    fn name(&self) -> String;
    /// The session's final metadata (the subprotocol is known once the API server
    /// answered), before the first event; no I/O.
    fn begin(&mut self, meta: &Meta);
    /// Writes one event at `at` since the start.
    ///
    /// # Errors
    /// The write failed: the recording cannot go on.
    fn write(&mut self, at: Duration, event: &Event) -> std::io::Result<()>;
    /// Makes everything written so far durable enough to survive a crash of the
    /// server (a flush to the operating system).
    ///
    /// # Errors
    /// As [`Recorder::write`].
    fn flush(&mut self) -> std::io::Result<()>;
    /// Removes the recording of a session that never started (the API server
    /// refused the upgrade).
    fn discard(self: Box<Self>);
}

/// A cluster's recording policy, built once from its [`Recording`] block.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// The mode.
    pub mode: Mode,
    /// Callers it applies to (empty: all).
    pub groups: Vec<String>,
    /// The destination (`None` only when off).
    pub sink: Option<Arc<dyn Sink>>,
}

impl Policy {
    /// The policy of `r`.
    pub fn new(r: &Recording) -> Policy {
        let sink = match (&r.dir, r.mode) {
            (_, Mode::Off) | (None, _) => None,
            (Some(dir), _) => Some(Arc::new(dir::DirSink::new(dir.clone())) as Arc<dyn Sink>),
        };
        let mode = if sink.is_none() { Mode::Off } else { r.mode };
        Policy { mode, groups: r.groups.clone(), sink }
    }

    /// The mode for a caller in `groups`.
    pub fn mode_for(&self, groups: &[String]) -> Mode {
        if self.groups.is_empty() || self.groups.iter().any(|g| groups.contains(g)) {
            self.mode
        } else {
            Mode::Off
        }
    }
}
