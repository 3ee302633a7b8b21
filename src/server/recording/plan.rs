//! What the kube backend does with one request under a cluster's recording policy.
//! Pure apart from starting the recording: it reads the path, query and upgrade
//! headers, and under `required` narrows the offered WebSocket subprotocols to the
//! ones the server can read, so the API server cannot pick another.

use std::time::SystemTime;

use hyper::header::{HeaderMap, HeaderValue, UPGRADE};
use hyper::Uri;
use tracing::{info, warn};

use super::session::{self, Handler, Kind};
use super::{Meta, Mode, Policy};
use crate::identity::Caller;
use crate::proto::k8s_channel::PARSED_PROTOCOLS;
use crate::util::percent;

/// The decision for one request.
#[derive(Debug)]
pub enum Plan {
    /// Not an exec, attach or port-forward upgrade: forward as usual.
    Pass,
    /// Refused (fail closed): answer 403 with this message; nothing goes upstream.
    Refuse(String),
    /// A session: forward it with this handler for the upgraded stream.
    Session(Box<Handler>),
}

/// A pod subresource request: `/api/v1/namespaces/{ns}/pods/{pod}/{exec|attach|portforward}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// exec, attach or port-forward.
    pub kind: Kind,
    /// Namespace.
    pub namespace: String,
    /// Pod.
    pub pod: String,
    /// `container=` of the query.
    pub container: String,
    /// Every `command=` of the query, in order.
    pub command: Vec<String>,
    /// `tty=true`.
    pub tty: bool,
}

impl Target {
    /// Reads a request URI; `None` for anything else.
    pub fn parse(uri: &Uri) -> Option<Target> {
        let segs: Vec<&str> = uri.path().trim_end_matches('/').split('/').collect();
        let ["", "api", "v1", "namespaces", ns, "pods", pod, sub] = segs.as_slice() else { return None };
        let kind = match *sub {
            "exec" => Kind::Exec,
            "attach" => Kind::Attach,
            "portforward" => Kind::PortForward,
            _ => return None,
        };
        let mut t = Target {
            kind,
            namespace: percent::decode(ns),
            pod: percent::decode(pod),
            container: String::new(),
            command: Vec::new(),
            tty: false,
        };
        for pair in uri.query().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent::decode(&v.replace('+', " "));
            match k {
                "container" => t.container = v,
                "command" => t.command.push(v),
                "tty" => t.tty = v == "true" || v == "1",
                _ => {}
            }
        }
        Some(t)
    }
}

/// The upgrade a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upgrade {
    /// WebSocket, with the offered subprotocols.
    WebSocket(Vec<String>),
    /// SPDY/3.1 (older kubectl, or `KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false`).
    Spdy,
    /// No upgrade asked for.
    None,
    /// Something else.
    Other(String),
}

impl Upgrade {
    /// Reads the `Upgrade` and `Sec-WebSocket-Protocol` headers.
    pub fn of(headers: &HeaderMap) -> Upgrade {
        let Some(up) = headers.get(UPGRADE).and_then(|v| v.to_str().ok()) else { return Upgrade::None };
        if up.eq_ignore_ascii_case("websocket") {
            Upgrade::WebSocket(offered(headers))
        } else if up.to_ascii_lowercase().starts_with("spdy/") {
            Upgrade::Spdy
        } else {
            Upgrade::Other(up.to_string())
        }
    }
}

/// The subprotocols a WebSocket request offers, in order.
pub fn offered(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Why a session with this upgrade cannot be recorded, or `None` when it can.
fn unrecordable(up: &Upgrade) -> Option<String> {
    match up {
        Upgrade::WebSocket(offered) if offered.iter().any(|p| PARSED_PROTOCOLS.contains(&p.as_str())) => None,
        Upgrade::WebSocket(offered) => Some(format!(
            "the client offered the WebSocket subprotocols [{}], none of which the server can record \
             (it reads {}): use kubectl >= 1.30",
            offered.join(", "),
            PARSED_PROTOCOLS.join(", ")
        )),
        Upgrade::Spdy => Some(
            "this client speaks SPDY/3.1, which the server cannot record: use a kubectl that speaks WebSocket \
             (kubectl >= 1.30 does by default; do not set KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false)"
                .into(),
        ),
        Upgrade::Other(p) => {
            Some(format!("the upgrade to {p:?} cannot be verified as a protocol the server can record"))
        }
        Upgrade::None => Some("the request asks for no upgrade, so no session can be read".into()),
    }
}

/// Decides what to do with a request to kube cluster `cluster` by `caller`.
pub fn plan(policy: &Policy, cluster: &str, caller: &Caller, uri: &Uri, headers: &mut HeaderMap) -> Plan {
    let Some(target) = Target::parse(uri) else { return Plan::Pass };
    let up = Upgrade::of(headers);
    if up == Upgrade::None {
        return Plan::Pass; // the API server answers it; no stream is opened
    }
    let started = SystemTime::now();
    let id = session::new_id();
    let meta = Meta {
        session_id: id.clone(),
        kind: target.kind.to_string(),
        user: caller.user.clone(),
        groups: caller.groups.clone(),
        cluster: cluster.to_string(),
        namespace: target.namespace.clone(),
        pod: target.pod.clone(),
        container: target.container.clone(),
        command: target.command.clone(),
        tty: target.tty,
        protocol: String::new(),
    };
    let mode = if target.kind == Kind::PortForward { Mode::Off } else { policy.mode_for(&caller.groups) };
    let handler =
        |rec, why: Option<String>| Plan::Session(Box::new(Handler::new(meta.clone(), mode, rec, why, started)));
    if mode == Mode::Off {
        let why = if target.kind == Kind::PortForward {
            "port-forward is not a terminal session"
        } else if policy.mode == Mode::Off {
            "recording is off for this cluster"
        } else {
            "the caller is in none of the recorded groups"
        };
        return handler(None, Some(why.into()));
    }
    let Some(sink) = &policy.sink else { return handler(None, Some("no recording destination".into())) };
    let refuse = |reason: &str| {
        let msg = format!(
            "{} sessions on kube cluster {cluster} must be recorded, but the recording could not be started: {reason}",
            target.kind
        );
        info!(audit = "kube_session", session = %id, kind = %target.kind, user = %caller.user, kube = %cluster,
            namespace = %target.namespace, pod = %target.pod, command = %target.command.join(" "),
            recorded = false, %reason, "refused: the session cannot be recorded; nothing sent to the API server");
        Plan::Refuse(msg)
    };
    // The destination's own failure is the reason to give first: kubectl falls back
    // from WebSocket to SPDY after a refusal, and the second answer should say the same.
    let why_not = unrecordable(&up);
    if mode == Mode::Required {
        if let Err(reason) = sink.check() {
            return refuse(&reason);
        }
        if let Some(reason) = why_not {
            return refuse(&reason);
        }
        narrow_offer(headers);
    } else if let Some(reason) = why_not {
        warn!(session = %id, user = %caller.user, kube = %cluster, pod = %target.pod, %reason,
            "session not recorded (best_effort): it runs unrecorded");
        return handler(None, Some(reason));
    }
    let ms = started.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    match sink.create(&meta, ms) {
        Ok(rec) => handler(Some(rec), None),
        Err(reason) if mode == Mode::Required => refuse(&reason),
        Err(reason) => {
            warn!(session = %id, user = %caller.user, kube = %cluster, pod = %target.pod, %reason,
                "session not recorded (best_effort): the recording could not be started; it runs unrecorded");
            handler(None, Some(format!("the recording could not be started: {reason}")))
        }
    }
}

/// Keeps only the subprotocols the server reads in `Sec-WebSocket-Protocol`.
fn narrow_offer(headers: &mut HeaderMap) {
    let keep: Vec<String> = offered(headers).into_iter().filter(|p| PARSED_PROTOCOLS.contains(&p.as_str())).collect();
    if let Ok(v) = HeaderValue::from_str(&keep.join(", ")) {
        headers.insert("sec-websocket-protocol", v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn targets() {
        let t = Target::parse(&uri(
            "/api/v1/namespaces/default/pods/web-1/exec?command=sh&command=-c&command=echo+hi%21&container=main&stdin=true&tty=true",
        ))
        .unwrap();
        assert_eq!(t.kind, Kind::Exec);
        assert_eq!((t.namespace.as_str(), t.pod.as_str(), t.container.as_str()), ("default", "web-1", "main"));
        assert_eq!(t.command, ["sh", "-c", "echo hi!"]);
        assert!(t.tty);
        assert_eq!(Target::parse(&uri("/api/v1/namespaces/a/pods/b/attach")).unwrap().kind, Kind::Attach);
        assert_eq!(Target::parse(&uri("/api/v1/namespaces/a/pods/b/portforward/")).unwrap().kind, Kind::PortForward);
        assert!(Target::parse(&uri("/api/v1/namespaces/a/pods/b/log")).is_none());
        assert!(Target::parse(&uri("/api/v1/namespaces/a/pods/b")).is_none());
        assert!(Target::parse(&uri("/apis/x/v1/namespaces/a/pods/b/exec")).is_none());
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn upgrades_and_what_can_be_recorded() {
        let ws =
            headers(&[("upgrade", "websocket"), ("sec-websocket-protocol", "v5.channel.k8s.io, v4.channel.k8s.io")]);
        assert_eq!(Upgrade::of(&ws), Upgrade::WebSocket(vec!["v5.channel.k8s.io".into(), "v4.channel.k8s.io".into()]));
        assert_eq!(unrecordable(&Upgrade::of(&ws)), None);
        assert_eq!(Upgrade::of(&headers(&[("upgrade", "SPDY/3.1")])), Upgrade::Spdy);
        assert!(unrecordable(&Upgrade::Spdy).unwrap().contains("kubectl >= 1.30"));
        let b64 = headers(&[("upgrade", "websocket"), ("sec-websocket-protocol", "base64.channel.k8s.io")]);
        assert_eq!(unrecordable(&Upgrade::of(&b64)), None);
        let v1 = headers(&[("upgrade", "websocket"), ("sec-websocket-protocol", "channel.k8s.io")]);
        assert_eq!(
            unrecordable(&Upgrade::of(&v1)).unwrap(),
            "the client offered the WebSocket subprotocols [channel.k8s.io], none of which the server can record \
             (it reads v5.channel.k8s.io, v4.channel.k8s.io, v4.base64.channel.k8s.io, base64.channel.k8s.io): \
             use kubectl >= 1.30"
        );
        assert!(unrecordable(&Upgrade::of(&headers(&[("upgrade", "h2c")]))).unwrap().contains("cannot be verified"));
        let mut mixed = headers(&[
            ("upgrade", "websocket"),
            ("sec-websocket-protocol", "base64.channel.k8s.io, v5.channel.k8s.io"),
            ("sec-websocket-protocol", "channel.k8s.io, v4.channel.k8s.io"),
        ]);
        narrow_offer(&mut mixed);
        assert_eq!(offered(&mixed), ["base64.channel.k8s.io", "v5.channel.k8s.io", "v4.channel.k8s.io"]);
    }

    #[test]
    fn policy_decisions() {
        let tmp = tempfile::tempdir().unwrap();
        let alice =
            Caller { user: "alice".into(), groups: vec!["dev".into()], not_after: i64::MAX, ..Default::default() };
        let exec = uri("/api/v1/namespaces/default/pods/web-1/exec?command=sh");
        let ws = || headers(&[("upgrade", "websocket"), ("sec-websocket-protocol", "v5.channel.k8s.io")]);
        let spdy = || headers(&[("upgrade", "SPDY/3.1")]);
        let policy = |mode, dir: std::path::PathBuf, groups: &[&str]| {
            Policy::new(&super::super::Recording {
                mode,
                dir: Some(dir),
                groups: groups.iter().map(|g| g.to_string()).collect(),
            })
        };
        let bad = tmp.path().join("file");
        std::fs::write(&bad, "").unwrap();
        let bad = bad.join("rec");
        // required + unwritable: refused with the sentence, for WebSocket and SPDY alike.
        for mut h in [ws(), spdy()] {
            let Plan::Refuse(msg) = plan(&policy(Mode::Required, bad.clone(), &[]), "prod", &alice, &exec, &mut h)
            else {
                panic!("not refused")
            };
            assert!(
                msg.starts_with("exec sessions on kube cluster prod must be recorded, but the recording could not be started: cannot use the recordings directory") && msg.ends_with("Not a directory (os error 20)"),
                "{msg}"
            );
        }
        let good = tmp.path().join("rec");
        let Plan::Refuse(msg) = plan(&policy(Mode::Required, good.clone(), &[]), "prod", &alice, &exec, &mut spdy())
        else {
            panic!("SPDY under required must be refused")
        };
        assert!(msg.contains("SPDY/3.1") && msg.contains("kubectl >= 1.30"), "{msg}");
        let Plan::Session(h) = plan(&policy(Mode::BestEffort, good.clone(), &[]), "prod", &alice, &exec, &mut spdy())
        else {
            panic!("SPDY under best_effort passes")
        };
        assert!(!h.is_recorded());
        let Plan::Session(h) = plan(&policy(Mode::BestEffort, bad, &[]), "prod", &alice, &exec, &mut ws()) else {
            panic!("best_effort passes")
        };
        assert!(!h.is_recorded());
        let Plan::Session(h) = plan(&policy(Mode::Required, good.clone(), &[]), "prod", &alice, &exec, &mut ws())
        else {
            panic!("recorded")
        };
        assert!(h.is_recorded());
        drop(h); // never upgraded: its file is removed
        assert_eq!(std::fs::read_dir(&good).unwrap().count(), 0);
        // Groups: ops only, alice is dev: not recorded, not refused.
        let Plan::Session(h) = plan(&policy(Mode::Required, good, &["ops"]), "prod", &alice, &exec, &mut spdy()) else {
            panic!("not in a recorded group")
        };
        assert!(!h.is_recorded());
        let pf = uri("/api/v1/namespaces/default/pods/web-1/portforward");
        assert!(matches!(plan(&Policy::default(), "prod", &alice, &pf, &mut spdy()), Plan::Session(_)));
        let get = uri("/api/v1/namespaces/default/pods/web-1");
        assert!(matches!(plan(&Policy::default(), "prod", &alice, &get, &mut ws()), Plan::Pass));
    }
}
