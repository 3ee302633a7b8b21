//! The PostgreSQL store (`state: postgres://USER[:PASSWORD]@HOST[:PORT]/DB`), shared by
//! every server instance behind one load balancer. One connection per process,
//! opened on first use and again after it breaks. The schema is created at start,
//! under an advisory lock so instances starting together do not race, and recorded
//! in `oneport_schema_version`. Single use of a token is one conditional `UPDATE`.
//!
//! The connection is plaintext (`NoTls`): run the database on the same host or a
//! private network, or put it behind a TLS tunnel; `sslmode=require` is refused
//! rather than silently ignored.

use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls, Row};

use super::{unavailable, Invite, IssuedRecord, Redeem, Revocation, Selector, Store};
use crate::error::{Error, Result};

/// Deadline for connecting and for each statement.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The schema this build writes.
const VERSION: i32 = 1;
/// The advisory lock key that serialises migrations (any fixed number).
const MIGRATION_LOCK: i64 = 0x006f_6e65_706f_7274;

const MIGRATIONS: &[&str] = &[
    // 1: invites, issued certificates, revocations.
    "CREATE TABLE oneport_invites (
        hash text PRIMARY KEY, user_name text NOT NULL, groups text NOT NULL,
        ttl_secs bigint NOT NULL, renewable_for_secs bigint NOT NULL,
        created bigint NOT NULL, expires bigint NOT NULL, used_at bigint);
     CREATE TABLE oneport_issued (
        serial text PRIMARY KEY, user_name text NOT NULL, groups text NOT NULL,
        issued bigint NOT NULL, expires bigint NOT NULL, renewable_until bigint NOT NULL);
     CREATE INDEX oneport_issued_user ON oneport_issued (user_name);
     CREATE TABLE oneport_revocations (
        serial text PRIMARY KEY, user_name text NOT NULL, reason text NOT NULL, at bigint NOT NULL);",
];

/// A PostgreSQL database.
pub struct PgStore {
    config: tokio_postgres::Config,
    shown: String,
    client: Mutex<Option<Client>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("db", &self.shown).finish_non_exhaustive()
    }
}

impl PgStore {
    /// Parses the URL; connects on first use.
    ///
    /// # Errors
    /// When the URL does not parse or asks for TLS.
    pub fn new(url: &str) -> Result<PgStore> {
        let config: tokio_postgres::Config =
            url.parse().map_err(|e| Error::config(format!("state: the PostgreSQL URL does not parse: {e}")))?;
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(Error::config(
                "state: sslmode=require is not supported (the connection is plaintext): run the database on loopback or a private network",
            ));
        }
        let host = config
            .get_hosts()
            .iter()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(h) => h.clone(),
                tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .collect::<Vec<_>>()
            .join(",");
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let shown = format!(
            "postgres://{}@{host}:{port}/{}",
            config.get_user().unwrap_or(""),
            config.get_dbname().unwrap_or("")
        );
        Ok(PgStore { config, shown, client: Mutex::new(None) })
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        unavailable(&self.shown, e)
    }

    /// Runs `f` with a live connection, connecting first when needed. A statement
    /// that fails on a broken connection drops it, so the next call reconnects.
    async fn with<T>(
        &self,
        f: impl for<'c> FnOnce(&'c mut Client) -> BoxFuture<'c, std::result::Result<T, tokio_postgres::Error>>,
    ) -> Result<T> {
        let mut slot = self.client.lock().await;
        if slot.as_ref().is_none_or(Client::is_closed) {
            let connect = tokio::time::timeout(TIMEOUT, self.config.connect(NoTls)).await;
            let (client, conn) = match connect {
                Ok(Ok(x)) => x,
                Ok(Err(e)) => return Err(self.err(pg_text(&e))),
                Err(_) => return Err(self.err(format!("no connection within {}s", TIMEOUT.as_secs()))),
            };
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::warn!(error = %e, "state store connection ended");
                }
            });
            *slot = Some(client);
        }
        let Some(client) = slot.as_mut() else { return Err(self.err("no connection")) };
        match tokio::time::timeout(TIMEOUT, f(client)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                if client.is_closed() {
                    *slot = None;
                }
                Err(self.err(pg_text(&e)))
            }
            Err(_) => {
                *slot = None;
                Err(self.err(format!("no answer within {}s", TIMEOUT.as_secs())))
            }
        }
    }
}

/// The server's own words for an error, when it sent some.
fn pg_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => match std::error::Error::source(e) {
            Some(s) => format!("{e}: {s}"),
            None => e.to_string(),
        },
    }
}

fn groups_of(row: &Row, col: &str) -> Vec<String> {
    serde_json::from_str(row.get::<_, &str>(col)).unwrap_or_default()
}

fn json(groups: &[String]) -> String {
    serde_json::to_string(groups).unwrap_or_else(|_| "[]".into())
}

fn issued_of(row: &Row) -> IssuedRecord {
    IssuedRecord {
        serial: row.get("serial"),
        user: row.get("user_name"),
        groups: groups_of(row, "groups"),
        issued: row.get("issued"),
        expires: row.get("expires"),
        renewable_until: row.get("renewable_until"),
    }
}

fn revocation_of(row: &Row) -> Revocation {
    Revocation { serial: row.get("serial"), user: row.get("user_name"), reason: row.get("reason"), at: row.get("at") }
}

async fn migrate(client: &mut Client) -> std::result::Result<std::result::Result<(), String>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS oneport_schema_version (version integer NOT NULL)").await?;
    let current: i32 = tx
        .query_opt("SELECT max(version) AS v FROM oneport_schema_version", &[])
        .await?
        .and_then(|r| r.get::<_, Option<i32>>("v"))
        .unwrap_or(0);
    if current > VERSION {
        return Ok(Err(format!(
            "the database has schema {current}, newer than this oneport ({VERSION}): upgrade oneport"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.batch_execute(sql).await?;
        let v = i as i32 + 1;
        tx.execute("INSERT INTO oneport_schema_version (version) VALUES ($1)", &[&v]).await?;
        tracing::info!(version = v, "state store schema migrated");
    }
    tx.commit().await?;
    Ok(Ok(()))
}

impl Store for PgStore {
    fn describe(&self) -> String {
        self.shown.clone()
    }

    fn migrate(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.with(|c| Box::pin(migrate(c))).await?.map_err(|e| self.err(e)) })
    }

    fn add_invite(&self, i: Invite) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.with(move |c| {
                Box::pin(async move {
                    let (ttl, ren) = (i.ttl_secs as i64, i.renewable_for_secs as i64);
                    c.execute(
                        "INSERT INTO oneport_invites (hash, user_name, groups, ttl_secs, renewable_for_secs, created, expires)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        &[&i.hash, &i.user, &json(&i.groups), &ttl, &ren, &i.created, &i.expires],
                    )
                    .await
                    .map(drop)
                })
            })
            .await
        })
    }

    fn redeem(&self, hash: String, now: i64) -> BoxFuture<'_, Result<Redeem>> {
        Box::pin(async move {
            self.with(move |c| {
                Box::pin(async move {
                    let won = c
                        .query_opt(
                            "UPDATE oneport_invites SET used_at = $2
                             WHERE hash = $1 AND used_at IS NULL AND expires >= $2
                             RETURNING user_name, groups, ttl_secs, renewable_for_secs, created, expires",
                            &[&hash, &now],
                        )
                        .await?;
                    if let Some(r) = won {
                        return Ok(Redeem::Redeemed(Invite {
                            hash: hash.clone(),
                            user: r.get("user_name"),
                            groups: groups_of(&r, "groups"),
                            ttl_secs: r.get::<_, i64>("ttl_secs").max(0) as u64,
                            renewable_for_secs: r.get::<_, i64>("renewable_for_secs").max(0) as u64,
                            created: r.get("created"),
                            expires: r.get("expires"),
                        }));
                    }
                    let row =
                        c.query_opt("SELECT used_at, expires FROM oneport_invites WHERE hash = $1", &[&hash]).await?;
                    Ok(match row {
                        None => Redeem::Unknown,
                        Some(r) => match r.get::<_, Option<i64>>("used_at") {
                            Some(at) => Redeem::Used(at),
                            None => Redeem::Expired(r.get("expires")),
                        },
                    })
                })
            })
            .await
        })
    }

    fn record_issued(&self, r: IssuedRecord) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.with(move |c| {
                Box::pin(async move {
                    c.execute(
                        "INSERT INTO oneport_issued (serial, user_name, groups, issued, expires, renewable_until)
                         VALUES ($1, $2, $3, $4, $5, $6)",
                        &[&r.serial, &r.user, &json(&r.groups), &r.issued, &r.expires, &r.renewable_until],
                    )
                    .await
                    .map(drop)
                })
            })
            .await
        })
    }

    fn issued(&self, serial: String) -> BoxFuture<'_, Result<Option<IssuedRecord>>> {
        Box::pin(async move {
            self.with(move |c| {
                Box::pin(async move {
                    let row = c.query_opt("SELECT * FROM oneport_issued WHERE serial = $1", &[&serial]).await?;
                    Ok(row.as_ref().map(issued_of))
                })
            })
            .await
        })
    }

    fn list_issued(&self) -> BoxFuture<'_, Result<Vec<IssuedRecord>>> {
        Box::pin(async move {
            self.with(|c| {
                Box::pin(async move {
                    let rows = c.query("SELECT * FROM oneport_issued ORDER BY issued, serial", &[]).await?;
                    Ok(rows.iter().map(issued_of).collect())
                })
            })
            .await
        })
    }

    fn revoke(&self, sel: Selector, reason: String, now: i64) -> BoxFuture<'_, Result<Vec<Revocation>>> {
        Box::pin(async move {
            let (filter, key, what) = match &sel {
                Selector::Serial(s) => {
                    ("serial = $1", s.clone(), format!("no identity with serial {s} in {}", self.shown))
                }
                Selector::User(u) => (
                    "user_name = $1",
                    u.clone(),
                    format!("no identity was issued to {u:?} (see `server identities ls`)"),
                ),
            };
            let rows = self
                .with(move |c| {
                    Box::pin(async move {
                        c.execute(
                            &format!(
                                "INSERT INTO oneport_revocations (serial, user_name, reason, at)
                                 SELECT serial, user_name, $2, $3 FROM oneport_issued WHERE {filter}
                                 ON CONFLICT (serial) DO NOTHING"
                            ),
                            &[&key, &reason, &now],
                        )
                        .await?;
                        c.query(
                            &format!(
                                "SELECT r.* FROM oneport_revocations r JOIN oneport_issued i USING (serial) WHERE i.{filter}"
                            ),
                            &[&key],
                        )
                        .await
                    })
                })
                .await?;
            if rows.is_empty() {
                return Err(Error::config(what));
            }
            Ok(rows.iter().map(revocation_of).collect())
        })
    }

    fn revocations(&self) -> BoxFuture<'_, Result<Vec<Revocation>>> {
        Box::pin(async move {
            self.with(|c| {
                Box::pin(async move {
                    let rows = c.query("SELECT * FROM oneport_revocations", &[]).await?;
                    Ok(rows.iter().map(revocation_of).collect())
                })
            })
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let s = PgStore::new("postgres://oneport:secret@127.0.0.1:5433/state").unwrap();
        assert_eq!(s.describe(), "postgres://oneport@127.0.0.1:5433/state");
        assert!(!format!("{s:?}").contains("secret"));
        assert!(PgStore::new("postgres://h/db?sslmode=require").unwrap_err().to_string().contains("sslmode"));
        assert!(PgStore::new("postgres://h:notaport/db").is_err());
    }
}
