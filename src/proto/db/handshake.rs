//! The first exchanges of a database session, over any byte stream: reading a
//! Postgres client's messages up to its startup (encryption requests answered `N`),
//! and saying no in the client's own protocol: a FATAL `ErrorResponse` after the
//! startup for Postgres; for MySQL a greeting, the client's handshake response,
//! then `ERR`. The local proxy uses them around its tunnels (refusals), the server
//! when a database it routes to cannot be reached.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::proto::db::postgres::{self, Startup};
use crate::proto::db::{mysql, DbProtocol};

/// libpq sends at most one `GSSENCRequest` and one `SSLRequest` before the startup.
const MAX_ENCRYPTION_REQUESTS: usize = 2;

/// Why the Postgres prelude ended without a startup message.
#[derive(Debug)]
pub enum PreludeError {
    /// The client went away or the socket failed.
    Io(io::Error),
    /// The client sent something we cannot relay; the message says what.
    Protocol(String),
}

impl From<io::Error> for PreludeError {
    fn from(e: io::Error) -> Self {
        PreludeError::Io(e)
    }
}

/// Reads the client's messages up to its startup message or cancel request,
/// answering encryption requests with `N`. Returns that message with the bytes
/// read so far (the message first, then whatever the client sent after it).
///
/// # Errors
/// [`PreludeError`]: the client left, or sent something that is not PostgreSQL.
pub async fn prelude<S: AsyncRead + AsyncWrite + Unpin + ?Sized>(
    io: &mut S,
) -> Result<(Startup, Vec<u8>), PreludeError> {
    let mut buf = Vec::with_capacity(512);
    let mut encryption_requests = 0;
    loop {
        match postgres::parse(&buf).map_err(|e| PreludeError::Protocol(e.to_string()))? {
            Some((Startup::SslRequest | Startup::GssEncRequest, n)) => {
                encryption_requests += 1;
                if encryption_requests > MAX_ENCRYPTION_REQUESTS {
                    return Err(PreludeError::Protocol(
                        "the client asked for encryption a third time instead of sending its startup message".into(),
                    ));
                }
                buf.drain(..n);
                io.write_all(&[postgres::REFUSE_ENCRYPTION]).await?;
            }
            Some((msg, _)) => return Ok((msg, buf)),
            None => {
                if io.read_buf(&mut buf).await? == 0 {
                    return Err(PreludeError::Io(io::ErrorKind::UnexpectedEof.into()));
                }
            }
        }
    }
}

/// Refuses a MySQL client as a server would: greets it, reads its handshake
/// response (credentials: read, dropped, never logged), and answers with an `ERR`
/// packet carrying `code`, `state` and `text`.
///
/// # Errors
/// I/O errors, or `InvalidData` for an absurd response length.
pub async fn refuse_mysql<S: AsyncRead + AsyncWrite + Unpin + ?Sized>(
    io: &mut S,
    code: u16,
    state: &str,
    text: &str,
) -> io::Result<()> {
    let mut scramble = [0u8; 20];
    // Printable and never NUL, as servers do; nothing is ever checked against it.
    scramble.iter_mut().for_each(|b| *b = rand::random_range(b'!'..=b'~'));
    io.write_all(&mysql::greeting(&scramble)).await?;
    let mut h = [0u8; 4];
    io.read_exact(&mut h).await?;
    let (len, seq) = mysql::header(h);
    if len > mysql::MAX_HANDSHAKE_RESPONSE {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "handshake response too large"));
    }
    io.read_exact(&mut vec![0u8; len]).await?;
    io.write_all(&mysql::err_packet(seq.wrapping_add(1), code, state, text)).await?;
    io.shutdown().await
}

/// Tells a client of a `protocol` database, in that protocol, that the database
/// cannot be reached (`message` says why), within `limit`. Postgres: read the
/// startup message and answer it with a FATAL `ErrorResponse` (SQLSTATE 08001; a
/// cancel request gets nothing). MySQL: greeting, response, `ERR` 1105. MongoDB and
/// Redis: nothing (they have no such message before a session).
pub async fn unreachable<S: AsyncRead + AsyncWrite + Unpin + ?Sized>(
    io: &mut S,
    protocol: DbProtocol,
    message: &str,
    limit: Duration,
) {
    let _ = tokio::time::timeout(limit, async {
        match protocol {
            DbProtocol::Postgres => {
                if let Ok((Startup::Startup { .. }, _)) = prelude(io).await {
                    let reply = postgres::error_response(postgres::SQLSTATE_UNABLE_TO_CONNECT, message);
                    io.write_all(&reply).await?;
                }
                io.shutdown().await
            }
            DbProtocol::Mysql => refuse_mysql(io, mysql::ER_UNKNOWN, mysql::SQLSTATE_GENERAL, message).await,
            DbProtocol::Mongodb | DbProtocol::Redis => Ok(()),
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(code: u32) -> Vec<u8> {
        [8u32.to_be_bytes(), code.to_be_bytes()].concat()
    }

    #[tokio::test]
    async fn prelude_answers_n_and_returns_the_startup_with_what_follows() {
        let (mut client, mut proxy) = tokio::io::duplex(4096);
        let startup = postgres::startup_message(&[("user", "postgres"), ("database", "app")]);
        let task = tokio::spawn(async move { prelude(&mut proxy).await.map_err(|e| format!("{e:?}")) });
        client.write_all(&request(postgres::GSSENC_REQUEST_CODE)).await.unwrap();
        let mut answer = [0u8; 1];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"N");
        client.write_all(&request(postgres::SSL_REQUEST_CODE)).await.unwrap();
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"N");
        // The startup and a pipelined message arrive together: both must be kept.
        client.write_all(&[startup.clone(), b"Qextra".to_vec()].concat()).await.unwrap();
        let (msg, buffered) = task.await.unwrap().unwrap();
        assert_eq!(msg.param("database"), Some("app"));
        assert_eq!(buffered, [startup, b"Qextra".to_vec()].concat());
    }

    #[tokio::test]
    async fn prelude_passes_a_cancel_request_on() {
        let (mut client, mut proxy) = tokio::io::duplex(4096);
        let cancel =
            [16u32.to_be_bytes(), postgres::CANCEL_REQUEST_CODE.to_be_bytes(), 77u32.to_be_bytes(), [1; 4]].concat();
        client.write_all(&cancel).await.unwrap();
        let (msg, buffered) = prelude(&mut proxy).await.unwrap();
        assert_eq!(msg, Startup::Cancel { pid: 77 });
        assert_eq!(buffered, cancel);
    }

    #[tokio::test]
    async fn prelude_rejects_garbage_and_endless_negotiation() {
        let (mut client, mut proxy) = tokio::io::duplex(4096);
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        assert!(matches!(prelude(&mut proxy).await, Err(PreludeError::Protocol(e)) if e.contains("length")));

        let (mut client, mut proxy) = tokio::io::duplex(4096);
        client.write_all(&request(postgres::SSL_REQUEST_CODE).repeat(3)).await.unwrap();
        assert!(matches!(prelude(&mut proxy).await, Err(PreludeError::Protocol(e)) if e.contains("third time")));

        let (client, mut proxy) = tokio::io::duplex(4096);
        drop(client);
        assert!(matches!(prelude(&mut proxy).await, Err(PreludeError::Io(_))));
    }

    #[tokio::test]
    async fn mysql_refusal_greets_then_answers_the_response_with_err() {
        let (mut client, mut proxy) = tokio::io::duplex(4096);
        let task = tokio::spawn(async move {
            refuse_mysql(&mut proxy, mysql::ER_ACCESS_DENIED, mysql::SQLSTATE_DENIED, "denied").await
        });
        let mut h = [0u8; 4];
        client.read_exact(&mut h).await.unwrap();
        let (len, seq) = mysql::header(h);
        let mut greeting = vec![0u8; len];
        client.read_exact(&mut greeting).await.unwrap();
        assert_eq!((seq, greeting[0]), (0, 10), "a HandshakeV10 greeting first");
        client.write_all(&mysql::packet(1, &[0u8; 40])).await.unwrap();
        let mut err = Vec::new();
        client.read_to_end(&mut err).await.unwrap();
        assert_eq!(err, mysql::err_packet(2, 1045, "28000", "denied"), "ERR follows the client's sequence id");
        task.await.unwrap().unwrap();

        // A client that sends an absurd packet is dropped, not read into memory.
        let (mut client, mut proxy) = tokio::io::duplex(4096);
        let task = tokio::spawn(async move { refuse_mysql(&mut proxy, 1045, "28000", "x").await });
        let mut greeting = vec![0u8; 4096];
        let _ = client.read(&mut greeting).await.unwrap();
        client.write_all(&[0xff, 0xff, 0xff, 1]).await.unwrap();
        assert_eq!(task.await.unwrap().unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn unreachable_postgres_answers_the_startup_with_08001() {
        let (mut client, mut proxy) = tokio::io::duplex(4096);
        let task = tokio::spawn(async move {
            unreachable(&mut proxy, DbProtocol::Postgres, "database pg1 is down", Duration::from_secs(5)).await
        });
        client.write_all(&postgres::startup_message(&[("user", "u")])).await.unwrap();
        let mut reply = Vec::new();
        client.read_to_end(&mut reply).await.unwrap();
        assert_eq!(reply, postgres::error_response("08001", "database pg1 is down"));
        task.await.unwrap();
    }
}
