
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'oneport' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'oneport'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'oneport' {
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'The proxy, HOST:PORT (default port 3080). Uses that proxy''s stored login profile, without making it the active one')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity file from `oneport server issue`. Overrides the login profile')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy''s own TLS trusts only the CA in the identity file (this CA when the file has none)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not verify the proxy''s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('login', 'login', [CompletionResultType]::ParameterValue, 'Log in: with an invite token (a key pair is made here and never leaves this machine), with an identity file, or renew the current identity')
            [CompletionResult]::new('logout', 'logout', [CompletionResultType]::ParameterValue, 'Forget a login profile and its stored identity')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show what the next command will use, and the stored profiles')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List the resources the proxy offers to you, optionally of one kind')
            [CompletionResult]::new('proxy', 'proxy', [CompletionResultType]::ParameterValue, 'Local proxies for client tools')
            [CompletionResult]::new('db', 'db', [CompletionResultType]::ParameterValue, 'Databases: run psql or mysql through the proxy')
            [CompletionResult]::new('ssh', 'ssh', [CompletionResultType]::ParameterValue, 'Run the system ssh to a node through the proxy; ssh''s exit code is ours')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Print configuration snippets for client tools')
            [CompletionResult]::new('kube', 'kube', [CompletionResultType]::ParameterValue, 'Kubernetes: kubeconfig entries for kubectl, and its credentials')
            [CompletionResult]::new('kubectl', 'kubectl', [CompletionResultType]::ParameterValue, 'Run the system kubectl against a kube cluster through the proxy, with a throwaway kubeconfig (your own is not touched); kubectl''s exit code is ours')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Walk the path to the proxy layer by layer and say where it breaks')
            [CompletionResult]::new('server', 'server', [CompletionResultType]::ParameterValue, 'Run and administer the routing server')
            [CompletionResult]::new('demo', 'demo', [CompletionResultType]::ParameterValue, 'Start a throwaway server, backend and local proxy on loopback and prove a round trip through them')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'oneport;login' {
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'The invite token from `oneport server invite` (single use). It pins the cluster''s CA, so no CA file is needed')
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'The proxy, HOST:PORT (default port 3080). Uses that proxy''s stored login profile, without making it the active one')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity file from `oneport server issue`. Overrides the login profile')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy''s own TLS trusts only the CA in the identity file (this CA when the file has none)')
            [CompletionResult]::new('--renew', '--renew', [CompletionResultType]::ParameterName, 'Renew the current identity now (same user and groups, a fresh key pair), as long as the invite''s renewable period lasts')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'With --identity: replace an enrolled, renewable identity stored for this proxy (another user''s or another key''s) instead of refusing')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not verify the proxy''s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'oneport;logout' {
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'The proxy, HOST:PORT (default port 3080). Uses that proxy''s stored login profile, without making it the active one')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity file from `oneport server issue`. Overrides the login profile')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy''s own TLS trusts only the CA in the identity file (this CA when the file has none)')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Log out of every stored proxy, not only the active one (or --proxy''s)')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Also remove the kubeconfig entries `oneport kube login` wrote for those proxies, without asking')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Also remove the kubeconfig entries `oneport kube login` wrote for those proxies, without asking')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not verify the proxy''s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'oneport;status' {
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'The proxy, HOST:PORT (default port 3080). Uses that proxy''s stored login profile, without making it the active one')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity file from `oneport server issue`. Overrides the login profile')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy''s own TLS trusts only the CA in the identity file (this CA when the file has none)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not verify the proxy''s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'oneport;ls' {
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format: a table, or JSON (the schema is in docs/json.md)')
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'The proxy, HOST:PORT (default port 3080). Uses that proxy''s stored login profile, without making it the active one')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity file from `oneport server issue`. Overrides the login profile')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy''s own TLS trusts only the CA in the identity file (this CA when the file has none)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not verify the proxy''s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'oneport;proxy' {
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'The proxy, HOST:PORT (default port 3080). Uses that proxy''s stored login profile, without making it the active one')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity file from `oneport server issue`. Overrides the login profile')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy''s own TLS trusts only the CA in the identity file (this CA when the file has none)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not verify the proxy''s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('app', 'app', [CompletionResultType]::ParameterValue, 'Serve an app on a loopback port: HTTP apps over http/1.1, TCP apps over teleport-tcp')
            [CompletionResult]::new('kube', 'kube', [CompletionResultType]::ParameterValue, 'Serve kube clusters to kubectl on a loopback HTTPS port, with a throwaway CA and kubeconfig; works through layer 7 load balancers, where `kube login` alone cannot')
            [CompletionResult]::new('db', 'db', [CompletionResultType]::ParameterValue, 'Serve a database on a loopback port for GUI and CLI clients')
            [CompletionResult]::new('ssh', 'ssh', [CompletionResultType]::ParameterValue, 'Relay stdin/stdout to an SSH node: an OpenSSH ProxyCommand. Logs go to stderr; stdout carries nothing but SSH')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'oneport;proxy;app' {
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Local port (default: a free one, printed)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Local port (default: a free one, printed)')
            [CompletionResult]::new('--bind-addr', '--bind-addr', [CompletionResultType]::ParameterName, 'Local address to listen on. Anything but loopback exposes the app to the network with your identity')
            [CompletionResult]::new('--drain-timeout', '--drain-timeout', [CompletionResultType]::ParameterName, 'How long open connections may finish after Ctrl-C (a second Ctrl-C closes them at once)')
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'The proxy, HOST:PORT (default port 3080). Uses that proxy''s stored login profile, without making it the active one')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity file from `oneport server issue`. Overrides the login profile')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy''s own TLS trusts only the CA in the identity file (this CA when the file has none)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Show nothing while running: no status line, no line per connection (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Show nothing while running: no status line, no line per connection (warnings and errors still print)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not verify the proxy''s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'oneport;proxy;kube' {
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Local port (default: a free one, printed)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Local port (default: a free one, printed)')
            [CompletionResult]::new('--bind-addr', '--bind-addr', [CompletionResultType]::ParameterName, 'Local address to listen on')
            [CompletionResult]::new('--exec', '--exec', [CompletionResultType]::ParameterName, 'Run CMD (default: $SHELL) with KUBECONFIG set, stop when it exits and pass its exit code on. Give CMD with `=`: --exec=''kubectl get pods''')
            [CompletionResult]::new('--drain-timeout', '--drain-timeout', [CompletionResultType]::ParameterName, 'How long open connections may finish after Ctrl-C (a second Ctrl-C closes them at once)')
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'The proxy, HOST:PORT (default port 3080). Uses that proxy''s stored login profile, without making it the active one')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity file from `oneport server issue`. Overrides the login profile')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy''s own TLS trusts only the CA in the identity file (this CA when the file has none)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Show nothing while running: no status line, no line per connection (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Show nothing while running: no status line, no line per connection (warnings and errors still print)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not verify the proxy''s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'oneport;proxy;db' {
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Local port (default: a free one, printed). Give one to keep the same settings in a GUI client across restarts')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Local port (default: a free one, printed). Give one to keep the same settings in a GUI client across restarts')
            [CompletionResult]::new('--db-user', '--db-user', [CompletionResultType]::ParameterName, 'The database user to show in the connection settings (default: your oneport user)')
            [CompletionResult]::new('--db-name', '--db-name', [CompletionResultType]::ParameterName, 'The database (schema) name to show in the connection settings')
            [CompletionResult]::new('--protocol', '--protocol', [CompletionResultType]::ParameterName, 'The database''s protocol: postgres, mysql, mongodb or redis. Normally the proxy says; with this flag the local proxy also starts when the proxy refuses the database for now (clients then see the refusal)')
            [CompletionResult]::new('--bind-addr', '--bind-addr', [CompletionResultType]::ParameterName, 'Local address to listen on. Anything but loopback lets others use the database as you')
            [CompletionResult]::new('--drain-timeout', '--drain-timeout', [CompletionResultType]::ParameterName, 'How long open connections may finish after Ctrl-C (a second Ctrl-C closes them at once)')
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'The proxy, HOST:PORT (default port 3080). Uses that proxy''s stored login profile, without making it the active one')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity file from `oneport server issue`. Overrides the login profile')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy''s own TLS trusts only the CA in the identity file (this CA when the file has none)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Show nothing while running: no status line, no line per connection (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Show nothing while running: no status line, no line per connection (warnings and errors still print)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not verify the proxy''s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'oneport;proxy;ssh' {
            [CompletionResult]::new('--cluster', '--cluster', [CompletionResultType]::ParameterName, 'The cluster whose suffix is stripped from the host (`web1.CLUSTER` → node `web1`). Default: the cluster of the login profile')
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'The proxy, HOST:PORT (default port 3080). Uses that proxy''s stored login profile, without making it the active one')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity file from `oneport server issue`. Overrides the login profile')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy''s own TLS trusts only the CA in the identity file (this CA when the file has none)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not verify the proxy''s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'oneport;proxy;help' {
            [CompletionResult]::new('app', 'app', [CompletionResultType]::ParameterValue, 'Serve an app on a loopback port: HTTP apps over http/1.1, TCP apps over teleport-tcp')
            [CompletionResult]::new('kube', 'kube', [CompletionResultType]::ParameterValue, 'Serve kube clusters to kubectl on a loopback HTTPS port, with a throwaway CA and kubeconfig; works through layer 7 load balancers, where `kube login` alone cannot')
            [CompletionResult]::new('db', 'db', [CompletionResultType]::ParameterValue, 'Serve a database on a loopback port for GUI and CLI clients')
            [CompletionResult]::new('ssh', 'ssh', [CompletionResultType]::ParameterValue, 'Relay stdin/stdout to an SSH node: an OpenSSH ProxyCommand. Logs go to stderr; stdout carries nothing but SSH')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'oneport;proxy;help;app' {
            break
        }
        'oneport;proxy;help;kube' {
            break
        }
        'oneport;proxy;help;db' {
            break
        }
        'oneport;proxy;help;ssh' {
            break
        }
        'oneport;proxy;help;help' {
            break
        }
        'oneport;db' {
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'The proxy, HOST:PORT (default port 3080). Uses that proxy''s stored login profile, without making it the active one')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity file from `oneport server issue`. Overrides the login profile')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy''s own TLS trusts only the CA in the identity file (this CA when the file has none)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not verify the proxy''s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('connect', 'connect', [CompletionResultType]::ParameterValue, 'Run psql or mysql against a database through a local proxy')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'oneport;db;connect' {
            [CompletionResult]::new('--db-user', '--db-user', [CompletionResultType]::ParameterName, 'The database user (default: your oneport user)')
            [CompletionResult]::new('--db-name', '--db-name', [CompletionResultType]::ParameterName, 'The database (schema) name (default: the client''s default)')
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'The proxy, HOST:PORT (default port 3080). Uses that proxy''s stored login profile, without making it the active one')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity file from `oneport server issue`. Overrides the login profile')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy''s own TLS trusts only the CA in the identity file (this CA when the file has none)')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Have the client ask for the database password (mariadb/mysql need this for an account with one; psql asks by itself when the server wants one)')
            [CompletionResult]::new('--password', '--password', [CompletionResultType]::ParameterName, 'Have the client ask for the database password (mariadb/mysql need this for an account with one; psql asks by itself when the server wants one)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not verify the proxy''s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'oneport;db;help' {
            [CompletionResult]::new('connect', 'connect', [CompletionResultType]::ParameterValue, 'Run psql or mysql against a database through a local proxy')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'oneport;db;help;connect' {
            break
        }
        'oneport;db;help;help' {
            break
        }
        'oneport;ssh' {
            [CompletionResult]::new('--cluster', '--cluster', [CompletionResultType]::ParameterName, 'The cluster whose suffix `NODE.CLUSTER` may carry. Default: the cluster of the login profile')
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'The proxy, HOST:PORT (default port 3080). Uses that proxy''s stored login profile, without making it the active one')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity file from `oneport server issue`. Overrides the login profile')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy''s own TLS trusts only the CA in the identity file (this CA when the file has none)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not verify the proxy''s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'oneport;config' {
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'The proxy, HOST:PORT (default port 3080). Uses that proxy''s stored login profile, without making it the active one')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity file from `oneport server issue`. Overrides the login profile')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy''s own TLS trusts only the CA in the identity file (this CA when the file has none)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not verify the proxy''s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('ssh', 'ssh', [CompletionResultType]::ParameterValue, 'Print an ssh_config block that sends `ssh USER@NODE.<cluster>` through the proxy (for the login profile, or the --proxy/--identity given here)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'oneport;config;ssh' {
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'The proxy, HOST:PORT (default port 3080). Uses that proxy''s stored login profile, without making it the active one')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity file from `oneport server issue`. Overrides the login profile')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy''s own TLS trusts only the CA in the identity file (this CA when the file has none)')
            [CompletionResult]::new('--control-master', '--control-master', [CompletionResultType]::ParameterName, 'Also share one connection per node between ssh, scp and sftp runs (ControlMaster auto, a ControlPath in a private directory, ControlPersist 10m): one TLS connection through the proxy and one login, instead of one each run')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not verify the proxy''s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'oneport;config;help' {
            [CompletionResult]::new('ssh', 'ssh', [CompletionResultType]::ParameterValue, 'Print an ssh_config block that sends `ssh USER@NODE.<cluster>` through the proxy (for the login profile, or the --proxy/--identity given here)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'oneport;config;help;ssh' {
            break
        }
        'oneport;config;help;help' {
            break
        }
        'oneport;kube' {
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'The proxy, HOST:PORT (default port 3080). Uses that proxy''s stored login profile, without making it the active one')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity file from `oneport server issue`. Overrides the login profile')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy''s own TLS trusts only the CA in the identity file (this CA when the file has none)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not verify the proxy''s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('login', 'login', [CompletionResultType]::ParameterValue, 'Add (or update) a kube cluster in the kubeconfig kubectl uses and switch to it; kubectl then reaches the cluster through the proxy, routed by SNI')
            [CompletionResult]::new('credentials', 'credentials', [CompletionResultType]::ParameterValue, 'Print the ExecCredential (client certificate, key, expiry) kubectl''s exec plugin reads. `kube login` configures kubectl to run it; no network is used')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'oneport;kube;login' {
            [CompletionResult]::new('--set-context-name', '--set-context-name', [CompletionResultType]::ParameterName, 'Name the context T instead of CLUSTER-NAME')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Write this kubeconfig instead of the one kubectl would pick')
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'The proxy, HOST:PORT (default port 3080). Uses that proxy''s stored login profile, without making it the active one')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity file from `oneport server issue`. Overrides the login profile')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy''s own TLS trusts only the CA in the identity file (this CA when the file has none)')
            [CompletionResult]::new('--no-switch', '--no-switch', [CompletionResultType]::ParameterName, 'Add the context without making it kubectl''s current context')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not verify the proxy''s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'oneport;kube;credentials' {
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'The proxy, HOST:PORT (default port 3080). Uses that proxy''s stored login profile, without making it the active one')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity file from `oneport server issue`. Overrides the login profile')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy''s own TLS trusts only the CA in the identity file (this CA when the file has none)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not verify the proxy''s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'oneport;kube;help' {
            [CompletionResult]::new('login', 'login', [CompletionResultType]::ParameterValue, 'Add (or update) a kube cluster in the kubeconfig kubectl uses and switch to it; kubectl then reaches the cluster through the proxy, routed by SNI')
            [CompletionResult]::new('credentials', 'credentials', [CompletionResultType]::ParameterValue, 'Print the ExecCredential (client certificate, key, expiry) kubectl''s exec plugin reads. `kube login` configures kubectl to run it; no network is used')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'oneport;kube;help;login' {
            break
        }
        'oneport;kube;help;credentials' {
            break
        }
        'oneport;kube;help;help' {
            break
        }
        'oneport;kubectl' {
            [CompletionResult]::new('--cluster', '--cluster', [CompletionResultType]::ParameterName, 'The kube cluster (default: the one of kubectl''s current context when `kube login` wrote it, else the only one the proxy offers you)')
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'The proxy, HOST:PORT (default port 3080). Uses that proxy''s stored login profile, without making it the active one')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity file from `oneport server issue`. Overrides the login profile')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy''s own TLS trusts only the CA in the identity file (this CA when the file has none)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not verify the proxy''s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'oneport;doctor' {
            [CompletionResult]::new('--resource', '--resource', [CompletionResultType]::ParameterName, 'Also check one resource, as KIND/NAME (kinds: node, db, app, kube): its route, its tunnel, and whether the server reaches its backend')
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'The proxy, HOST:PORT (default port 3080). Uses that proxy''s stored login profile, without making it the active one')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity file from `oneport server issue`. Overrides the login profile')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy''s own TLS trusts only the CA in the identity file (this CA when the file has none)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not verify the proxy''s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'oneport;server' {
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'proxy')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'identity')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'ca')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'insecure')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Make a CA, a server certificate for every routed name, and a commented server.yaml in DIR')
            [CompletionResult]::new('issue', 'issue', [CompletionResultType]::ParameterValue, 'Issue an identity file (client certificate CN=user, O=groups, key and CA), written with mode 0600')
            [CompletionResult]::new('invite', 'invite', [CompletionResultType]::ParameterValue, 'Invite a user: prints a one-time token (it pins this cluster''s CA) and the `oneport login` command to run on the user''s machine, where the key pair is made. The server keeps only the token''s hash')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Revoke identities: every one issued to a user, or one serial. Running servers refuse them within seconds (`state_refresh`), at every connection and renewal')
            [CompletionResult]::new('identities', 'identities', [CompletionResultType]::ParameterValue, 'Identities issued by this cluster')
            [CompletionResult]::new('start', 'start', [CompletionResultType]::ParameterValue, 'Run the routing server until SIGINT/SIGTERM, then drain. SIGHUP reloads the config (established sessions keep going; a bad config is refused and logged)')
            [CompletionResult]::new('recordings', 'recordings', [CompletionResultType]::ParameterValue, 'List and play recorded `kubectl exec`/`attach` sessions')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'oneport;server;init' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Directory for the CA, certificates and config')
            [CompletionResult]::new('--public-addr', '--public-addr', [CompletionResultType]::ParameterName, 'The address clients use, HOST:PORT')
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'The address to listen on (default: 127.0.0.1 and the public port)')
            [CompletionResult]::new('--cluster-name', '--cluster-name', [CompletionResultType]::ParameterName, 'The cluster name (default: the public host)')
            [CompletionResult]::new('--san', '--san', [CompletionResultType]::ParameterName, 'Another DNS name or IP for the server certificate (repeatable)')
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'proxy')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'identity')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'ca')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Replace an existing CA (invalidates every identity it issued)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'insecure')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'oneport;server;issue' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'The server directory holding the CA')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'The user (certificate CN)')
            [CompletionResult]::new('--group', '--group', [CompletionResultType]::ParameterName, 'A group (certificate O), repeatable')
            [CompletionResult]::new('--ttl', '--ttl', [CompletionResultType]::ParameterName, 'Validity, e.g. 12h, 7d (above 7d you get a warning)')
            [CompletionResult]::new('--out', '--out', [CompletionResultType]::ParameterName, 'Where to write the identity file')
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'proxy')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'identity')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'ca')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Replace an existing --out file')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'insecure')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'oneport;server;invite' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'The server directory (its server.yaml names the state store)')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'The user (certificate CN)')
            [CompletionResult]::new('--group', '--group', [CompletionResultType]::ParameterName, 'A group (certificate O), repeatable')
            [CompletionResult]::new('--ttl', '--ttl', [CompletionResultType]::ParameterName, 'Validity of each certificate, e.g. 12h')
            [CompletionResult]::new('--renewable-for', '--renewable-for', [CompletionResultType]::ParameterName, 'How long after enrollment the identity may be renewed, e.g. 30d')
            [CompletionResult]::new('--expires-in', '--expires-in', [CompletionResultType]::ParameterName, 'How long the token may be used, e.g. 1h')
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'The proxy address to print in the login command (default: public_addr)')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'identity')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'ca')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'insecure')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'oneport;server;revoke' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'The server directory')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'Revoke every identity issued to this user')
            [CompletionResult]::new('--serial', '--serial', [CompletionResultType]::ParameterName, 'Revoke the identity with this serial (hex, as `identities ls` shows it)')
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Why; the user sees it')
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'proxy')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'identity')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'ca')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'insecure')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'oneport;server;identities' {
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'proxy')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'identity')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'ca')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'insecure')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List issued identities: serial, user, groups, issued, expires, revoked')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'oneport;server;identities;ls' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'The server directory')
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'proxy')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'identity')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'ca')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'insecure')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'oneport;server;identities;help' {
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List issued identities: serial, user, groups, issued, expires, revoked')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'oneport;server;identities;help;ls' {
            break
        }
        'oneport;server;identities;help;help' {
            break
        }
        'oneport;server;start' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file')
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'proxy')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'identity')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'ca')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'insecure')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'oneport;server;recordings' {
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'proxy')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'identity')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'ca')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'insecure')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List the recordings of every kube cluster''s recording directory: session id, start (UTC), duration, size, who, where and what')
            [CompletionResult]::new('play', 'play', [CompletionResultType]::ParameterValue, 'Play a recording in the terminal (output only, as the user saw it)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'oneport;server;recordings;ls' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The server config whose kube `recording.dir` entries are read')
            [CompletionResult]::new('--cluster', '--cluster', [CompletionResultType]::ParameterName, 'Only this kube cluster''s directory')
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'proxy')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'identity')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'ca')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'insecure')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'oneport;server;recordings;play' {
            [CompletionResult]::new('--speed', '--speed', [CompletionResultType]::ParameterName, 'Playback speed: 1 is as recorded, 2 twice as fast (pauses are capped at 5 s)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The server config whose kube `recording.dir` entries are read')
            [CompletionResult]::new('--cluster', '--cluster', [CompletionResultType]::ParameterName, 'Only this kube cluster''s directory')
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'proxy')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'identity')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'ca')
            [CompletionResult]::new('--no-wait', '--no-wait', [CompletionResultType]::ParameterName, 'Print everything at once, without pauses')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'insecure')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'oneport;server;recordings;help' {
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List the recordings of every kube cluster''s recording directory: session id, start (UTC), duration, size, who, where and what')
            [CompletionResult]::new('play', 'play', [CompletionResultType]::ParameterValue, 'Play a recording in the terminal (output only, as the user saw it)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'oneport;server;recordings;help;ls' {
            break
        }
        'oneport;server;recordings;help;play' {
            break
        }
        'oneport;server;recordings;help;help' {
            break
        }
        'oneport;server;help' {
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Make a CA, a server certificate for every routed name, and a commented server.yaml in DIR')
            [CompletionResult]::new('issue', 'issue', [CompletionResultType]::ParameterValue, 'Issue an identity file (client certificate CN=user, O=groups, key and CA), written with mode 0600')
            [CompletionResult]::new('invite', 'invite', [CompletionResultType]::ParameterValue, 'Invite a user: prints a one-time token (it pins this cluster''s CA) and the `oneport login` command to run on the user''s machine, where the key pair is made. The server keeps only the token''s hash')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Revoke identities: every one issued to a user, or one serial. Running servers refuse them within seconds (`state_refresh`), at every connection and renewal')
            [CompletionResult]::new('identities', 'identities', [CompletionResultType]::ParameterValue, 'Identities issued by this cluster')
            [CompletionResult]::new('start', 'start', [CompletionResultType]::ParameterValue, 'Run the routing server until SIGINT/SIGTERM, then drain. SIGHUP reloads the config (established sessions keep going; a bad config is refused and logged)')
            [CompletionResult]::new('recordings', 'recordings', [CompletionResultType]::ParameterValue, 'List and play recorded `kubectl exec`/`attach` sessions')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'oneport;server;help;init' {
            break
        }
        'oneport;server;help;issue' {
            break
        }
        'oneport;server;help;invite' {
            break
        }
        'oneport;server;help;revoke' {
            break
        }
        'oneport;server;help;identities' {
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List issued identities: serial, user, groups, issued, expires, revoked')
            break
        }
        'oneport;server;help;identities;ls' {
            break
        }
        'oneport;server;help;start' {
            break
        }
        'oneport;server;help;recordings' {
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List the recordings of every kube cluster''s recording directory: session id, start (UTC), duration, size, who, where and what')
            [CompletionResult]::new('play', 'play', [CompletionResultType]::ParameterValue, 'Play a recording in the terminal (output only, as the user saw it)')
            break
        }
        'oneport;server;help;recordings;ls' {
            break
        }
        'oneport;server;help;recordings;play' {
            break
        }
        'oneport;server;help;help' {
            break
        }
        'oneport;demo' {
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'proxy')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'identity')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'ca')
            [CompletionResult]::new('--once', '--once', [CompletionResultType]::ParameterName, 'Exit after the round trip instead of serving until Ctrl-C')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'insecure')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'oneport;help' {
            [CompletionResult]::new('login', 'login', [CompletionResultType]::ParameterValue, 'Log in: with an invite token (a key pair is made here and never leaves this machine), with an identity file, or renew the current identity')
            [CompletionResult]::new('logout', 'logout', [CompletionResultType]::ParameterValue, 'Forget a login profile and its stored identity')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show what the next command will use, and the stored profiles')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List the resources the proxy offers to you, optionally of one kind')
            [CompletionResult]::new('proxy', 'proxy', [CompletionResultType]::ParameterValue, 'Local proxies for client tools')
            [CompletionResult]::new('db', 'db', [CompletionResultType]::ParameterValue, 'Databases: run psql or mysql through the proxy')
            [CompletionResult]::new('ssh', 'ssh', [CompletionResultType]::ParameterValue, 'Run the system ssh to a node through the proxy; ssh''s exit code is ours')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Print configuration snippets for client tools')
            [CompletionResult]::new('kube', 'kube', [CompletionResultType]::ParameterValue, 'Kubernetes: kubeconfig entries for kubectl, and its credentials')
            [CompletionResult]::new('kubectl', 'kubectl', [CompletionResultType]::ParameterValue, 'Run the system kubectl against a kube cluster through the proxy, with a throwaway kubeconfig (your own is not touched); kubectl''s exit code is ours')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Walk the path to the proxy layer by layer and say where it breaks')
            [CompletionResult]::new('server', 'server', [CompletionResultType]::ParameterValue, 'Run and administer the routing server')
            [CompletionResult]::new('demo', 'demo', [CompletionResultType]::ParameterValue, 'Start a throwaway server, backend and local proxy on loopback and prove a round trip through them')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'oneport;help;login' {
            break
        }
        'oneport;help;logout' {
            break
        }
        'oneport;help;status' {
            break
        }
        'oneport;help;ls' {
            break
        }
        'oneport;help;proxy' {
            [CompletionResult]::new('app', 'app', [CompletionResultType]::ParameterValue, 'Serve an app on a loopback port: HTTP apps over http/1.1, TCP apps over teleport-tcp')
            [CompletionResult]::new('kube', 'kube', [CompletionResultType]::ParameterValue, 'Serve kube clusters to kubectl on a loopback HTTPS port, with a throwaway CA and kubeconfig; works through layer 7 load balancers, where `kube login` alone cannot')
            [CompletionResult]::new('db', 'db', [CompletionResultType]::ParameterValue, 'Serve a database on a loopback port for GUI and CLI clients')
            [CompletionResult]::new('ssh', 'ssh', [CompletionResultType]::ParameterValue, 'Relay stdin/stdout to an SSH node: an OpenSSH ProxyCommand. Logs go to stderr; stdout carries nothing but SSH')
            break
        }
        'oneport;help;proxy;app' {
            break
        }
        'oneport;help;proxy;kube' {
            break
        }
        'oneport;help;proxy;db' {
            break
        }
        'oneport;help;proxy;ssh' {
            break
        }
        'oneport;help;db' {
            [CompletionResult]::new('connect', 'connect', [CompletionResultType]::ParameterValue, 'Run psql or mysql against a database through a local proxy')
            break
        }
        'oneport;help;db;connect' {
            break
        }
        'oneport;help;ssh' {
            break
        }
        'oneport;help;config' {
            [CompletionResult]::new('ssh', 'ssh', [CompletionResultType]::ParameterValue, 'Print an ssh_config block that sends `ssh USER@NODE.<cluster>` through the proxy (for the login profile, or the --proxy/--identity given here)')
            break
        }
        'oneport;help;config;ssh' {
            break
        }
        'oneport;help;kube' {
            [CompletionResult]::new('login', 'login', [CompletionResultType]::ParameterValue, 'Add (or update) a kube cluster in the kubeconfig kubectl uses and switch to it; kubectl then reaches the cluster through the proxy, routed by SNI')
            [CompletionResult]::new('credentials', 'credentials', [CompletionResultType]::ParameterValue, 'Print the ExecCredential (client certificate, key, expiry) kubectl''s exec plugin reads. `kube login` configures kubectl to run it; no network is used')
            break
        }
        'oneport;help;kube;login' {
            break
        }
        'oneport;help;kube;credentials' {
            break
        }
        'oneport;help;kubectl' {
            break
        }
        'oneport;help;doctor' {
            break
        }
        'oneport;help;server' {
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Make a CA, a server certificate for every routed name, and a commented server.yaml in DIR')
            [CompletionResult]::new('issue', 'issue', [CompletionResultType]::ParameterValue, 'Issue an identity file (client certificate CN=user, O=groups, key and CA), written with mode 0600')
            [CompletionResult]::new('invite', 'invite', [CompletionResultType]::ParameterValue, 'Invite a user: prints a one-time token (it pins this cluster''s CA) and the `oneport login` command to run on the user''s machine, where the key pair is made. The server keeps only the token''s hash')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Revoke identities: every one issued to a user, or one serial. Running servers refuse them within seconds (`state_refresh`), at every connection and renewal')
            [CompletionResult]::new('identities', 'identities', [CompletionResultType]::ParameterValue, 'Identities issued by this cluster')
            [CompletionResult]::new('start', 'start', [CompletionResultType]::ParameterValue, 'Run the routing server until SIGINT/SIGTERM, then drain. SIGHUP reloads the config (established sessions keep going; a bad config is refused and logged)')
            [CompletionResult]::new('recordings', 'recordings', [CompletionResultType]::ParameterValue, 'List and play recorded `kubectl exec`/`attach` sessions')
            break
        }
        'oneport;help;server;init' {
            break
        }
        'oneport;help;server;issue' {
            break
        }
        'oneport;help;server;invite' {
            break
        }
        'oneport;help;server;revoke' {
            break
        }
        'oneport;help;server;identities' {
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List issued identities: serial, user, groups, issued, expires, revoked')
            break
        }
        'oneport;help;server;identities;ls' {
            break
        }
        'oneport;help;server;start' {
            break
        }
        'oneport;help;server;recordings' {
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List the recordings of every kube cluster''s recording directory: session id, start (UTC), duration, size, who, where and what')
            [CompletionResult]::new('play', 'play', [CompletionResultType]::ParameterValue, 'Play a recording in the terminal (output only, as the user saw it)')
            break
        }
        'oneport;help;server;recordings;ls' {
            break
        }
        'oneport;help;server;recordings;play' {
            break
        }
        'oneport;help;demo' {
            break
        }
        'oneport;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
