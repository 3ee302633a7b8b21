//! Shell completions and man pages, generated from the clap definitions. The
//! committed copies under `completions/` and `man/` are checked by `tests/generated.rs`
//! (run it with `ONEPORT_REGENERATE=1` to rewrite them).

use std::path::PathBuf;

use clap_complete::Shell;

/// Every generated file: (path relative to the repository root, contents).
///
/// # Errors
/// When rendering fails (it writes to memory, so it does not).
pub fn render() -> std::io::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut out = Vec::new();
    for (shell, file) in [
        (Shell::Bash, "oneport.bash"),
        (Shell::Zsh, "_oneport"),
        (Shell::Fish, "oneport.fish"),
        (Shell::PowerShell, "_oneport.ps1"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut crate::cli::command(), "oneport", &mut buf);
        buf.extend_from_slice(match shell {
            Shell::Bash => BASH_NAMES.as_bytes(),
            Shell::Fish => FISH_NAMES.as_bytes(),
            _ => b"",
        });
        out.push((PathBuf::from("completions").join(file), buf));
    }
    let mut cmd = crate::cli::command().disable_help_subcommand(true);
    cmd.build();
    man_pages(cmd, &mut out)?;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Resource names for bash: the first positional word of `proxy app|db|ssh`, `db
/// connect` and `kube login` completes from `oneport __complete KIND` (with the
/// line's --proxy/--identity/--ca/--insecure); everything else is clap's `_oneport`.
const BASH_NAMES: &str = r#"
# Resource names from the proxy (oneport __complete: at most 2 s, silent on errors).
_oneport_with_names() {
    local cur="${COMP_WORDS[COMP_CWORD]}" i w skip="" kind="" globals=() words=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${COMP_WORDS[i]}"
        if [[ -n "$skip" ]]; then
            [[ "$skip" == global ]] && globals+=("$w")
            skip=""
            continue
        fi
        case "$w" in
            --proxy|--identity|--ca) globals+=("$w"); skip=global ;;
            --insecure) globals+=("$w") ;;
            --proxy=*|--identity=*|--ca=*) globals+=("$w") ;;
            --port|-p|--db-user|--db-name|--cluster|--bind-addr|--protocol|--set-context-name|--kubeconfig) skip=value ;;
            -*) ;;
            *) words+=("$w") ;;
        esac
    done
    case "${words[*]}" in
        "proxy app") kind=app ;;
        "proxy db"|"db connect") kind=db ;;
        "kube login") kind=kube ;;
        "proxy ssh") kind=node ;;
    esac
    if [[ -n "$kind" && -z "$skip" && "$cur" != -* ]]; then
        local user="" names
        if [[ "$kind" == node && "$cur" == *@* ]]; then
            user="${cur%%@*}@"
        fi
        names="$(oneport "${globals[@]}" __complete "$kind" 2>/dev/null)"
        COMPREPLY=( $(compgen -P "$user" -W "$names" -- "${cur#"$user"}") )
        [[ ${#COMPREPLY[@]} -gt 0 ]] && return 0
    fi
    _oneport "$@"
}
complete -F _oneport_with_names -o bashdefault -o default oneport
"#;

/// Resource names for fish, as [`BASH_NAMES`].
const FISH_NAMES: &str = r#"
# Resource names from the proxy (oneport __complete: at most 2 s, silent on errors).
function __fish_oneport_names
    set -l globals
    set -l tokens (commandline -opc)
    for i in (seq (count $tokens))
        switch $tokens[$i]
            case --proxy --identity --ca
                set -a globals $tokens[$i] $tokens[(math $i + 1)]
            case '--proxy=*' '--identity=*' '--ca=*' --insecure
                set -a globals $tokens[$i]
        end
    end
    oneport $globals __complete $argv[1] 2>/dev/null
end
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from app" -f -a "(__fish_oneport_names app)"
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from db" -f -a "(__fish_oneport_names db)"
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from ssh" -f -a "(__fish_oneport_names node)"
complete -c oneport -n "__fish_oneport_using_subcommand db; and __fish_seen_subcommand_from connect" -f -a "(__fish_oneport_names db)"
complete -c oneport -n "__fish_oneport_using_subcommand kube; and __fish_seen_subcommand_from login" -f -a "(__fish_oneport_names kube)"
"#;

fn man_pages(cmd: clap::Command, out: &mut Vec<(PathBuf, Vec<u8>)>) -> std::io::Result<()> {
    man_pages_under(cmd, None, out)
}

fn man_pages_under(cmd: clap::Command, parent: Option<&str>, out: &mut Vec<(PathBuf, Vec<u8>)>) -> std::io::Result<()> {
    let page = match parent {
        Some(p) => format!("{p}-{}", cmd.get_name()),
        None => cmd.get_name().to_string(),
    };
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
        man_pages_under(sub, Some(&page), out)?;
    }
    let has_args = cmd.get_arguments().any(|a| !a.is_hide_set());
    let has_subcommands = cmd.get_subcommands().any(|s| !s.is_hide_set());
    let man = clap_mangen::Man::new(cmd).source(format!("oneport {}", env!("CARGO_PKG_VERSION")));
    let mut buf = Vec::new();
    man.render_title(&mut buf)?;
    man.render_name_section(&mut buf)?;
    man.render_synopsis_section(&mut buf)?;
    man.render_description_section(&mut buf)?;
    if has_args {
        man.render_options_section(&mut buf)?;
    }
    if has_subcommands {
        man.render_subcommands_section(&mut buf)?;
    }
    let server_side =
        ["oneport-server", "oneport-demo"].iter().any(|p| page == *p || page.starts_with(&format!("{p}-")));
    if !server_side {
        buf.extend_from_slice(section("ENVIRONMENT", ENVIRONMENT).as_bytes());
        buf.extend_from_slice(section("FILES", FILES).as_bytes());
    }
    let exit_status = if server_side { &EXIT_STATUS[..3] } else { EXIT_STATUS };
    buf.extend_from_slice(section("EXIT STATUS", exit_status).as_bytes());
    let mut see_also = vec!["oneport(1)".to_string()];
    if let Some(p) = parent.filter(|p| *p != "oneport") {
        see_also.push(format!("{p}(1)"));
    }
    if parent.is_none() {
        see_also = vec!["oneport-demo(1)".into(), "oneport-login(1)".into()];
    }
    buf.extend_from_slice(format!(".SH \"SEE ALSO\"\n{}\n", escape(&see_also.join(", "))).as_bytes());
    man.render_version_section(&mut buf)?;
    out.push((PathBuf::from("man").join(man.get_filename()), once_preamble(&buf)));
    Ok(())
}

/// The client's environment variables (every `ONEPORT_*` one a user sets).
const ENVIRONMENT: &[(&str, &str)] = &[
    ("ONEPORT_PROXY", "The proxy, HOST:PORT; as --proxy."),
    ("ONEPORT_IDENTITY", "An identity file from `oneport server issue`; as --identity."),
    ("ONEPORT_CA", "An extra CA for the load balancer in front of the proxy (the routing TLS trusts the identity's cluster CA); as --ca."),
    ("ONEPORT_INSECURE", "`true`: do not verify the proxy's certificate; as --insecure (test setups only)."),
    ("ONEPORT_TOKEN", "The invite token for `oneport login`; as --token, and kept out of the shell history."),
    ("ONEPORT_HOME", "One folder for the profiles and the stored identities instead of the XDG directories."),
    (
        "ONEPORT_TLS_ROUTING_CONN_UPGRADE",
        "`true` or `false` for every proxy, or `host:port=true;host2:443=false`: whether to tunnel through a WebSocket upgrade (wins over the probe).",
    ),
    ("ONEPORT_TLS_ROUTING_CONN_UPGRADE_MODE", "`websocket` (the default) or `legacy`."),
    ("RUST_LOG", "Log filter for stderr (wins over -v), e.g. `oneport=debug`."),
    ("NO_COLOR", "Set: no colours in the logs."),
];

/// Where the client keeps its state. (The layout under these folders belongs to
/// `client::profile`; this says it in general terms.)
const FILES: &[(&str, &str)] = &[
    (
        "~/.config/oneport/",
        "Login profiles, one per proxy: profiles/HOST_PORT.yaml (mode 0600: proxy, cluster, identity and CA paths, the cached upgrade decision, the kubeconfig entries `kube login` wrote) and active-profile (which one commands use). $XDG_CONFIG_HOME moves it; $ONEPORT_HOME replaces it.",
    ),
    (
        "~/.local/share/oneport/",
        "The stored identities (identity-HOST_PORT.pem: certificate and key) and CA copies (ca-HOST_PORT.pem), mode 0600. $XDG_DATA_HOME moves it; $ONEPORT_HOME replaces it.",
    ),
    (
        "~/.local/share/oneport/ssh/",
        "The ControlMaster sockets of `oneport config ssh --control-master` blocks (0700).",
    ),
    ("~/.kube/config", "Where `oneport kube login` adds its entries ($KUBECONFIG and --kubeconfig as for kubectl)."),
];

const EXIT_STATUS: &[(&str, &str)] = &[
    ("0", "Success."),
    ("1", "Failure; one line on stderr says which layer failed and what to do."),
    ("2", "Bad command-line arguments."),
    (
        "other",
        "Commands that run a program (`db connect`, `proxy kube --exec`, `ssh`, `kubectl`) exit with that program's status.",
    ),
];

/// Each `render_*` call of clap_mangen repeats roff's apostrophe preamble; keep the first.
fn once_preamble(page: &[u8]) -> Vec<u8> {
    const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";
    let text = String::from_utf8_lossy(page);
    match text.split_once(PREAMBLE) {
        Some((before, after)) => format!("{before}{PREAMBLE}{}", after.replace(PREAMBLE, "")).into_bytes(),
        None => page.to_vec(),
    }
}

/// A `.SH` section of `.TP` entries.
fn section(title: &str, entries: &[(&str, &str)]) -> String {
    let mut s = if title.contains(' ') { format!(".SH \"{title}\"\n") } else { format!(".SH {title}\n") };
    for (term, text) in entries {
        s.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", escape(term), escape(text)));
    }
    s
}

/// Text made safe for roff: backslashes and hyphens escaped, no control line.
fn escape(text: &str) -> String {
    let s = text.replace('\\', "\\e").replace('-', "\\-").replace('\'', "\\*(Aq");
    if s.starts_with('.') {
        format!("\\&{s}")
    } else {
        s
    }
}
