//! The files in fixtures/ and their renderer: every template fills completely with
//! the values its users give, an unfilled or misspelt placeholder is an error naming
//! it, the Kubernetes double's data is JSON, and the sample server configs load and
//! validate.

mod common;

use common::fixture::{self, render_str};

/// Every template with the placeholders its users fill (values are samples).
const TEMPLATES: &[(&str, &[&str])] = &[
    (
        "lb/nginx.conf",
        &["DIR", "LISTEN_PORT", "CERT", "KEY", "UPSTREAM", "IDLE", "WORKER_CONNECTIONS", "EXTRA_LOCATIONS"],
    ),
    ("lb/haproxy.cfg", &["LISTEN_PORT", "CERT", "UPSTREAM", "IDLE"]),
    ("lb/squid.conf", &["LISTEN_PORT", "DIR"]),
    ("bench/stunnel-server.conf", &["LOG", "CA", "CERT", "KEY", "LISTEN_PORT", "UPSTREAM"]),
    ("bench/stunnel-client.conf", &["LOG", "CA", "IDENTITY", "LISTEN_PORT", "UPSTREAM"]),
    ("server/bench.yaml", &["LISTEN_PORT", "APP", "UPSTREAM", "USER"]),
    ("server/sample.yaml", &["LISTEN_PORT"]),
    ("kube/pod.json", &["NAME"]),
    ("kube/pod-table-row.json", &["NAME"]),
];

fn sample(name: &str) -> &'static str {
    match name {
        "LISTEN_PORT" => "40000",
        "UPSTREAM" => "127.0.0.1:40001",
        "APP" | "USER" | "NAME" => "x1",
        "IDLE" => "1000ms",
        "WORKER_CONNECTIONS" => "64",
        "EXTRA_LOCATIONS" => "",
        _ => "/tmp/sample",
    }
}

#[test]
fn every_template_renders_with_the_placeholders_its_users_fill() {
    for (rel, names) in TEMPLATES {
        let vars: Vec<(&str, &str)> = names.iter().map(|n| (*n, sample(n))).collect();
        let out = fixture::render(rel, &vars).unwrap_or_else(|e| panic!("{e}"));
        assert!(!out.contains("{{"), "{rel}: {out}");
        // One fewer value: the renderer names the unfilled placeholder and the file.
        let err = fixture::render(rel, &vars[1..]).unwrap_err();
        assert!(err.contains(&format!("{{{{{}}}}} has no value", names[0])) && err.contains(rel), "{err}");
    }
}

#[test]
fn renderer_fails_loudly() {
    assert_eq!(render_str("a {{X}} b {{Y}}{{X}}", &[("X", "1"), ("Y", "{{Z}}")]).unwrap(), "a 1 b {{Z}}1");
    let e = render_str("listen {{PORT}};", &[]).unwrap_err();
    assert_eq!(e, "placeholder {{PORT}} has no value (given: none)");
    let e = render_str("listen {{PORT}};", &[("PORT", "1"), ("PROT", "2")]).unwrap_err();
    assert_eq!(e, "no placeholder for PROT (the template has no such {{NAME}})");
    assert!(render_str("listen {{PORT;", &[("PORT", "1")]).unwrap_err().starts_with("unclosed `{{`"));
    assert!(render_str("{{ port }}", &[]).unwrap_err().starts_with("malformed placeholder"));
    let e = fixture::render("lb/none.conf", &[]).unwrap_err();
    assert!(e.starts_with("reading fixture ") && e.contains("fixtures/lb/none.conf"), "{e}");
}

#[test]
fn kube_double_data_is_json_and_agrees_with_the_double() {
    let dir = fixture::path("kube");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        n += 1;
    }
    assert!(n >= 8, "{n} files in {}", dir.display());
    assert_eq!(common::kube_api::data("version.json")["gitVersion"], common::kube_api::GIT_VERSION);
    assert_eq!(common::kube_api::pod("web-9")["metadata"]["uid"], "uid-web-9");
}

#[test]
fn sample_server_configs_load_and_validate() {
    let dir = tempfile::tempdir().unwrap();
    for (rel, names) in TEMPLATES.iter().filter(|(r, _)| r.starts_with("server/")) {
        let vars: Vec<(&str, &str)> = names.iter().map(|n| (*n, sample(n))).collect();
        let out = dir.path().join(rel.trim_start_matches("server/"));
        fixture::render_to(rel, &vars, &out).unwrap();
        let cfg = oneport::server::Config::load(&out).unwrap_or_else(|e| panic!("{rel}: {e}"));
        cfg.validate().unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(cfg.listen, "127.0.0.1:40000");
    }
    let cfg = oneport::server::Config::load(&dir.path().join("sample.yaml")).unwrap();
    assert_eq!(cfg.ping_interval, std::time::Duration::from_millis(300), "sub-second pings are accepted");
    assert_eq!((cfg.nodes.len(), cfg.databases.len(), cfg.apps.len(), cfg.kube.len()), (1, 2, 2, 1));
}
