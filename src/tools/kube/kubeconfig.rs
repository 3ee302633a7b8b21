//! kubeconfig files, read and written the way kubectl does (client-go `clientcmd`),
//! so `kube login` lands where `kubectl config set-context` would have put it.
//!
//! Which files (the *chain*): `--kubeconfig FILE` alone when given; else every path
//! in `KUBECONFIG` (split on `:`, `;` on Windows; empty entries skipped, duplicates
//! dropped, order kept); else `~/.kube/config`. Reading merges the chain and the
//! first file that names an entry (or sets `current-context`) wins.
//!
//! Writing (client-go `ModifyConfig`): an entry that exists is updated in the file it
//! came from (the first file in the chain that names it); a new entry, and
//! `current-context`, go to the *default file*: the `--kubeconfig` file; else the
//! only `KUBECONFIG` file; else the first `KUBECONFIG` file that exists; else the
//! last one; else `~/.kube/config`.
//!
//! Files are edited as generic YAML, so other entries and fields we do not know
//! (extensions, `preferences`, a context's namespace) stay as they were; only the
//! keys we own in our own entries change. Comments are not kept (kubectl drops them
//! too). Every file of the chain is parsed before anything is written: one that does
//! not parse stops the login with its name, and nothing is written.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use crate::error::{Error, Result};
use crate::util::fsutil;

/// The environment variable listing kubeconfig files.
pub const ENV: &str = "KUBECONFIG";

/// The kubeconfig files kubectl uses, in precedence order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The files, first wins.
    pub files: Vec<PathBuf>,
    /// From `--kubeconfig` (one file that takes every write).
    pub explicit: bool,
    /// Came from `KUBECONFIG`.
    pub from_env: bool,
}

impl Chain {
    /// The chain for this process: `explicit`, else `$KUBECONFIG`, else `$HOME/.kube/config`.
    ///
    /// # Errors
    /// When nothing is given and there is no home directory.
    pub fn locate(explicit: Option<&Path>) -> Result<Chain> {
        let env = std::env::var_os(ENV);
        let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
        let home = home.or_else(|| directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf()));
        Chain::resolve(explicit, env.as_deref(), home.as_deref())
    }

    /// [`Chain::locate`] with its inputs given (for tests).
    ///
    /// # Errors
    /// When nothing is given and `home` is `None`.
    pub fn resolve(explicit: Option<&Path>, env: Option<&OsStr>, home: Option<&Path>) -> Result<Chain> {
        if let Some(p) = explicit {
            return Ok(Chain { files: vec![p.to_path_buf()], explicit: true, from_env: false });
        }
        let mut files: Vec<PathBuf> = Vec::new();
        for p in env.map(std::env::split_paths).into_iter().flatten() {
            if !p.as_os_str().is_empty() && !files.contains(&p) {
                files.push(p);
            }
        }
        if !files.is_empty() {
            return Ok(Chain { files, explicit: false, from_env: true });
        }
        let home = home.ok_or_else(|| Error::config("no home directory for ~/.kube/config: set KUBECONFIG"))?;
        Ok(Chain { files: vec![home.join(".kube").join("config")], explicit: false, from_env: false })
    }

    /// Where new entries and `current-context` go (see the module docs); `exists`
    /// says whether a file exists.
    pub fn default_file(&self, exists: impl Fn(&Path) -> bool) -> &Path {
        if self.files.len() > 1 {
            if let Some(p) = self.files.iter().find(|p| exists(p)) {
                return p;
            }
        }
        // One file, or several and none exists: client-go takes the last one.
        self.files.last().map(PathBuf::as_path).unwrap_or(Path::new(".kube/config"))
    }
}

/// The parsed files of a chain; `None` for a file that does not exist yet.
#[derive(Debug, Clone)]
pub struct Files(pub Vec<(PathBuf, Option<Value>)>);

impl Files {
    /// Reads and checks every file of `chain`.
    ///
    /// # Errors
    /// A file that cannot be read or does not parse as a kubeconfig, named.
    pub fn load(chain: &Chain) -> Result<Files> {
        let mut out = Vec::new();
        for path in &chain.files {
            let doc = match std::fs::read(path) {
                Ok(bytes) => Some(parse(path, &bytes)?),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(Error::file(path, e)),
            };
            out.push((path.clone(), doc));
        }
        Ok(Files(out))
    }

    fn exists(&self, p: &Path) -> bool {
        self.0.iter().any(|(q, d)| q == p && d.is_some())
    }

    fn doc(&self, p: &Path) -> Option<&Value> {
        self.0.iter().find(|(q, _)| q == p).and_then(|(_, d)| d.as_ref())
    }

    /// The merged `current-context`: the first file that sets one.
    pub fn current_context(&self) -> Option<String> {
        self.0.iter().filter_map(|(_, d)| d.as_ref()).find_map(|d| {
            d.get("current-context").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string)
        })
    }

    /// The first file that has an entry `name` in `section` (`clusters`, `users`, `contexts`).
    pub fn origin(&self, section: &str, name: &str) -> Option<&Path> {
        self.0.iter().find_map(|(p, d)| {
            let items = d.as_ref()?.get(section)?.as_sequence()?;
            items.iter().any(|i| i.get("name").and_then(Value::as_str) == Some(name)).then_some(p.as_path())
        })
    }
}

/// The three sections of a kubeconfig and the key of an entry's body in each.
const SECTIONS: [(&str, &str); 3] = [("clusters", "cluster"), ("users", "user"), ("contexts", "context")];

/// Parses one kubeconfig file, checking the structure kubectl relies on.
///
/// # Errors
/// [`Error::Config`] naming the file and what is wrong.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Value> {
    let bad = |what: String| {
        Error::config(format!(
            "kubeconfig {} cannot be used: {what}. Fix or move the file; nothing was written",
            path.display()
        ))
    };
    let text = std::str::from_utf8(bytes).map_err(|_| bad("it is not UTF-8 text".into()))?;
    if text.trim().is_empty() {
        return Ok(Value::Mapping(Mapping::new()));
    }
    let mut doc: Value = serde_yaml_ng::from_str(text).map_err(|e| bad(format!("it is not valid YAML ({e})")))?;
    drop_nonspecific_tags(&mut doc);
    // Whatever else the file holds is written back as it was: it must be writable.
    if let Err(e) = serde_yaml_ng::to_string(&doc) {
        return Err(bad(format!("it holds YAML that cannot be written back unchanged ({e})")));
    }
    let doc = match doc {
        Value::Null => Value::Mapping(Mapping::new()),
        Value::Mapping(_) => doc,
        _ => return Err(bad("the top level is not a mapping".into())),
    };
    for (section, body) in SECTIONS {
        match doc.get(section) {
            None | Some(Value::Null) => {}
            Some(Value::Sequence(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if item.get("name").and_then(Value::as_str).is_none() {
                        return Err(bad(format!("{section}[{i}] has no name")));
                    }
                    if !matches!(item.get(body), None | Some(Value::Null) | Some(Value::Mapping(_))) {
                        return Err(bad(format!("{section}[{i}].{body} is not a mapping")));
                    }
                }
            }
            Some(_) => return Err(bad(format!("`{section}` is not a list"))),
        }
    }
    if !matches!(doc.get("current-context"), None | Some(Value::Null) | Some(Value::String(_))) {
        return Err(bad("`current-context` is not a string".into()));
    }
    Ok(doc)
}

/// Replaces values carrying YAML's non-specific tag (`key: ! value`, which means
/// the plain value) by the value: the YAML writer cannot emit that tag, so a file
/// kubectl reads would otherwise stop the login (found by the kubeconfig fuzz target).
fn drop_nonspecific_tags(v: &mut Value) {
    match v {
        // The parser keeps `!` as a tag with no name (shown as `!` or `!!`).
        Value::Tagged(t) if t.tag.to_string().trim_start_matches('!').is_empty() => {
            *v = std::mem::replace(&mut t.value, Value::Null);
            drop_nonspecific_tags(v);
        }
        Value::Tagged(t) => drop_nonspecific_tags(&mut t.value),
        Value::Sequence(items) => items.iter_mut().for_each(drop_nonspecific_tags),
        Value::Mapping(m) => m.values_mut().for_each(drop_nonspecific_tags),
        _ => {}
    }
}

/// One named entry to add or update.
#[derive(Debug, Clone)]
pub struct Stanza {
    /// The entry's name.
    pub name: String,
    /// The keys to set in its body.
    pub body: Mapping,
    /// Keys we own in the body: removed when `body` does not set them (so an old
    /// `token` cannot linger next to our `exec`). Other keys are left alone.
    pub owned: &'static [&'static str],
}

/// Keys of a cluster entry `kube login` owns.
pub const CLUSTER_KEYS: &[&str] =
    &["server", "certificate-authority", "certificate-authority-data", "tls-server-name", "insecure-skip-tls-verify"];
/// Keys of a user entry `kube login` owns (every way of authenticating).
pub const USER_KEYS: &[&str] = &[
    "client-certificate",
    "client-certificate-data",
    "client-key",
    "client-key-data",
    "token",
    "tokenFile",
    "username",
    "password",
    "auth-provider",
    "exec",
    "as",
    "as-groups",
    "as-uid",
    "as-user-extra",
];
/// Keys of a context entry `kube login` owns.
pub const CONTEXT_KEYS: &[&str] = &["cluster", "user"];

/// A cluster, a user and a context that uses both.
#[derive(Debug, Clone)]
pub struct Login {
    /// The `clusters` entry.
    pub cluster: Stanza,
    /// The `users` entry.
    pub user: Stanza,
    /// The `contexts` entry.
    pub context: Stanza,
}

/// What a login changes: the new content of each file to write, and where the
/// context and `current-context` went.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Files to write with their new content, in chain order.
    pub writes: Vec<(PathBuf, Value)>,
    /// The file holding the context.
    pub context_file: PathBuf,
    /// The file `current-context` was written to, when switching.
    pub current_file: Option<PathBuf>,
    /// Every entry the login adds or updates, with its file (recorded in the login
    /// profile so `logout` removes exactly these).
    pub written: Vec<Written>,
}

/// Which section of a kubeconfig an entry is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// `clusters`.
    Cluster,
    /// `users`.
    User,
    /// `contexts`.
    Context,
}

impl EntryKind {
    fn section(self) -> &'static str {
        match self {
            EntryKind::Cluster => "clusters",
            EntryKind::User => "users",
            EntryKind::Context => "contexts",
        }
    }

    fn from_section(section: &str) -> EntryKind {
        match section {
            "clusters" => EntryKind::Cluster,
            "users" => EntryKind::User,
            _ => EntryKind::Context,
        }
    }

    /// The noun kubectl uses (`kubectl config delete-NOUN`).
    pub fn noun(self) -> &'static str {
        match self {
            EntryKind::Cluster => "cluster",
            EntryKind::User => "user",
            EntryKind::Context => "context",
        }
    }
}

/// One kubeconfig entry oneport wrote, and where.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Written {
    /// The kubeconfig file (absolute).
    pub file: PathBuf,
    /// The section.
    pub kind: EntryKind,
    /// The entry's name.
    pub name: String,
}

impl Written {
    /// The kubectl command that removes this entry.
    pub fn kubectl_delete(&self) -> String {
        format!(
            "kubectl --kubeconfig {} config delete-{} {}",
            crate::tools::process::shell_quote(&self.file.to_string_lossy()),
            self.kind.noun(),
            crate::tools::process::shell_quote(&self.name)
        )
    }
}

/// Removes `entries` from their files, each only if it is still there; a
/// `current-context` naming a removed context is unset. Returns the entries that
/// were removed. Other entries and fields are left as they were.
///
/// # Errors
/// A file that cannot be read, parsed or written, named; files before it in
/// `entries` are already done.
pub fn remove(entries: &[Written]) -> Result<Vec<Written>> {
    let mut files: Vec<&Path> = Vec::new();
    for e in entries {
        if !files.contains(&e.file.as_path()) {
            files.push(&e.file);
        }
    }
    let mut removed = Vec::new();
    for path in files {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::file(path, e)),
        };
        let mut doc = parse(path, &bytes)?;
        let mine: Vec<&Written> = entries.iter().filter(|e| e.file == path).collect();
        let gone = remove_from(&mut doc, &mine);
        if gone.is_empty() {
            continue;
        }
        write(&Plan {
            writes: vec![(path.to_path_buf(), doc)],
            context_file: path.to_path_buf(),
            current_file: None,
            written: Vec::new(),
        })?;
        removed.extend(gone);
    }
    Ok(removed)
}

/// [`remove`] on one parsed file: the entries of `entries` found in `doc`.
fn remove_from(doc: &mut Value, entries: &[&Written]) -> Vec<Written> {
    let mut gone = Vec::new();
    let Value::Mapping(top) = doc else { return gone };
    for e in entries {
        let Some(Value::Sequence(items)) = top.get_mut(e.kind.section()) else { continue };
        let before = items.len();
        items.retain(|i| i.get("name").and_then(Value::as_str) != Some(e.name.as_str()));
        if items.len() != before {
            gone.push((*e).clone());
        }
    }
    let current = top.get("current-context").and_then(Value::as_str).map(str::to_string);
    if gone.iter().any(|e| e.kind == EntryKind::Context && Some(&e.name) == current.as_ref()) {
        top.shift_remove("current-context");
    }
    gone
}

/// Plans the edits for `login` (see the module docs for which file gets what);
/// `switch` also sets `current-context`. Pure: nothing is read or written.
pub fn plan(chain: &Chain, files: &Files, login: &Login, switch: bool) -> Plan {
    let default = chain.default_file(|p| files.exists(p)).to_path_buf();
    let mut docs: Vec<(PathBuf, Value)> = Vec::new();
    let mut context_file = default.clone();
    let mut written = Vec::new();
    for ((section, body), stanza) in SECTIONS.iter().zip([&login.cluster, &login.user, &login.context]) {
        let target = files.origin(section, &stanza.name).map(Path::to_path_buf).unwrap_or_else(|| default.clone());
        if *section == "contexts" {
            context_file = target.clone();
        }
        written.push(Written {
            file: std::path::absolute(&target).unwrap_or_else(|_| target.clone()),
            kind: EntryKind::from_section(section),
            name: stanza.name.clone(),
        });
        let i = doc_index(&mut docs, files, &target);
        upsert(&mut docs[i].1, section, body, stanza);
    }
    let current_file = switch.then(|| {
        let i = doc_index(&mut docs, files, &default);
        if let Value::Mapping(m) = &mut docs[i].1 {
            m.insert("current-context".into(), Value::String(login.context.name.clone()));
        }
        default.clone()
    });
    // Only files whose content changed, in chain order.
    let mut writes: Vec<(PathBuf, Value)> =
        docs.into_iter().filter(|(p, d)| files.doc(p) != Some(d) || !files.exists(p)).collect();
    writes.sort_by_key(|(p, _)| chain.files.iter().position(|q| q == p));
    Plan { writes, context_file, current_file, written }
}

/// The index of `path`'s document in `docs`, loading (or creating) it on first use.
fn doc_index(docs: &mut Vec<(PathBuf, Value)>, files: &Files, path: &Path) -> usize {
    if let Some(i) = docs.iter().position(|(p, _)| p == path) {
        return i;
    }
    let doc = files.doc(path).cloned().unwrap_or_else(new_doc);
    docs.push((path.to_path_buf(), doc));
    docs.len() - 1
}

fn new_doc() -> Value {
    let mut m = Mapping::new();
    m.insert("apiVersion".into(), "v1".into());
    m.insert("kind".into(), "Config".into());
    Value::Mapping(m)
}

/// Adds or updates entry `stanza` in `doc[section]`, touching only its owned keys.
fn upsert(doc: &mut Value, section: &str, body_key: &str, stanza: &Stanza) {
    let Value::Mapping(top) = doc else { return };
    let list = top.entry(section.into()).or_insert(Value::Sequence(Vec::new()));
    if !list.is_sequence() {
        *list = Value::Sequence(Vec::new()); // was null (parse rejects anything else)
    }
    let Value::Sequence(items) = list else { return };
    let pos = items.iter().position(|i| i.get("name").and_then(Value::as_str) == Some(stanza.name.as_str()));
    let item = match pos {
        Some(p) => &mut items[p],
        None => {
            let mut m = Mapping::new();
            m.insert("name".into(), Value::String(stanza.name.clone()));
            items.push(Value::Mapping(m));
            let last = items.len() - 1;
            &mut items[last]
        }
    };
    let Value::Mapping(item) = item else { return };
    let body = item.entry(body_key.into()).or_insert(Value::Mapping(Mapping::new()));
    if !body.is_mapping() {
        *body = Value::Mapping(Mapping::new());
    }
    let Value::Mapping(body) = body else { return };
    for key in stanza.owned {
        if !stanza.body.contains_key(*key) {
            body.shift_remove(*key);
        }
    }
    for (k, v) in &stanza.body {
        body.insert(k.clone(), v.clone());
    }
}

/// Writes the planned files (mode 0600, atomically; a symlinked file is written
/// through to its target).
///
/// # Errors
/// [`Error::File`] naming the file.
pub fn write(plan: &Plan) -> Result<()> {
    for (path, doc) in &plan.writes {
        let text = serde_yaml_ng::to_string(doc).map_err(|e| Error::config(format!("{}: {e}", path.display())))?;
        let target = match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path).map_err(|e| Error::file(path, e))?,
            _ => path.clone(),
        };
        fsutil::write_private(&target, text.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    fn login(name: &str) -> Login {
        let map = |pairs: &[(&str, &str)]| {
            let mut m = Mapping::new();
            for (k, v) in pairs {
                m.insert((*k).into(), (*v).into());
            }
            m
        };
        Login {
            cluster: Stanza {
                name: name.into(),
                body: map(&[("server", "https://127.0.0.1:3080"), ("tls-server-name", "dev.kube")]),
                owned: CLUSTER_KEYS,
            },
            user: Stanza { name: name.into(), body: map(&[("token", "t")]), owned: USER_KEYS },
            context: Stanza { name: name.into(), body: map(&[("cluster", name), ("user", name)]), owned: CONTEXT_KEYS },
        }
    }

    fn files(list: &[(&str, Option<&str>)]) -> Files {
        Files(list.iter().map(|(path, text)| (p(path), text.map(|t| parse(&p(path), t.as_bytes()).unwrap()))).collect())
    }

    #[test]
    fn chain_follows_kubectl() {
        let home = p("/home/u");
        let c = Chain::resolve(None, None, Some(&home)).unwrap();
        assert_eq!(c.files, vec![p("/home/u/.kube/config")]);
        let c = Chain::resolve(None, Some(OsStr::new("")), Some(&home)).unwrap();
        assert_eq!(c.files, vec![p("/home/u/.kube/config")], "empty KUBECONFIG means the default");
        let c = Chain::resolve(None, Some(OsStr::new("/a::/b:/a")), Some(&home)).unwrap();
        assert_eq!(c.files, vec![p("/a"), p("/b")]);
        assert!(c.from_env && !c.explicit);
        let c = Chain::resolve(Some(&p("/x")), Some(OsStr::new("/a:/b")), None).unwrap();
        assert_eq!(c.files, vec![p("/x")]);
        assert!(c.explicit);
        assert!(Chain::resolve(None, None, None).is_err());
    }

    #[test]
    fn nonspecific_tags_are_read_as_plain_values_and_written_back() {
        // The kubeconfig fuzz target's crash (fuzz/artifacts/kubeconfig/): a `!`-tagged
        // value kubectl accepts made the planned file impossible to write.
        let text = "clusters:\n- name: ! prod\n  cluster: ! {server: ! https://x}\nextra: ! [1, ! two]\ncurrent-context: ! prod\n";
        let doc = parse(&p("/k"), text.as_bytes()).unwrap();
        assert_eq!(doc["clusters"][0]["name"], Value::String("prod".into()));
        assert_eq!(doc["clusters"][0]["cluster"]["server"], Value::String("https://x".into()));
        assert_eq!(doc["extra"][1], Value::String("two".into()));
        let f = Files(vec![(p("/k"), Some(doc))]);
        assert_eq!(f.current_context().as_deref(), Some("prod"));
        let chain = Chain { files: vec![p("/k")], explicit: true, from_env: false };
        let plan = plan(&chain, &f, &login("dev"), true);
        let written = serde_yaml_ng::to_string(&plan.writes[0].1).unwrap();
        assert!(parse(&p("/k"), written.as_bytes()).is_ok(), "{written}");
        // Named tags stay as they were.
        let tagged = parse(&p("/k"), b"extra: !thing {a: 1}\n").unwrap();
        assert!(serde_yaml_ng::to_string(&tagged).unwrap().contains("!thing"));
    }

    #[test]
    fn default_file_rules() {
        let c = Chain { files: vec![p("/a"), p("/b"), p("/c")], explicit: false, from_env: true };
        assert_eq!(c.default_file(|q| q == Path::new("/b") || q == Path::new("/c")), Path::new("/b"));
        assert_eq!(c.default_file(|_| false), Path::new("/c"), "none exists: the last one");
        let one = Chain { files: vec![p("/only")], explicit: false, from_env: true };
        assert_eq!(one.default_file(|_| false), Path::new("/only"));
    }

    #[test]
    fn new_entries_go_to_the_default_file_and_keep_everything_else() {
        let existing = r#"
apiVersion: v1
kind: Config
preferences: { colors: true }
clusters:
- name: prod
  cluster: { server: "https://prod:6443", extensions: [ { name: x, extension: { a: 1 } } ] }
contexts:
- name: prod
  context: { cluster: prod, user: prod, namespace: payments }
users:
- name: prod
  user: { token: secret }
current-context: prod
x-unknown-top: keep me
"#;
        let chain = Chain { files: vec![p("/k")], explicit: false, from_env: false };
        let f = files(&[("/k", Some(existing))]);
        let plan = plan(&chain, &f, &login("t-dev"), true);
        assert_eq!(plan.writes.len(), 1);
        let doc = &plan.writes[0].1;
        assert_eq!(doc["x-unknown-top"], "keep me");
        assert_eq!(doc["preferences"]["colors"], true);
        assert_eq!(doc["contexts"][0]["context"]["namespace"], "payments");
        assert_eq!(doc["clusters"][0]["cluster"]["extensions"][0]["extension"]["a"], 1);
        assert_eq!(doc["clusters"][1]["name"], "t-dev");
        assert_eq!(doc["clusters"][1]["cluster"]["tls-server-name"], "dev.kube");
        assert_eq!(doc["current-context"], "t-dev");
        let no_switch = super::plan(&chain, &f, &login("t-dev"), false);
        assert_eq!(no_switch.writes[0].1["current-context"], "prod");
        assert!(no_switch.current_file.is_none());
    }

    #[test]
    fn updates_only_owned_keys_of_an_existing_entry() {
        let existing = r#"
clusters:
- name: t-dev
  cluster: { server: "https://old:1", certificate-authority: /old/ca.pem, proxy-url: "http://corp:3128" }
users:
- name: t-dev
  user: { client-certificate: /old/c.pem, client-key: /old/k.pem }
contexts:
- name: t-dev
  context: { cluster: t-dev, user: t-dev, namespace: team }
"#;
        let chain = Chain { files: vec![p("/k")], explicit: true, from_env: false };
        let plan = plan(&chain, &files(&[("/k", Some(existing))]), &login("t-dev"), true);
        let doc = &plan.writes[0].1;
        let cluster = &doc["clusters"][0]["cluster"];
        assert_eq!(cluster["server"], "https://127.0.0.1:3080");
        assert!(cluster.get("certificate-authority").is_none(), "stale CA file dropped");
        assert_eq!(cluster["proxy-url"], "http://corp:3128", "not ours: kept");
        let user = &doc["users"][0]["user"];
        assert!(user.get("client-certificate").is_none() && user.get("client-key").is_none());
        assert_eq!(user["token"], "t");
        assert_eq!(doc["contexts"][0]["context"]["namespace"], "team");
        assert_eq!(doc["clusters"].as_sequence().unwrap().len(), 1, "updated, not duplicated");
    }

    #[test]
    fn the_plan_records_where_each_entry_went() {
        // The user entry already lives in /b; the others are new and go to /a.
        let chain = Chain { files: vec![p("/a"), p("/b")], explicit: false, from_env: true };
        let b = "users:\n- name: t-dev\n  user: { token: old }\n";
        let plan = plan(&chain, &files(&[("/a", Some("")), ("/b", Some(b))]), &login("t-dev"), true);
        let got: Vec<(String, EntryKind, String)> =
            plan.written.iter().map(|w| (w.file.display().to_string(), w.kind, w.name.clone())).collect();
        assert_eq!(
            got,
            vec![
                ("/a".into(), EntryKind::Cluster, "t-dev".into()),
                ("/b".into(), EntryKind::User, "t-dev".into()),
                ("/a".into(), EntryKind::Context, "t-dev".into()),
            ]
        );
        assert_eq!(plan.written[2].kubectl_delete(), "kubectl --kubeconfig /a config delete-context t-dev");
    }

    #[test]
    fn removal_takes_only_the_recorded_entries() {
        let text = r#"
clusters:
- { name: t-dev, cluster: { server: "https://127.0.0.1:3080" } }
- { name: other, cluster: { server: "https://other:6443" } }
users:
- { name: t-dev, user: { token: t } }
- { name: other, user: { token: o } }
contexts:
- { name: t-dev, context: { cluster: t-dev, user: t-dev } }
- { name: other, context: { cluster: other, user: other } }
current-context: t-dev
preferences: { colors: true }
"#;
        let mut doc = parse(&p("/k"), text.as_bytes()).unwrap();
        let w = |kind, name: &str| Written { file: p("/k"), kind, name: name.into() };
        let ours = [w(EntryKind::Cluster, "t-dev"), w(EntryKind::User, "t-dev"), w(EntryKind::Context, "t-dev")];
        let gone = remove_from(&mut doc, &ours.iter().collect::<Vec<_>>());
        assert_eq!(gone, ours.to_vec());
        for section in ["clusters", "users", "contexts"] {
            let names: Vec<&str> =
                doc[section].as_sequence().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
            assert_eq!(names, ["other"], "{section}");
        }
        assert!(doc.get("current-context").is_none(), "the removed context is no longer current");
        assert_eq!(doc["preferences"]["colors"], true, "everything else stays");
        // Entries already gone are not reported; another current context stays.
        let mut doc = parse(&p("/k"), b"contexts:\n- { name: other, context: {} }\ncurrent-context: other\n").unwrap();
        assert!(remove_from(&mut doc, &ours.iter().collect::<Vec<_>>()).is_empty());
        assert_eq!(doc["current-context"], "other");
    }

    #[test]
    fn two_files_follow_client_go() {
        // /a exists and has prod; /b exists and already has our user entry.
        let a = "clusters: [ { name: prod, cluster: { server: 'https://p' } } ]\ncurrent-context: prod\n";
        let b = "users: [ { name: t-dev, user: { token: old } } ]\n";
        let chain = Chain { files: vec![p("/a"), p("/b")], explicit: false, from_env: true };
        let f = files(&[("/a", Some(a)), ("/b", Some(b))]);
        let plan = plan(&chain, &f, &login("t-dev"), true);
        let paths: Vec<_> = plan.writes.iter().map(|(p, _)| p.clone()).collect();
        assert_eq!(paths, vec![p("/a"), p("/b")]);
        let (da, db) = (&plan.writes[0].1, &plan.writes[1].1);
        assert_eq!(da["clusters"][1]["name"], "t-dev", "new cluster: the default (first existing) file");
        assert_eq!(da["contexts"][0]["name"], "t-dev");
        assert_eq!(da["current-context"], "t-dev");
        assert!(da.get("users").is_none(), "the user lives in /b");
        assert_eq!(db["users"][0]["user"]["token"], "t", "existing user updated where it is");
        assert_eq!(plan.context_file, p("/a"));
        assert_eq!(plan.current_file, Some(p("/a")));

        // Neither exists: everything goes to the last one.
        let f = files(&[("/a", None), ("/b", None)]);
        let plan = super::plan(&chain, &f, &login("t-dev"), true);
        assert_eq!(plan.writes.len(), 1);
        assert_eq!(plan.writes[0].0, p("/b"));
        assert_eq!(plan.writes[0].1["kind"], "Config");
    }

    #[test]
    fn merged_view() {
        let f = files(&[
            ("/a", Some("contexts: [ { name: x, context: {} } ]")),
            ("/b", Some("current-context: y\ncontexts: [ { name: x, context: {} } ]")),
        ]);
        assert_eq!(f.current_context().as_deref(), Some("y"));
        assert_eq!(f.origin("contexts", "x"), Some(Path::new("/a")));
        assert_eq!(f.origin("users", "x"), None);
    }

    #[test]
    fn broken_files_are_named() {
        let path = p("/home/u/.kube/config");
        for (text, want) in [
            ("clusters: [ {", "not valid YAML"),
            ("- a\n- b\n", "top level is not a mapping"),
            ("clusters: 3", "`clusters` is not a list"),
            ("users: [ { user: {} } ]", "users[0] has no name"),
            ("contexts: [ { name: a, context: 5 } ]", "contexts[0].context is not a mapping"),
            ("current-context: [a]", "current-context"),
        ] {
            let err = parse(&path, text.as_bytes()).unwrap_err().to_string();
            assert!(err.contains("/home/u/.kube/config") && err.contains(want), "{text:?}: {err}");
            assert!(err.contains("nothing was written"), "{err}");
        }
        assert!(parse(&path, b"").unwrap().as_mapping().unwrap().is_empty());
        assert!(parse(&path, b"# only a comment\n").unwrap().as_mapping().unwrap().is_empty());
    }
}
