//! Database clients: the settings a client uses for the local hop, and the command
//! line of the matching client (psql; mariadb or mysql). No sockets here: the wire
//! codecs are in [`crate::proto::db`], the local proxy's per-connection handlers in
//! [`crate::client::local::db`].

use crate::tools::process::shell_quote;
use std::net::SocketAddr;

use crate::error::{Error, Result};
pub use crate::proto::db::DbProtocol;

/// Connection settings for the local hop: what a client (GUI or CLI) is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The database's protocol.
    pub protocol: DbProtocol,
    /// The local proxy's address.
    pub addr: SocketAddr,
    /// The database user.
    pub user: String,
    /// The database (schema) name; `None` leaves the client's default.
    pub database: Option<String>,
}

impl Settings {
    fn host(&self) -> String {
        match self.addr {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        }
    }

    /// A connection URL in the client's usual scheme.
    pub fn url(&self) -> String {
        let (host, port) = (self.host(), self.addr.port());
        let path = self.database.as_deref().map(|d| format!("/{}", percent_encode(d))).unwrap_or_default();
        let user = percent_encode(&self.user);
        match self.protocol {
            DbProtocol::Postgres => format!("postgres://{user}@{host}:{port}{path}"),
            DbProtocol::Mysql => format!("mysql://{user}@{host}:{port}{path}"),
            DbProtocol::Mongodb => format!("mongodb://{host}:{port}{path}"),
            DbProtocol::Redis => format!("redis://{host}:{port}"),
        }
    }

    /// Ready-to-paste settings for a GUI client, one `name: value` per line.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!("host:     {}", self.addr.ip()), format!("port:     {}", self.addr.port())];
        if matches!(self.protocol, DbProtocol::Postgres | DbProtocol::Mysql) {
            out.push(format!("user:     {}", self.user));
            out.push(format!("database: {}", self.database.as_deref().unwrap_or("(the server's default)")));
        }
        let ssl = match self.protocol {
            DbProtocol::Postgres => "SSL:      off (sslmode=disable; \"prefer\" works too)",
            _ => "SSL:      off",
        };
        out.push(ssl.to_string());
        out.push(format!("URL:      {}", self.url()));
        out
    }
}

/// A program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCommand {
    /// The program (looked up on PATH).
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
}

impl std::fmt::Display for ClientCommand {
    /// The command as a POSIX shell line, quoted where needed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&shell_quote(&self.program))?;
        for a in &self.args {
            write!(f, " {}", shell_quote(a))?;
        }
        Ok(())
    }
}

/// The client program to show for `protocol`: `mariadb` is preferred to `mysql`
/// when it is installed (`on_path` says which programs are).
pub fn client_program(protocol: DbProtocol, on_path: &dyn Fn(&str) -> bool) -> &'static str {
    match protocol {
        DbProtocol::Postgres => "psql",
        DbProtocol::Mysql if on_path("mariadb") || !on_path("mysql") => "mariadb",
        DbProtocol::Mysql => "mysql",
        DbProtocol::Mongodb => "mongosh",
        DbProtocol::Redis => "redis-cli",
    }
}

/// The command that connects the usual client to the local proxy, with `extra`
/// arguments appended (for display by `proxy db`).
pub fn client_command(s: &Settings, extra: &[String], on_path: &dyn Fn(&str) -> bool) -> ClientCommand {
    let program = client_program(s.protocol, on_path).to_string();
    let mut args = match s.protocol {
        DbProtocol::Postgres | DbProtocol::Mongodb => vec![s.url()],
        DbProtocol::Mysql => {
            let mut a = vec!["--user".to_string(), s.user.clone()];
            if let Some(d) = &s.database {
                a.extend(["--database".to_string(), d.clone()]);
            }
            a.extend(["--host".into(), s.addr.ip().to_string(), "--port".into(), s.addr.port().to_string()]);
            a.extend(["--protocol".to_string(), "TCP".to_string()]);
            a
        }
        DbProtocol::Redis => vec!["-h".into(), s.addr.ip().to_string(), "-p".into(), s.addr.port().to_string()],
    };
    args.extend(extra.iter().cloned());
    ClientCommand { program, args }
}

/// The command line `proxy db` suggests: [`client_command`], with mysql's `-p` so
/// the client asks for the password (Enter alone for an account without one).
pub fn suggested_command(s: &Settings, on_path: &dyn Fn(&str) -> bool) -> ClientCommand {
    let extra = match s.protocol {
        DbProtocol::Mysql => vec!["-p".to_string()],
        _ => vec![],
    };
    client_command(s, &extra, on_path)
}

/// The argument that makes psql, mariadb and mysql ask for the password first
/// (psql also asks by itself whenever the server wants one; mysql never does).
pub const PASSWORD_PROMPT: &str = "--password";

/// The command `db connect` runs: as [`client_command`], but only for the clients
/// it supports, and only when one is installed.
///
/// # Errors
/// [`Error::Config`] naming the package to install, or saying to use `proxy db`.
pub fn connect_command(s: &Settings, extra: &[String], on_path: &dyn Fn(&str) -> bool) -> Result<ClientCommand> {
    let cmd = client_command(s, extra, on_path);
    let missing = match s.protocol {
        DbProtocol::Postgres => "psql was not found on PATH: install the PostgreSQL client \
             (Debian/Ubuntu: apt install postgresql-client; Fedora: dnf install postgresql; macOS: brew install libpq)",
        DbProtocol::Mysql => "neither mariadb nor mysql was found on PATH: install the MariaDB client \
             (Debian/Ubuntu: apt install mariadb-client; Fedora: dnf install mariadb; macOS: brew install mariadb)",
        other => {
            return Err(Error::config(format!(
                "`db connect` runs psql and mysql; for a {} database run `oneport proxy db NAME` and point {} at the address it prints",
                other.as_str(),
                cmd.program
            )))
        }
    };
    if !on_path(&cmd.program) {
        return Err(Error::config(format!("{missing}; or run `oneport proxy db NAME` and use another client")));
    }
    Ok(cmd)
}

/// Percent-encodes everything but RFC 3986 unreserved characters (for URL user and
/// path parts).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(protocol: DbProtocol, database: Option<&str>) -> Settings {
        Settings {
            protocol,
            addr: "127.0.0.1:15432".parse().unwrap(),
            user: "postgres".into(),
            database: database.map(str::to_string),
        }
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn urls() {
        assert_eq!(settings(DbProtocol::Postgres, Some("app")).url(), "postgres://postgres@127.0.0.1:15432/app");
        assert_eq!(settings(DbProtocol::Postgres, None).url(), "postgres://postgres@127.0.0.1:15432");
        let mut s = settings(DbProtocol::Mysql, Some("my db"));
        s.user = "a@b:c".into();
        assert_eq!(s.url(), "mysql://a%40b%3Ac@127.0.0.1:15432/my%20db");
        s.addr = "[::1]:3306".parse().unwrap();
        assert!(s.url().contains("@[::1]:3306/"), "{}", s.url());
        assert_eq!(settings(DbProtocol::Redis, Some("x")).url(), "redis://127.0.0.1:15432");
    }

    #[test]
    fn psql_command() {
        let all = |_: &str| true;
        let cmd =
            connect_command(&settings(DbProtocol::Postgres, Some("app")), &strs(&["-c", "select 1"]), &all).unwrap();
        assert_eq!(cmd.program, "psql");
        assert_eq!(cmd.args, strs(&["postgres://postgres@127.0.0.1:15432/app", "-c", "select 1"]));
        assert_eq!(cmd.to_string(), "psql postgres://postgres@127.0.0.1:15432/app -c 'select 1'");
    }

    #[test]
    fn mysql_command_prefers_mariadb() {
        let s = settings(DbProtocol::Mysql, Some("shop"));
        let want_args = strs(&[
            "--user",
            "postgres",
            "--database",
            "shop",
            "--host",
            "127.0.0.1",
            "--port",
            "15432",
            "--protocol",
            "TCP",
        ]);
        let cmd = connect_command(&s, &[], &|_| true).unwrap();
        assert_eq!((cmd.program.as_str(), &cmd.args), ("mariadb", &want_args));
        let only_mysql = |p: &str| p == "mysql";
        assert_eq!(connect_command(&s, &[], &only_mysql).unwrap().program, "mysql");
        let no_db = client_command(&settings(DbProtocol::Mysql, None), &strs(&["-e", "select 1"]), &only_mysql);
        assert!(!no_db.args.contains(&"--database".to_string()));
        assert_eq!(no_db.args[no_db.args.len() - 2..], strs(&["-e", "select 1"]));
    }

    #[test]
    fn suggested_mysql_line_asks_for_the_password() {
        let s = settings(DbProtocol::Mysql, None);
        let cmd = suggested_command(&s, &|p| p == "mariadb");
        assert_eq!(cmd.to_string(), "mariadb --user postgres --host 127.0.0.1 --port 15432 --protocol TCP -p");
        let pg = suggested_command(&settings(DbProtocol::Postgres, None), &|_| true);
        assert_eq!(pg.to_string(), "psql postgres://postgres@127.0.0.1:15432", "psql asks by itself");
    }

    #[test]
    fn missing_clients_name_the_package() {
        let none = |_: &str| false;
        let err = connect_command(&settings(DbProtocol::Postgres, None), &[], &none).unwrap_err().to_string();
        assert!(err.contains("postgresql-client") && err.contains("psql"), "{err}");
        let err = connect_command(&settings(DbProtocol::Mysql, None), &[], &none).unwrap_err().to_string();
        assert!(err.contains("mariadb-client"), "{err}");
        let err = connect_command(&settings(DbProtocol::Redis, None), &[], &|_| true).unwrap_err().to_string();
        assert!(err.contains("proxy db") && err.contains("redis-cli"), "{err}");
    }

    #[test]
    fn settings_lines_for_gui_clients() {
        let lines = settings(DbProtocol::Postgres, Some("app")).lines();
        assert_eq!(lines[0], "host:     127.0.0.1");
        assert_eq!(lines[1], "port:     15432");
        assert!(lines.iter().any(|l| l == "user:     postgres"));
        assert!(lines.iter().any(|l| l == "database: app"));
        assert!(lines.iter().any(|l| l.contains("sslmode=disable")));
        assert!(settings(DbProtocol::Mysql, None).lines().iter().any(|l| l.contains("server's default")));
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("plain-arg_1.0"), "plain-arg_1.0");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("a b"), "'a b'");
    }
}
