//! SSH integration, pure: which node (and port) OpenSSH's `%r@%h:%p` names for
//! `proxy ssh`, and the ProxyCommand and `ssh_config` block (with ControlMaster
//! settings) `config ssh` prints, quoted for the shell OpenSSH runs a ProxyCommand with. No I/O here; `cli::ssh` does the dialling.

use std::fmt::Write as _;
use std::path::Path;

use crate::proto::naming;

/// The port OpenSSH passes as `%p` when the user gave none.
pub const DEFAULT_PORT: u16 = naming::SSH_DEFAULT_PORT;

/// What OpenSSH asked the ProxyCommand for: `[USER@]HOST[:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// The remote user (`%r`); sshd learns it from SSH itself, we only log it.
    pub user: Option<String>,
    /// The host as the user typed it (`%h`): a node name, or `NODE.<cluster>`.
    pub host: String,
    /// The port (`%p`), when given.
    pub port: Option<u16>,
}

impl SshTarget {
    /// Parses `[USER@]HOST[:PORT]`; the user may itself contain `@` (the last one
    /// separates it), an IPv6 host goes in brackets.
    ///
    /// # Errors
    /// A sentence saying what is wrong with the argument.
    pub fn parse(s: &str) -> Result<SshTarget, String> {
        let (user, rest) = match s.rsplit_once('@') {
            Some((u, r)) => (Some(u).filter(|u| !u.is_empty()).map(str::to_string), r),
            None => (None, s),
        };
        let bad_port = |p: &str| format!("{s:?}: port {p:?} is not a number from 1 to 65535");
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let (h, after) = inner.split_once(']').ok_or_else(|| format!("{s:?}: missing ']'"))?;
            match after {
                "" => (h, None),
                _ => {
                    let p = after.strip_prefix(':').ok_or_else(|| format!("{s:?}: expected [HOST]:PORT"))?;
                    (h, Some(p))
                }
            }
        } else {
            match rest.split_once(':') {
                Some((h, p)) if !p.contains(':') => (h, Some(p)),
                Some(_) => return Err(format!("{s:?}: put an IPv6 host in brackets, [::1]:22")),
                None => (rest, None),
            }
        };
        let port = match port {
            Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| bad_port(p))?),
            None => None,
        };
        if host.is_empty() {
            return Err(format!("{s:?}: no host; expected [USER@]HOST[:PORT], as in %r@%h:%p"));
        }
        Ok(SshTarget { user, host: host.to_string(), port })
    }

    /// The port to ask the proxy for: none when the user asked for none or for 22.
    pub fn requested_port(&self) -> Option<u16> {
        self.port.filter(|p| *p != DEFAULT_PORT)
    }
}

/// The node a host names: `web1`, or `web1.<cluster>` with the cluster suffix
/// stripped (case and a trailing dot do not matter).
///
/// # Errors
/// When what is left is not a node name.
pub fn node_name(host: &str, cluster: &str) -> Result<String, String> {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    let c = cluster.trim_end_matches('.').to_ascii_lowercase();
    let name = match h.strip_suffix(&format!(".{c}")) {
        Some(n) if !c.is_empty() => n,
        _ => &h,
    };
    if naming::valid_name(name) {
        Ok(name.to_string())
    } else {
        Err(format!(
            "{host:?} does not name a node of cluster {cluster}: expected NODE or NODE.{cluster}, where NODE is one \
             DNS label (letters, digits and '-'; `oneport ls` lists the nodes)"
        ))
    }
}

/// The shell OpenSSH runs a ProxyCommand with, for quoting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    /// `$SHELL -c "exec ..."` (Unix): double quotes with `\`, `"`, `$` and `` ` `` escaped.
    Posix,
    /// Win32-OpenSSH: Windows command-line rules (double quotes; backslashes are
    /// literal except before a quote).
    Windows,
}

impl Shell {
    /// The shell of the platform this binary runs on.
    pub fn native() -> Shell {
        if cfg!(windows) {
            Shell::Windows
        } else {
            Shell::Posix
        }
    }
}

/// Characters that need no quoting in either shell (nor in ssh_config's own
/// tokenizer, which checks a ProxyCommand line for balanced quotes).
fn is_plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_./:=@,+".contains(c)
}

/// One word of a ProxyCommand: `%` doubled (OpenSSH expands `%` tokens in the whole
/// command), then quoted for `shell` when it holds anything but plain characters, or
/// always when `always_quote` (paths: `"C:\Program Files\oneport.exe"`).
///
/// # Errors
/// For a line break or NUL (an ssh_config line cannot hold one) and, on Windows,
/// a double quote (no Windows path contains one).
pub fn quote_word(word: &str, shell: Shell, always_quote: bool) -> Result<String, String> {
    if word.contains(['\n', '\r', '\0']) {
        return Err(format!("{word:?} contains a line break: it cannot be written into ssh_config"));
    }
    let word = word.replace('%', "%%");
    if !always_quote && !word.is_empty() && word.chars().all(is_plain) {
        return Ok(word);
    }
    let mut out = String::with_capacity(word.len() + 2);
    out.push('"');
    match shell {
        Shell::Posix => {
            for c in word.chars() {
                if matches!(c, '\\' | '"' | '$' | '`') {
                    out.push('\\');
                }
                out.push(c);
            }
        }
        Shell::Windows => {
            if word.contains('"') {
                return Err(format!("{word:?} contains a double quote: it cannot be quoted for Windows"));
            }
            out.push_str(&word);
            // Backslashes right before the closing quote would escape it: double them.
            let trailing = word.len() - word.trim_end_matches('\\').len();
            out.push_str(&"\\".repeat(trailing));
        }
    }
    out.push('"');
    Ok(out)
}

/// What goes into the `ssh_config` block.
#[derive(Debug, Clone)]
pub struct ConfigSpec<'a> {
    /// The cluster: nodes are reached as `NODE.<cluster>`.
    pub cluster: &'a str,
    /// The proxy, `HOST:PORT`, passed as `--proxy` so the block keeps working
    /// whatever profile is current.
    pub proxy: &'a str,
    /// The proxy's host, excluded from the pattern (it is never reached through itself).
    pub proxy_host: &'a str,
    /// The absolute path of the `oneport` binary.
    pub program: &'a Path,
    /// `--identity`, when given (absolute).
    pub identity: Option<&'a Path>,
    /// `--ca`, when given (absolute).
    pub ca: Option<&'a Path>,
    /// `--insecure`, when given.
    pub insecure: bool,
    /// `ONEPORT_HOME`, when set: said in a comment, since ssh must run with it too.
    pub home: Option<&'a Path>,
}

/// Whether a cluster name can go into a `Host` pattern and a `--cluster=` word as is.
fn valid_cluster(c: &str) -> bool {
    !c.is_empty() && !c.starts_with(['.', '-']) && c.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// The `ProxyCommand` line for `spec` (ending in `%r@%h:%p`), quoted for `shell`:
/// what `config ssh` writes into the block and `oneport ssh` passes with `-o`.
///
/// # Errors
/// When the cluster name or a path cannot be written into ssh_config.
pub fn proxy_command(spec: &ConfigSpec<'_>, shell: Shell) -> Result<String, String> {
    let cluster = spec.cluster;
    if !valid_cluster(cluster) {
        return Err(format!(
            "cluster name {cluster:?} cannot go into an ssh_config Host pattern (letters, digits, '.', '_', '-')"
        ));
    }
    let path = |p: &Path| quote_word(&p.to_string_lossy(), shell, true);
    let mut cmd = vec![path(spec.program)?, "proxy".into(), "ssh".into(), format!("--cluster={cluster}")];
    cmd.push(format!("--proxy={}", quote_word(spec.proxy, shell, false)?));
    if let Some(id) = spec.identity {
        cmd.push(format!("--identity={}", path(id)?));
    }
    if let Some(ca) = spec.ca {
        cmd.push(format!("--ca={}", path(ca)?));
    }
    if spec.insecure {
        cmd.push("--insecure".into());
    }
    cmd.push("%r@%h:%p".into());
    Ok(cmd.join(" "))
}

/// How long an idle ControlMaster connection stays open after its last session.
pub const CONTROL_PERSIST: &str = "10m";

/// The `ControlPath` for master sockets in `dir` (one per user, node and port:
/// `%C`), or why `dir` cannot be written there. ssh expands `%` and `~` in it and
/// does not unescape anything else, so only plain paths are accepted.
///
/// # Errors
/// When `dir` holds characters ssh_config would misread, or is too long for a
/// Unix socket path.
pub fn control_path(dir: &Path) -> Result<String, String> {
    let d = dir.to_string_lossy();
    if let Some(c) = d.chars().find(|c| c.is_control() || "\"\\%~'".contains(*c)) {
        return Err(format!(
            "{d} cannot be the ControlPath directory: ssh_config would misread {c:?} in it; set ONEPORT_HOME to a plain path"
        ));
    }
    // sun_path holds 108 bytes (104 on macOS); %C is 40 hex digits, and ssh adds a
    // random suffix of about 17 while it creates the socket.
    if d.len() + 1 + 40 + 17 > 104 {
        return Err(format!(
            "{d} is too long for ssh's control sockets (Unix socket paths are limited to about 100 bytes); set ONEPORT_HOME to a shorter path"
        ));
    }
    Ok(if d.contains(' ') { format!("\"{d}/%C\"") } else { format!("{d}/%C") })
}

/// Renders the `ssh_config` block for `spec`, quoted for `shell`; with
/// `control_path`, the block also shares one connection per node (ControlMaster).
///
/// # Errors
/// When the cluster name or a path cannot be written into ssh_config.
pub fn render_config(spec: &ConfigSpec<'_>, shell: Shell, control_path: Option<&str>) -> Result<String, String> {
    let cluster = spec.cluster;
    let command = proxy_command(spec, shell)?;
    let host = spec.proxy_host.trim_start_matches('[').trim_end_matches(']');
    let exclude = if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || ".-_:".contains(c)) {
        String::new()
    } else {
        format!(" !{host}")
    };

    let mut out = String::new();
    let _ = writeln!(out, "# oneport: SSH to the nodes of cluster {cluster} through proxy {}.", spec.proxy);
    let _ = writeln!(out, "# Append this block to ~/.ssh/config, then run: ssh USER@NODE.{cluster}");
    if let Some(home) = spec.home {
        let _ = writeln!(
            out,
            "# It uses the login in ONEPORT_HOME={}: run ssh with the same ONEPORT_HOME.",
            home.display()
        );
    }
    if control_path.is_some() {
        let _ = writeln!(
            out,
            "# ControlMaster: the first ssh to a USER@NODE opens one connection (one TLS through the proxy, one\n\
             # login); later ssh, scp, sftp and rsync to it reuse that connection, and it stays open for\n\
             # {CONTROL_PERSIST} after the last one ends. `ssh -O check USER@NODE.{cluster}` shows it, `-O exit` closes it."
        );
    }
    let _ = writeln!(out, "Host *.{cluster}{exclude}");
    let _ = writeln!(out, "    ProxyCommand {command}");
    if let Some(path) = control_path {
        let _ = writeln!(out, "    ControlMaster auto");
        let _ = writeln!(out, "    ControlPath {path}");
        let _ = writeln!(out, "    ControlPersist {CONTROL_PERSIST}");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(user: Option<&str>, host: &str, port: Option<u16>) -> SshTarget {
        SshTarget { user: user.map(str::to_string), host: host.into(), port }
    }

    #[test]
    fn parses_targets() {
        assert_eq!(SshTarget::parse("root@web1:22").unwrap(), t(Some("root"), "web1", Some(22)));
        assert_eq!(SshTarget::parse("web1").unwrap(), t(None, "web1", None));
        assert_eq!(SshTarget::parse("web1.test:2222").unwrap(), t(None, "web1.test", Some(2222)));
        assert_eq!(SshTarget::parse("a@b.c@web1:22").unwrap(), t(Some("a@b.c"), "web1", Some(22)));
        assert_eq!(SshTarget::parse("@web1").unwrap(), t(None, "web1", None));
        assert_eq!(SshTarget::parse("u@[::1]:22").unwrap(), t(Some("u"), "::1", Some(22)));
        assert_eq!(SshTarget::parse("[::1]").unwrap(), t(None, "::1", None));
    }

    #[test]
    fn rejects_bad_targets() {
        let err = |s: &str, want: &str| {
            let e = SshTarget::parse(s).unwrap_err();
            assert!(e.contains(want), "{s}: {e} should contain {want}");
        };
        err("", "no host");
        err("root@", "no host");
        err("root@:22", "no host");
        err("web1:0", "port \"0\"");
        err("web1:65536", "port \"65536\"");
        err("web1:ssh", "not a number");
        err("web1:", "not a number");
        err("::1:22", "brackets");
        err("[::1", "missing ']'");
        err("[::1]x", "[HOST]:PORT");
    }

    #[test]
    fn only_non_default_ports_are_requested() {
        assert_eq!(t(None, "w", Some(22)).requested_port(), None);
        assert_eq!(t(None, "w", None).requested_port(), None);
        assert_eq!(t(None, "w", Some(2222)).requested_port(), Some(2222));
    }

    #[test]
    fn strips_the_cluster_suffix() {
        assert_eq!(node_name("web1", "test").unwrap(), "web1");
        assert_eq!(node_name("web1.test", "test").unwrap(), "web1");
        assert_eq!(node_name("WEB1.Test.", "test").unwrap(), "web1");
        assert_eq!(node_name("web1.example.com", "example.com").unwrap(), "web1");
        assert_eq!(node_name("web1", "").unwrap(), "web1");
        let e = node_name("web1.other", "test").unwrap_err();
        assert!(e.contains("expected NODE or NODE.test"), "{e}");
        assert!(node_name("test", "test").is_ok(), "a node may be named like the cluster");
        assert!(node_name(".test", "test").is_err());
        assert!(node_name("web--1", "test").is_err());
        assert!(node_name("a&kind=db", "test").is_err());
    }

    #[test]
    fn quotes_words_for_posix_shells() {
        let q = |w: &str, always| quote_word(w, Shell::Posix, always).unwrap();
        assert_eq!(q("127.0.0.1:3080", false), "127.0.0.1:3080");
        assert_eq!(q("/usr/bin/oneport", true), "\"/usr/bin/oneport\"");
        assert_eq!(q("/opt/my tools/oneport", true), "\"/opt/my tools/oneport\"");
        assert_eq!(q("/opt/my tools/oneport", false), "\"/opt/my tools/oneport\"");
        assert_eq!(q("[::1]:3080", false), "\"[::1]:3080\"", "brackets would glob");
        assert_eq!(q(r#"/a "b" $HOME `x` \c"#, true), r#""/a \"b\" \$HOME \`x\` \\c""#);
        assert_eq!(q("/tmp/100%/oneport", true), "\"/tmp/100%%/oneport\"", "ssh expands % tokens");
        assert_eq!(q("it's", false), "\"it's\"");
        assert_eq!(q("", false), "\"\"");
        assert!(quote_word("/a\nb", Shell::Posix, true).unwrap_err().contains("line break"));
    }

    #[test]
    fn quotes_words_for_windows() {
        let q = |w: &str| quote_word(w, Shell::Windows, true).unwrap();
        assert_eq!(q(r"C:\Program Files\oneport\oneport.exe"), r#""C:\Program Files\oneport\oneport.exe""#);
        assert_eq!(q(r"C:\ids\"), r#""C:\ids\\""#, "a trailing backslash must not escape the quote");
        assert_eq!(q(r"C:\50%\a"), r#""C:\50%%\a""#);
        assert!(quote_word(r#"C:\a"b"#, Shell::Windows, true).is_err());
    }

    fn spec<'a>(program: &'a Path) -> ConfigSpec<'a> {
        ConfigSpec {
            cluster: "test",
            proxy: "proxy.example.com:3080",
            proxy_host: "proxy.example.com",
            program,
            identity: None,
            ca: None,
            insecure: false,
            home: None,
        }
    }

    #[test]
    fn renders_a_host_block() {
        let program = Path::new("/usr/local/bin/oneport");
        let text = render_config(&spec(program), Shell::Posix, None).unwrap();
        assert!(text.contains("\nHost *.test !proxy.example.com\n"), "{text}");
        assert!(
            text.contains(
                "    ProxyCommand \"/usr/local/bin/oneport\" proxy ssh --cluster=test \
                 --proxy=proxy.example.com:3080 %r@%h:%p\n"
            ),
            "{text}"
        );
        assert!(text
            .lines()
            .all(|l| l.is_empty() || l.starts_with('#') || l.starts_with("Host ") || l.starts_with("    ")));
        assert!(!text.contains("ONEPORT_HOME"));
    }

    #[test]
    fn renders_flags_and_paths_with_spaces() {
        let program = Path::new("/home/a b/bin/oneport");
        let id = Path::new("/home/a b/alice.pem");
        let ca = Path::new("/etc/ca.pem");
        let home = Path::new("/home/a b/.op");
        let s = ConfigSpec { identity: Some(id), ca: Some(ca), insecure: true, home: Some(home), ..spec(program) };
        let text = render_config(&s, Shell::Posix, None).unwrap();
        assert!(
            text.contains(
                "ProxyCommand \"/home/a b/bin/oneport\" proxy ssh --cluster=test --proxy=proxy.example.com:3080 \
                 --identity=\"/home/a b/alice.pem\" --ca=\"/etc/ca.pem\" --insecure %r@%h:%p\n"
            ),
            "{text}"
        );
        assert!(text.contains("ONEPORT_HOME=/home/a b/.op"), "{text}");

        let program = Path::new(r"C:\Program Files\oneport\oneport.exe");
        let text = render_config(&spec(program), Shell::Windows, None).unwrap();
        assert!(text.contains(r#"ProxyCommand "C:\Program Files\oneport\oneport.exe" proxy ssh"#), "{text}");
    }

    #[test]
    fn refuses_what_ssh_config_cannot_hold() {
        let program = Path::new("/bin/oneport");
        for cluster in ["", "a b", "a,b", "*", ".x", "a!b"] {
            let s = ConfigSpec { cluster, ..spec(program) };
            assert!(render_config(&s, Shell::Posix, None).unwrap_err().contains("cannot go into"), "{cluster:?}");
        }
        let program = Path::new("/bin/one\nport");
        assert!(render_config(&spec(program), Shell::Posix, None).unwrap_err().contains("line break"));
        // An IP proxy host is excluded too; an IPv6 one without brackets.
        let program = Path::new("/bin/oneport");
        let s = ConfigSpec { proxy: "[::1]:3080", proxy_host: "[::1]", ..spec(program) };
        let text = render_config(&s, Shell::Posix, None).unwrap();
        assert!(text.contains("Host *.test !::1\n"), "{text}");
        assert!(text.contains("--proxy=\"[::1]:3080\""), "{text}");
    }

    #[test]
    fn control_master_settings() {
        let program = Path::new("/bin/oneport");
        let cp = control_path(Path::new("/home/alice/.local/share/oneport/ssh")).unwrap();
        assert_eq!(cp, "/home/alice/.local/share/oneport/ssh/%C");
        assert_eq!(control_path(Path::new("/home/a b/ssh")).unwrap(), "\"/home/a b/ssh/%C\"");
        let text = render_config(&spec(program), Shell::Posix, Some(&cp)).unwrap();
        assert!(
            text.ends_with(
                "    ControlMaster auto\n    ControlPath /home/alice/.local/share/oneport/ssh/%C\n    ControlPersist 10m\n"
            ),
            "{text}"
        );
        assert!(text.contains("# ControlMaster: the first ssh to a USER@NODE opens one connection"), "{text}");
        let e = control_path(Path::new("/tmp/100%")).unwrap_err();
        assert!(e.contains("ssh_config would misread '%'"), "{e}");
        let e = control_path(&Path::new("/").join("x".repeat(60))).unwrap_err();
        assert!(e.contains("too long for ssh's control sockets"), "{e}");
    }
}
