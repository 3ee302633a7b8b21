//! Kubernetes `Status` error bodies. kubectl prints `Error from server (<reason>):
//! <message>` for them, so refusals and upstream failures read like API errors.
//!
//! One wrinkle: client-go reads discovery answers (`/api`, `/apis`, `/version`, ...)
//! raw, and for an error it only shows the body when the content type is `text/*`;
//! a JSON `Status` there prints as `Error from server (Forbidden): unknown`. Since
//! discovery is the first thing kubectl asks for, [`for_path`] answers discovery
//! paths with the same status code and the message as plain text, and every other
//! path with the `Status` JSON.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Response, StatusCode};

use crate::proto::http::Body;

/// A `Status` JSON (apiVersion v1, status Failure) with the reason Kubernetes uses
/// for `code`.
pub fn body(code: StatusCode, message: &str) -> serde_json::Value {
    serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason(code),
        "code": code.as_u16(),
    })
}

/// The Kubernetes `StatusReason` for an HTTP status.
pub fn reason(code: StatusCode) -> &'static str {
    match code.as_u16() {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        504 => "Timeout",
        503 | 502 => "ServiceUnavailable",
        _ => "InternalError",
    }
}

/// A response carrying [`body`].
pub fn response(code: StatusCode, message: &str) -> Response<Body> {
    let bytes = serde_json::to_vec(&body(code, message)).unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(bytes)).map_err(|never| match never {}).boxed_unsync());
    *r.status_mut() = code;
    r.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    r
}

/// Whether client-go reads errors for `path` raw (discovery and version endpoints).
pub fn is_discovery(path: &str) -> bool {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["version"] | ["api"] | ["apis"] | ["api", _] | ["apis", _] | ["apis", _, _] => true,
        [first, ..] => *first == "openapi",
        [] => false,
    }
}

/// The error answer for a request to `path`: plain text for discovery paths (see
/// the module docs), the `Status` JSON otherwise.
pub fn for_path(path: &str, code: StatusCode, message: &str) -> Response<Body> {
    if !is_discovery(path) {
        return response(code, message);
    }
    let body = Full::new(Bytes::from(format!("{message}\n"))).map_err(|never| match never {}).boxed_unsync();
    let mut r = Response::new(body);
    *r.status_mut() = code;
    r.headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_paths() {
        for p in ["/version", "/api", "/api/v1", "/apis", "/apis/apps", "/apis/apps/v1/", "/openapi/v3"] {
            assert!(is_discovery(p), "{p}");
        }
        for p in ["/", "/api/v1/pods", "/api/v1/namespaces/default/pods", "/apis/apps/v1/deployments", "/healthz"] {
            assert!(!is_discovery(p), "{p}");
        }
        let r = for_path("/api", StatusCode::FORBIDDEN, "no");
        assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
        let r = for_path("/api/v1/namespaces/default/pods", StatusCode::FORBIDDEN, "no");
        assert_eq!(r.headers()["content-type"], "application/json");
    }

    #[test]
    fn forbidden_status_is_what_kubectl_expects() {
        let v = body(StatusCode::FORBIDDEN, "access to kube cluster dev denied for user bob");
        assert_eq!(v["kind"], "Status");
        assert_eq!(v["apiVersion"], "v1");
        assert_eq!(v["status"], "Failure");
        assert_eq!(v["reason"], "Forbidden");
        assert_eq!(v["code"], 403);
        assert_eq!(v["message"], "access to kube cluster dev denied for user bob");
        assert_eq!(reason(StatusCode::BAD_GATEWAY), "ServiceUnavailable");
        assert_eq!(reason(StatusCode::IM_A_TEAPOT), "InternalError");
    }
}
