//! Kubernetes `Status` error bodies. kubectl prints `Error from server (<reason>):
//! <message>` for them, so refusals and upstream failures read like API errors.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Response, StatusCode};

use crate::kube::forward::Body;

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

#[cfg(test)]
mod tests {
    use super::*;

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
