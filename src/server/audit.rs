//! Who did what: one audit line per session at INFO (user, groups, source address,
//! resource, protocol, direct or upgraded, start, duration, bytes each way, how it
//! ended) and one per refusal (with the user when a certificate named one); with
//! `audit_log` in the config, the same records as JSON lines in that file (0600).
//! The source is the TCP peer, or for an upgraded connection the address the web
//! layer settled on (the load balancer's `X-Forwarded-For` when trusted).
//!
//! A session's line is written when its record is dropped, so a session ended by
//! force at the end of the shutdown grace period is still recorded.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::identity::Caller;
use crate::net::io::Counters;
use crate::proto::naming::Kind;

/// Where JSON audit lines go (nowhere without `audit_log`).
#[derive(Debug, Default)]
pub struct Sink {
    file: Option<(PathBuf, Mutex<std::fs::File>)>,
}

impl Sink {
    /// Opens `path` for appending, creating it 0600.
    ///
    /// # Errors
    /// [`Error::File`] when it cannot be opened.
    pub fn open(path: Option<&Path>) -> Result<Sink> {
        let Some(path) = path else { return Ok(Sink::default()) };
        let mut o = std::fs::OpenOptions::new();
        o.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        let f = o.open(path).map_err(|e| Error::file(path, e))?;
        Ok(Sink { file: Some((path.to_path_buf(), Mutex::new(f))) })
    }

    fn write(&self, record: &serde_json::Value) {
        let Some((path, f)) = &self.file else { return };
        let mut line = record.to_string();
        line.push('\n');
        let mut f = f.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = f.write_all(line.as_bytes()) {
            warn!(file = %path.display(), error = %e, "cannot write the audit log");
        }
    }
}

/// How a connection reached the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Straight over TCP.
    Direct,
    /// Through `/webapi/connectionupgrade` (a load balancer in front).
    Upgrade,
}

impl Via {
    /// `direct` or `upgraded`.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Direct => "direct",
            Via::Upgrade => "upgraded",
        }
    }
}

/// One session's record; logged when dropped.
#[derive(Debug)]
pub struct Session {
    sink: Arc<Sink>,
    caller: Caller,
    source: SocketAddr,
    kind: Kind,
    resource: String,
    protocol: String,
    via: Via,
    start: SystemTime,
    started: Instant,
    counters: Arc<Counters>,
    end: Mutex<Option<String>>,
}

impl Session {
    /// Starts the record of a session of `caller` on `kind`/`resource`; the bytes
    /// read from the client (to the resource) and written to it come from `counters`.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        sink: Arc<Sink>,
        caller: Caller,
        source: SocketAddr,
        kind: Kind,
        resource: &str,
        protocol: String,
        via: Via,
        counters: Arc<Counters>,
    ) -> Session {
        Session {
            sink,
            caller,
            source,
            kind,
            resource: resource.to_string(),
            protocol,
            via,
            start: SystemTime::now(),
            started: Instant::now(),
            counters,
            end: Mutex::new(None),
        }
    }

    /// Says how the session ended (else: "closed at shutdown"). The line itself is
    /// written when the last holder of the record lets go (see
    /// [`crate::net::tasks::hold`]: an upgraded kube stream outlives its request).
    pub fn end(&self, how: impl Into<String>) {
        *self.end.lock().unwrap_or_else(|p| p.into_inner()) = Some(how.into());
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let (to_resource, to_client) = self.counters.get();
        let duration_ms = self.started.elapsed().as_millis() as u64;
        let end = self.end.lock().unwrap_or_else(|p| p.into_inner()).take();
        let end = end.unwrap_or_else(|| "closed at shutdown".to_string());
        let start = rfc3339(self.start);
        info!(target: "oneport::audit", user = %self.caller.user, groups = %self.caller.groups.join(","),
            source = %self.source, kind = %kind_name(self.kind), resource = %self.resource, protocol = %self.protocol,
            via = self.via.as_str(), start = %start, duration_ms, bytes_to_resource = to_resource,
            bytes_to_client = to_client, end = %end, "audit: session");
        self.sink.write(&json!({
            "event": "session",
            "user": self.caller.user,
            "groups": self.caller.groups,
            "serial": self.caller.serial,
            "source": self.source.to_string(),
            "kind": kind_name(self.kind),
            "resource": self.resource,
            "protocol": self.protocol,
            "via": self.via.as_str(),
            "start": start,
            "duration_ms": duration_ms,
            "bytes_to_resource": to_resource,
            "bytes_to_client": to_client,
            "end": end,
        }));
    }
}

/// Logs a refusal: who (when a certificate named someone), from where, what, why.
pub fn refused(sink: &Sink, caller: Option<&Caller>, source: SocketAddr, kind: Kind, resource: &str, reason: &str) {
    let user = caller.map(|c| c.user.as_str()).unwrap_or("-");
    let groups = caller.map(|c| c.groups.join(",")).unwrap_or_default();
    info!(target: "oneport::audit", user, groups = %groups, source = %source, kind = %kind_name(kind), resource,
        "refused: {reason}; nothing dialled");
    sink.write(&json!({
        "event": "refused",
        "time": rfc3339(SystemTime::now()),
        "user": caller.map(|c| c.user.clone()),
        "groups": caller.map(|c| c.groups.clone()).unwrap_or_default(),
        "source": source.to_string(),
        "kind": kind_name(kind),
        "resource": resource,
        "reason": reason,
    }));
}

/// The kind as the config and `/webapi/resolve` spell it (`node`, `db`, `app`, `kube`).
fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Node => "node",
        Kind::Db => "db",
        Kind::App => "app",
        Kind::Kube => "kube",
    }
}

/// `2026-12-01T21:46:56.123Z` (UTC, milliseconds).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let Ok(dt) = time::OffsetDateTime::from_unix_timestamp(d.as_secs() as i64) else {
        return d.as_secs().to_string();
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_in_utc() {
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_796_161_616_123);
        assert_eq!(rfc3339(t), "2026-12-01T21:46:56.123Z");
    }

    #[test]
    fn session_record_goes_to_the_file_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let sink = Arc::new(Sink::open(Some(&path)).unwrap());
        let counters = Arc::new(Counters::default());
        counters.read.store(5, std::sync::atomic::Ordering::Relaxed);
        counters.written.store(7, std::sync::atomic::Ordering::Relaxed);
        let caller = Caller {
            user: "alice".into(),
            groups: vec!["dev".into(), "ops".into()],
            not_after: i64::MAX,
            serial: "1f".into(),
            ..Caller::default()
        };
        let source: SocketAddr = "10.1.2.3:4567".parse().unwrap();
        let s = Session::start(
            sink.clone(),
            caller,
            source,
            Kind::App,
            "echo",
            "teleport-tcp".into(),
            Via::Upgrade,
            counters,
        );
        s.end("closed by the client");
        drop(s);
        refused(&sink, None, source, Kind::Db, "pg1", "caller not in the allow-list");
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0]["event"], "session");
        assert_eq!(lines[0]["user"], "alice");
        assert_eq!(lines[0]["groups"], json!(["dev", "ops"]));
        assert_eq!(lines[0]["via"], "upgraded");
        assert_eq!(lines[0]["serial"], "1f");
        assert_eq!(lines[0]["bytes_to_resource"], 5);
        assert_eq!(lines[0]["bytes_to_client"], 7);
        assert_eq!(lines[0]["end"], "closed by the client");
        assert_eq!(lines[1]["event"], "refused");
        assert_eq!(lines[1]["user"], serde_json::Value::Null);
        assert_eq!(lines[1]["resource"], "pg1");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
