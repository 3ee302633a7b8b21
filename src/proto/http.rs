//! The HTTP body type both ends answer with: an upstream body streamed through, or a
//! small generated one (a Kubernetes `Status`, an error page).

use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Bytes;

/// A boxed response body.
pub type Body = UnsyncBoxBody<Bytes, hyper::Error>;
