//! How bytes move, for both ends: the one accept loop ([`accept`]) and the one
//! connect-with-deadline ([`connect`]) with their socket options, the books of
//! every connection's tasks ([`tasks`]), boxed streams ([`io`]), live counters of a listener's connections
//! ([`meter`]), read budgets for
//! peers that have not authenticated ([`budget`]), the one relay ([`relay`]),
//! ping framing ([`ping`]), the single-threaded runtimes a server's connections are spread over ([`shards`]), HTTP/2 multiplexed sessions ([`mux`]), stdin/stdout as a stream ([`stdio`]), TLS configuration
//! ([`tls`]), WebSocket as a byte stream ([`websocket`]) and HTTP/1.1 forwarding
//! with upgrades ([`http_forward`]). No knowledge of who is the client or the server.

pub mod accept;
pub mod budget;
pub mod connect;
pub mod http_forward;
pub mod io;
pub mod meter;
pub mod mux;
pub mod ping;
pub mod relay;
pub mod shards;
pub mod stdio;
pub mod tasks;
pub mod tls;
pub mod websocket;
