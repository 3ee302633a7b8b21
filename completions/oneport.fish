# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_oneport_global_optspecs
    string join \n proxy= identity= ca= insecure v/verbose h/help V/version
end

function __fish_oneport_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_oneport_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_oneport_using_subcommand
    set -l cmd (__fish_oneport_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c oneport -n "__fish_oneport_needs_command" -l proxy -d 'The proxy, HOST:PORT (default port 3080). Uses that proxy\'s stored login profile, without making it the active one' -r
complete -c oneport -n "__fish_oneport_needs_command" -l identity -d 'Identity file from `oneport server issue`. Overrides the login profile' -r -F
complete -c oneport -n "__fish_oneport_needs_command" -l ca -d 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy\'s own TLS trusts only the CA in the identity file (this CA when the file has none)' -r -F
complete -c oneport -n "__fish_oneport_needs_command" -l insecure -d 'Do not verify the proxy\'s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only'
complete -c oneport -n "__fish_oneport_needs_command" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides'
complete -c oneport -n "__fish_oneport_needs_command" -s h -l help -d 'Print help'
complete -c oneport -n "__fish_oneport_needs_command" -s V -l version -d 'Print version'
complete -c oneport -n "__fish_oneport_needs_command" -f -a "login" -d 'Log in: with an invite token (a key pair is made here and never leaves this machine), with an identity file, or renew the current identity'
complete -c oneport -n "__fish_oneport_needs_command" -f -a "logout" -d 'Forget a login profile and its stored identity'
complete -c oneport -n "__fish_oneport_needs_command" -f -a "status" -d 'Show what the next command will use, and the stored profiles'
complete -c oneport -n "__fish_oneport_needs_command" -f -a "ls" -d 'List the resources the proxy offers to you, optionally of one kind'
complete -c oneport -n "__fish_oneport_needs_command" -f -a "proxy" -d 'Local proxies for client tools'
complete -c oneport -n "__fish_oneport_needs_command" -f -a "db" -d 'Databases: run psql or mysql through the proxy'
complete -c oneport -n "__fish_oneport_needs_command" -f -a "ssh" -d 'Run the system ssh to a node through the proxy; ssh\'s exit code is ours'
complete -c oneport -n "__fish_oneport_needs_command" -f -a "config" -d 'Print configuration snippets for client tools'
complete -c oneport -n "__fish_oneport_needs_command" -f -a "kube" -d 'Kubernetes: kubeconfig entries for kubectl, and its credentials'
complete -c oneport -n "__fish_oneport_needs_command" -f -a "kubectl" -d 'Run the system kubectl against a kube cluster through the proxy, with a throwaway kubeconfig (your own is not touched); kubectl\'s exit code is ours'
complete -c oneport -n "__fish_oneport_needs_command" -f -a "doctor" -d 'Walk the path to the proxy layer by layer and say where it breaks'
complete -c oneport -n "__fish_oneport_needs_command" -f -a "server" -d 'Run and administer the routing server'
complete -c oneport -n "__fish_oneport_needs_command" -f -a "demo" -d 'Start a throwaway server, backend and local proxy on loopback and prove a round trip through them'
complete -c oneport -n "__fish_oneport_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c oneport -n "__fish_oneport_using_subcommand login" -l token -d 'The invite token from `oneport server invite` (single use). It pins the cluster\'s CA, so no CA file is needed' -r
complete -c oneport -n "__fish_oneport_using_subcommand login" -l proxy -d 'The proxy, HOST:PORT (default port 3080). Uses that proxy\'s stored login profile, without making it the active one' -r
complete -c oneport -n "__fish_oneport_using_subcommand login" -l identity -d 'Identity file from `oneport server issue`. Overrides the login profile' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand login" -l ca -d 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy\'s own TLS trusts only the CA in the identity file (this CA when the file has none)' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand login" -l renew -d 'Renew the current identity now (same user and groups, a fresh key pair), as long as the invite\'s renewable period lasts'
complete -c oneport -n "__fish_oneport_using_subcommand login" -l force -d 'With --identity: replace an enrolled, renewable identity stored for this proxy (another user\'s or another key\'s) instead of refusing'
complete -c oneport -n "__fish_oneport_using_subcommand login" -l insecure -d 'Do not verify the proxy\'s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only'
complete -c oneport -n "__fish_oneport_using_subcommand login" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides'
complete -c oneport -n "__fish_oneport_using_subcommand login" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oneport -n "__fish_oneport_using_subcommand login" -s V -l version -d 'Print version'
complete -c oneport -n "__fish_oneport_using_subcommand logout" -l proxy -d 'The proxy, HOST:PORT (default port 3080). Uses that proxy\'s stored login profile, without making it the active one' -r
complete -c oneport -n "__fish_oneport_using_subcommand logout" -l identity -d 'Identity file from `oneport server issue`. Overrides the login profile' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand logout" -l ca -d 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy\'s own TLS trusts only the CA in the identity file (this CA when the file has none)' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand logout" -l all -d 'Log out of every stored proxy, not only the active one (or --proxy\'s)'
complete -c oneport -n "__fish_oneport_using_subcommand logout" -s y -l yes -d 'Also remove the kubeconfig entries `oneport kube login` wrote for those proxies, without asking'
complete -c oneport -n "__fish_oneport_using_subcommand logout" -l insecure -d 'Do not verify the proxy\'s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only'
complete -c oneport -n "__fish_oneport_using_subcommand logout" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides'
complete -c oneport -n "__fish_oneport_using_subcommand logout" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oneport -n "__fish_oneport_using_subcommand logout" -s V -l version -d 'Print version'
complete -c oneport -n "__fish_oneport_using_subcommand status" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'One JSON object (docs/json.md)'"
complete -c oneport -n "__fish_oneport_using_subcommand status" -l proxy -d 'The proxy, HOST:PORT (default port 3080). Uses that proxy\'s stored login profile, without making it the active one' -r
complete -c oneport -n "__fish_oneport_using_subcommand status" -l identity -d 'Identity file from `oneport server issue`. Overrides the login profile' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand status" -l ca -d 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy\'s own TLS trusts only the CA in the identity file (this CA when the file has none)' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand status" -l insecure -d 'Do not verify the proxy\'s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only'
complete -c oneport -n "__fish_oneport_using_subcommand status" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides'
complete -c oneport -n "__fish_oneport_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oneport -n "__fish_oneport_using_subcommand status" -s V -l version -d 'Print version'
complete -c oneport -n "__fish_oneport_using_subcommand ls" -l format -d 'Output format: a table, or JSON (the schema is in docs/json.md)' -r -f -a "text\t'A table for people'
json\t'One JSON object for programs (docs/json.md)'"
complete -c oneport -n "__fish_oneport_using_subcommand ls" -l proxy -d 'The proxy, HOST:PORT (default port 3080). Uses that proxy\'s stored login profile, without making it the active one' -r
complete -c oneport -n "__fish_oneport_using_subcommand ls" -l identity -d 'Identity file from `oneport server issue`. Overrides the login profile' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand ls" -l ca -d 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy\'s own TLS trusts only the CA in the identity file (this CA when the file has none)' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand ls" -l insecure -d 'Do not verify the proxy\'s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only'
complete -c oneport -n "__fish_oneport_using_subcommand ls" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides'
complete -c oneport -n "__fish_oneport_using_subcommand ls" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oneport -n "__fish_oneport_using_subcommand ls" -s V -l version -d 'Print version'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and not __fish_seen_subcommand_from app kube db ssh help" -l proxy -d 'The proxy, HOST:PORT (default port 3080). Uses that proxy\'s stored login profile, without making it the active one' -r
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and not __fish_seen_subcommand_from app kube db ssh help" -l identity -d 'Identity file from `oneport server issue`. Overrides the login profile' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and not __fish_seen_subcommand_from app kube db ssh help" -l ca -d 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy\'s own TLS trusts only the CA in the identity file (this CA when the file has none)' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and not __fish_seen_subcommand_from app kube db ssh help" -l insecure -d 'Do not verify the proxy\'s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and not __fish_seen_subcommand_from app kube db ssh help" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and not __fish_seen_subcommand_from app kube db ssh help" -s h -l help -d 'Print help'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and not __fish_seen_subcommand_from app kube db ssh help" -s V -l version -d 'Print version'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and not __fish_seen_subcommand_from app kube db ssh help" -f -a "app" -d 'Serve an app on a loopback port: HTTP apps over http/1.1, TCP apps over teleport-tcp'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and not __fish_seen_subcommand_from app kube db ssh help" -f -a "kube" -d 'Serve kube clusters to kubectl on a loopback HTTPS port, with a throwaway CA and kubeconfig; works through layer 7 load balancers, where `kube login` alone cannot'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and not __fish_seen_subcommand_from app kube db ssh help" -f -a "db" -d 'Serve a database on a loopback port for GUI and CLI clients'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and not __fish_seen_subcommand_from app kube db ssh help" -f -a "ssh" -d 'Relay stdin/stdout to an SSH node: an OpenSSH ProxyCommand. Logs go to stderr; stdout carries nothing but SSH'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and not __fish_seen_subcommand_from app kube db ssh help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from app" -s p -l port -d 'Local port (default: a free one, printed)' -r
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from app" -l bind-addr -d 'Local address to listen on. Anything but loopback exposes the app to the network with your identity' -r
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from app" -l drain-timeout -d 'How long open connections may finish after Ctrl-C (a second Ctrl-C closes them at once)' -r
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from app" -l proxy -d 'The proxy, HOST:PORT (default port 3080). Uses that proxy\'s stored login profile, without making it the active one' -r
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from app" -l identity -d 'Identity file from `oneport server issue`. Overrides the login profile' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from app" -l ca -d 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy\'s own TLS trusts only the CA in the identity file (this CA when the file has none)' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from app" -s q -l quiet -d 'Show nothing while running: no status line, no line per connection (warnings and errors still print)'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from app" -l insecure -d 'Do not verify the proxy\'s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from app" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from app" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from app" -s V -l version -d 'Print version'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from kube" -s p -l port -d 'Local port (default: a free one, printed)' -r
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from kube" -l bind-addr -d 'Local address to listen on' -r
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from kube" -l exec -d 'Run CMD (default: $SHELL) with KUBECONFIG set, stop when it exits and pass its exit code on. Give CMD with `=`: --exec=\'kubectl get pods\'' -r
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from kube" -l drain-timeout -d 'How long open connections may finish after Ctrl-C (a second Ctrl-C closes them at once)' -r
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from kube" -l proxy -d 'The proxy, HOST:PORT (default port 3080). Uses that proxy\'s stored login profile, without making it the active one' -r
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from kube" -l identity -d 'Identity file from `oneport server issue`. Overrides the login profile' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from kube" -l ca -d 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy\'s own TLS trusts only the CA in the identity file (this CA when the file has none)' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from kube" -s q -l quiet -d 'Show nothing while running: no status line, no line per connection (warnings and errors still print)'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from kube" -l insecure -d 'Do not verify the proxy\'s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from kube" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from kube" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from kube" -s V -l version -d 'Print version'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from db" -s p -l port -d 'Local port (default: a free one, printed). Give one to keep the same settings in a GUI client across restarts' -r
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from db" -l db-user -d 'The database user to show in the connection settings (default: your oneport user)' -r
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from db" -l db-name -d 'The database (schema) name to show in the connection settings' -r
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from db" -l protocol -d 'The database\'s protocol: postgres, mysql, mongodb or redis. Normally the proxy says; with this flag the local proxy also starts when the proxy refuses the database for now (clients then see the refusal)' -r
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from db" -l bind-addr -d 'Local address to listen on. Anything but loopback lets others use the database as you' -r
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from db" -l drain-timeout -d 'How long open connections may finish after Ctrl-C (a second Ctrl-C closes them at once)' -r
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from db" -l proxy -d 'The proxy, HOST:PORT (default port 3080). Uses that proxy\'s stored login profile, without making it the active one' -r
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from db" -l identity -d 'Identity file from `oneport server issue`. Overrides the login profile' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from db" -l ca -d 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy\'s own TLS trusts only the CA in the identity file (this CA when the file has none)' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from db" -s q -l quiet -d 'Show nothing while running: no status line, no line per connection (warnings and errors still print)'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from db" -l insecure -d 'Do not verify the proxy\'s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from db" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from db" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from db" -s V -l version -d 'Print version'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from ssh" -l cluster -d 'The cluster whose suffix is stripped from the host (`web1.CLUSTER` → node `web1`). Default: the cluster of the login profile' -r
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from ssh" -l proxy -d 'The proxy, HOST:PORT (default port 3080). Uses that proxy\'s stored login profile, without making it the active one' -r
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from ssh" -l identity -d 'Identity file from `oneport server issue`. Overrides the login profile' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from ssh" -l ca -d 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy\'s own TLS trusts only the CA in the identity file (this CA when the file has none)' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from ssh" -l insecure -d 'Do not verify the proxy\'s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from ssh" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from ssh" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from ssh" -s V -l version -d 'Print version'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from help" -f -a "app" -d 'Serve an app on a loopback port: HTTP apps over http/1.1, TCP apps over teleport-tcp'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from help" -f -a "kube" -d 'Serve kube clusters to kubectl on a loopback HTTPS port, with a throwaway CA and kubeconfig; works through layer 7 load balancers, where `kube login` alone cannot'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from help" -f -a "db" -d 'Serve a database on a loopback port for GUI and CLI clients'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from help" -f -a "ssh" -d 'Relay stdin/stdout to an SSH node: an OpenSSH ProxyCommand. Logs go to stderr; stdout carries nothing but SSH'
complete -c oneport -n "__fish_oneport_using_subcommand proxy; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c oneport -n "__fish_oneport_using_subcommand db; and not __fish_seen_subcommand_from connect help" -l proxy -d 'The proxy, HOST:PORT (default port 3080). Uses that proxy\'s stored login profile, without making it the active one' -r
complete -c oneport -n "__fish_oneport_using_subcommand db; and not __fish_seen_subcommand_from connect help" -l identity -d 'Identity file from `oneport server issue`. Overrides the login profile' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand db; and not __fish_seen_subcommand_from connect help" -l ca -d 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy\'s own TLS trusts only the CA in the identity file (this CA when the file has none)' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand db; and not __fish_seen_subcommand_from connect help" -l insecure -d 'Do not verify the proxy\'s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only'
complete -c oneport -n "__fish_oneport_using_subcommand db; and not __fish_seen_subcommand_from connect help" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides'
complete -c oneport -n "__fish_oneport_using_subcommand db; and not __fish_seen_subcommand_from connect help" -s h -l help -d 'Print help'
complete -c oneport -n "__fish_oneport_using_subcommand db; and not __fish_seen_subcommand_from connect help" -s V -l version -d 'Print version'
complete -c oneport -n "__fish_oneport_using_subcommand db; and not __fish_seen_subcommand_from connect help" -f -a "connect" -d 'Run psql or mysql against a database through a local proxy'
complete -c oneport -n "__fish_oneport_using_subcommand db; and not __fish_seen_subcommand_from connect help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c oneport -n "__fish_oneport_using_subcommand db; and __fish_seen_subcommand_from connect" -l db-user -d 'The database user (default: your oneport user)' -r
complete -c oneport -n "__fish_oneport_using_subcommand db; and __fish_seen_subcommand_from connect" -l db-name -d 'The database (schema) name (default: the client\'s default)' -r
complete -c oneport -n "__fish_oneport_using_subcommand db; and __fish_seen_subcommand_from connect" -l proxy -d 'The proxy, HOST:PORT (default port 3080). Uses that proxy\'s stored login profile, without making it the active one' -r
complete -c oneport -n "__fish_oneport_using_subcommand db; and __fish_seen_subcommand_from connect" -l identity -d 'Identity file from `oneport server issue`. Overrides the login profile' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand db; and __fish_seen_subcommand_from connect" -l ca -d 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy\'s own TLS trusts only the CA in the identity file (this CA when the file has none)' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand db; and __fish_seen_subcommand_from connect" -s p -l password -d 'Have the client ask for the database password (mariadb/mysql need this for an account with one; psql asks by itself when the server wants one)'
complete -c oneport -n "__fish_oneport_using_subcommand db; and __fish_seen_subcommand_from connect" -l insecure -d 'Do not verify the proxy\'s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only'
complete -c oneport -n "__fish_oneport_using_subcommand db; and __fish_seen_subcommand_from connect" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides'
complete -c oneport -n "__fish_oneport_using_subcommand db; and __fish_seen_subcommand_from connect" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oneport -n "__fish_oneport_using_subcommand db; and __fish_seen_subcommand_from connect" -s V -l version -d 'Print version'
complete -c oneport -n "__fish_oneport_using_subcommand db; and __fish_seen_subcommand_from help" -f -a "connect" -d 'Run psql or mysql against a database through a local proxy'
complete -c oneport -n "__fish_oneport_using_subcommand db; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c oneport -n "__fish_oneport_using_subcommand ssh" -l cluster -d 'The cluster whose suffix `NODE.CLUSTER` may carry. Default: the cluster of the login profile' -r
complete -c oneport -n "__fish_oneport_using_subcommand ssh" -l proxy -d 'The proxy, HOST:PORT (default port 3080). Uses that proxy\'s stored login profile, without making it the active one' -r
complete -c oneport -n "__fish_oneport_using_subcommand ssh" -l identity -d 'Identity file from `oneport server issue`. Overrides the login profile' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand ssh" -l ca -d 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy\'s own TLS trusts only the CA in the identity file (this CA when the file has none)' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand ssh" -l insecure -d 'Do not verify the proxy\'s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only'
complete -c oneport -n "__fish_oneport_using_subcommand ssh" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides'
complete -c oneport -n "__fish_oneport_using_subcommand ssh" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oneport -n "__fish_oneport_using_subcommand ssh" -s V -l version -d 'Print version'
complete -c oneport -n "__fish_oneport_using_subcommand config; and not __fish_seen_subcommand_from ssh help" -l proxy -d 'The proxy, HOST:PORT (default port 3080). Uses that proxy\'s stored login profile, without making it the active one' -r
complete -c oneport -n "__fish_oneport_using_subcommand config; and not __fish_seen_subcommand_from ssh help" -l identity -d 'Identity file from `oneport server issue`. Overrides the login profile' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand config; and not __fish_seen_subcommand_from ssh help" -l ca -d 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy\'s own TLS trusts only the CA in the identity file (this CA when the file has none)' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand config; and not __fish_seen_subcommand_from ssh help" -l insecure -d 'Do not verify the proxy\'s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only'
complete -c oneport -n "__fish_oneport_using_subcommand config; and not __fish_seen_subcommand_from ssh help" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides'
complete -c oneport -n "__fish_oneport_using_subcommand config; and not __fish_seen_subcommand_from ssh help" -s h -l help -d 'Print help'
complete -c oneport -n "__fish_oneport_using_subcommand config; and not __fish_seen_subcommand_from ssh help" -s V -l version -d 'Print version'
complete -c oneport -n "__fish_oneport_using_subcommand config; and not __fish_seen_subcommand_from ssh help" -f -a "ssh" -d 'Print an ssh_config block that sends `ssh USER@NODE.<cluster>` through the proxy (for the login profile, or the --proxy/--identity given here)'
complete -c oneport -n "__fish_oneport_using_subcommand config; and not __fish_seen_subcommand_from ssh help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c oneport -n "__fish_oneport_using_subcommand config; and __fish_seen_subcommand_from ssh" -l proxy -d 'The proxy, HOST:PORT (default port 3080). Uses that proxy\'s stored login profile, without making it the active one' -r
complete -c oneport -n "__fish_oneport_using_subcommand config; and __fish_seen_subcommand_from ssh" -l identity -d 'Identity file from `oneport server issue`. Overrides the login profile' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand config; and __fish_seen_subcommand_from ssh" -l ca -d 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy\'s own TLS trusts only the CA in the identity file (this CA when the file has none)' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand config; and __fish_seen_subcommand_from ssh" -l control-master -d 'Also share one connection per node between ssh, scp and sftp runs (ControlMaster auto, a ControlPath in a private directory, ControlPersist 10m): one TLS connection through the proxy and one login, instead of one each run'
complete -c oneport -n "__fish_oneport_using_subcommand config; and __fish_seen_subcommand_from ssh" -l insecure -d 'Do not verify the proxy\'s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only'
complete -c oneport -n "__fish_oneport_using_subcommand config; and __fish_seen_subcommand_from ssh" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides'
complete -c oneport -n "__fish_oneport_using_subcommand config; and __fish_seen_subcommand_from ssh" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oneport -n "__fish_oneport_using_subcommand config; and __fish_seen_subcommand_from ssh" -s V -l version -d 'Print version'
complete -c oneport -n "__fish_oneport_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "ssh" -d 'Print an ssh_config block that sends `ssh USER@NODE.<cluster>` through the proxy (for the login profile, or the --proxy/--identity given here)'
complete -c oneport -n "__fish_oneport_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c oneport -n "__fish_oneport_using_subcommand kube; and not __fish_seen_subcommand_from login credentials help" -l proxy -d 'The proxy, HOST:PORT (default port 3080). Uses that proxy\'s stored login profile, without making it the active one' -r
complete -c oneport -n "__fish_oneport_using_subcommand kube; and not __fish_seen_subcommand_from login credentials help" -l identity -d 'Identity file from `oneport server issue`. Overrides the login profile' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand kube; and not __fish_seen_subcommand_from login credentials help" -l ca -d 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy\'s own TLS trusts only the CA in the identity file (this CA when the file has none)' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand kube; and not __fish_seen_subcommand_from login credentials help" -l insecure -d 'Do not verify the proxy\'s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only'
complete -c oneport -n "__fish_oneport_using_subcommand kube; and not __fish_seen_subcommand_from login credentials help" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides'
complete -c oneport -n "__fish_oneport_using_subcommand kube; and not __fish_seen_subcommand_from login credentials help" -s h -l help -d 'Print help'
complete -c oneport -n "__fish_oneport_using_subcommand kube; and not __fish_seen_subcommand_from login credentials help" -s V -l version -d 'Print version'
complete -c oneport -n "__fish_oneport_using_subcommand kube; and not __fish_seen_subcommand_from login credentials help" -f -a "login" -d 'Add (or update) a kube cluster in the kubeconfig kubectl uses and switch to it; kubectl then reaches the cluster through the proxy, routed by SNI'
complete -c oneport -n "__fish_oneport_using_subcommand kube; and not __fish_seen_subcommand_from login credentials help" -f -a "credentials" -d 'Print the ExecCredential (client certificate, key, expiry) kubectl\'s exec plugin reads. `kube login` configures kubectl to run it; no network is used'
complete -c oneport -n "__fish_oneport_using_subcommand kube; and not __fish_seen_subcommand_from login credentials help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c oneport -n "__fish_oneport_using_subcommand kube; and __fish_seen_subcommand_from login" -l set-context-name -d 'Name the context T instead of CLUSTER-NAME' -r
complete -c oneport -n "__fish_oneport_using_subcommand kube; and __fish_seen_subcommand_from login" -l kubeconfig -d 'Write this kubeconfig instead of the one kubectl would pick' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand kube; and __fish_seen_subcommand_from login" -l proxy -d 'The proxy, HOST:PORT (default port 3080). Uses that proxy\'s stored login profile, without making it the active one' -r
complete -c oneport -n "__fish_oneport_using_subcommand kube; and __fish_seen_subcommand_from login" -l identity -d 'Identity file from `oneport server issue`. Overrides the login profile' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand kube; and __fish_seen_subcommand_from login" -l ca -d 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy\'s own TLS trusts only the CA in the identity file (this CA when the file has none)' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand kube; and __fish_seen_subcommand_from login" -l no-switch -d 'Add the context without making it kubectl\'s current context'
complete -c oneport -n "__fish_oneport_using_subcommand kube; and __fish_seen_subcommand_from login" -l insecure -d 'Do not verify the proxy\'s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only'
complete -c oneport -n "__fish_oneport_using_subcommand kube; and __fish_seen_subcommand_from login" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides'
complete -c oneport -n "__fish_oneport_using_subcommand kube; and __fish_seen_subcommand_from login" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oneport -n "__fish_oneport_using_subcommand kube; and __fish_seen_subcommand_from login" -s V -l version -d 'Print version'
complete -c oneport -n "__fish_oneport_using_subcommand kube; and __fish_seen_subcommand_from credentials" -l proxy -d 'The proxy, HOST:PORT (default port 3080). Uses that proxy\'s stored login profile, without making it the active one' -r
complete -c oneport -n "__fish_oneport_using_subcommand kube; and __fish_seen_subcommand_from credentials" -l identity -d 'Identity file from `oneport server issue`. Overrides the login profile' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand kube; and __fish_seen_subcommand_from credentials" -l ca -d 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy\'s own TLS trusts only the CA in the identity file (this CA when the file has none)' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand kube; and __fish_seen_subcommand_from credentials" -l insecure -d 'Do not verify the proxy\'s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only'
complete -c oneport -n "__fish_oneport_using_subcommand kube; and __fish_seen_subcommand_from credentials" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides'
complete -c oneport -n "__fish_oneport_using_subcommand kube; and __fish_seen_subcommand_from credentials" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oneport -n "__fish_oneport_using_subcommand kube; and __fish_seen_subcommand_from credentials" -s V -l version -d 'Print version'
complete -c oneport -n "__fish_oneport_using_subcommand kube; and __fish_seen_subcommand_from help" -f -a "login" -d 'Add (or update) a kube cluster in the kubeconfig kubectl uses and switch to it; kubectl then reaches the cluster through the proxy, routed by SNI'
complete -c oneport -n "__fish_oneport_using_subcommand kube; and __fish_seen_subcommand_from help" -f -a "credentials" -d 'Print the ExecCredential (client certificate, key, expiry) kubectl\'s exec plugin reads. `kube login` configures kubectl to run it; no network is used'
complete -c oneport -n "__fish_oneport_using_subcommand kube; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c oneport -n "__fish_oneport_using_subcommand kubectl" -l cluster -d 'The kube cluster (default: the one of kubectl\'s current context when `kube login` wrote it, else the only one the proxy offers you)' -r
complete -c oneport -n "__fish_oneport_using_subcommand kubectl" -l proxy -d 'The proxy, HOST:PORT (default port 3080). Uses that proxy\'s stored login profile, without making it the active one' -r
complete -c oneport -n "__fish_oneport_using_subcommand kubectl" -l identity -d 'Identity file from `oneport server issue`. Overrides the login profile' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand kubectl" -l ca -d 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy\'s own TLS trusts only the CA in the identity file (this CA when the file has none)' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand kubectl" -l insecure -d 'Do not verify the proxy\'s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only'
complete -c oneport -n "__fish_oneport_using_subcommand kubectl" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides'
complete -c oneport -n "__fish_oneport_using_subcommand kubectl" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oneport -n "__fish_oneport_using_subcommand kubectl" -s V -l version -d 'Print version'
complete -c oneport -n "__fish_oneport_using_subcommand doctor" -l resource -d 'Also check one resource, as KIND/NAME (kinds: node, db, app, kube): its route, its tunnel, and whether the server reaches its backend' -r
complete -c oneport -n "__fish_oneport_using_subcommand doctor" -l proxy -d 'The proxy, HOST:PORT (default port 3080). Uses that proxy\'s stored login profile, without making it the active one' -r
complete -c oneport -n "__fish_oneport_using_subcommand doctor" -l identity -d 'Identity file from `oneport server issue`. Overrides the login profile' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand doctor" -l ca -d 'An extra CA to trust for a load balancer in front of the proxy (a corporate CA, say), beside the system roots and the cluster CA. The proxy\'s own TLS trusts only the CA in the identity file (this CA when the file has none)' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand doctor" -l insecure -d 'Do not verify the proxy\'s certificate. Anyone on the path can then read and change the traffic; for throwaway test setups only'
complete -c oneport -n "__fish_oneport_using_subcommand doctor" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides'
complete -c oneport -n "__fish_oneport_using_subcommand doctor" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oneport -n "__fish_oneport_using_subcommand doctor" -s V -l version -d 'Print version'
complete -c oneport -n "__fish_oneport_using_subcommand server; and not __fish_seen_subcommand_from init issue invite revoke identities start recordings help" -l proxy -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and not __fish_seen_subcommand_from init issue invite revoke identities start recordings help" -l identity -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and not __fish_seen_subcommand_from init issue invite revoke identities start recordings help" -l ca -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and not __fish_seen_subcommand_from init issue invite revoke identities start recordings help" -l insecure
complete -c oneport -n "__fish_oneport_using_subcommand server; and not __fish_seen_subcommand_from init issue invite revoke identities start recordings help" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides'
complete -c oneport -n "__fish_oneport_using_subcommand server; and not __fish_seen_subcommand_from init issue invite revoke identities start recordings help" -s h -l help -d 'Print help'
complete -c oneport -n "__fish_oneport_using_subcommand server; and not __fish_seen_subcommand_from init issue invite revoke identities start recordings help" -s V -l version -d 'Print version'
complete -c oneport -n "__fish_oneport_using_subcommand server; and not __fish_seen_subcommand_from init issue invite revoke identities start recordings help" -f -a "init" -d 'Make a CA, a server certificate for every routed name, and a commented server.yaml in DIR'
complete -c oneport -n "__fish_oneport_using_subcommand server; and not __fish_seen_subcommand_from init issue invite revoke identities start recordings help" -f -a "issue" -d 'Issue an identity file (client certificate CN=user, O=groups, key and CA), written with mode 0600'
complete -c oneport -n "__fish_oneport_using_subcommand server; and not __fish_seen_subcommand_from init issue invite revoke identities start recordings help" -f -a "invite" -d 'Invite a user: prints a one-time token (it pins this cluster\'s CA) and the `oneport login` command to run on the user\'s machine, where the key pair is made. The server keeps only the token\'s hash'
complete -c oneport -n "__fish_oneport_using_subcommand server; and not __fish_seen_subcommand_from init issue invite revoke identities start recordings help" -f -a "revoke" -d 'Revoke identities: every one issued to a user, or one serial. Running servers refuse them within seconds (`state_refresh`), at every connection and renewal'
complete -c oneport -n "__fish_oneport_using_subcommand server; and not __fish_seen_subcommand_from init issue invite revoke identities start recordings help" -f -a "identities" -d 'Identities issued by this cluster'
complete -c oneport -n "__fish_oneport_using_subcommand server; and not __fish_seen_subcommand_from init issue invite revoke identities start recordings help" -f -a "start" -d 'Run the routing server until SIGINT/SIGTERM, then drain. SIGHUP reloads the config (established sessions keep going; a bad config is refused and logged)'
complete -c oneport -n "__fish_oneport_using_subcommand server; and not __fish_seen_subcommand_from init issue invite revoke identities start recordings help" -f -a "recordings" -d 'List and play recorded `kubectl exec`/`attach` sessions'
complete -c oneport -n "__fish_oneport_using_subcommand server; and not __fish_seen_subcommand_from init issue invite revoke identities start recordings help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from init" -l dir -d 'Directory for the CA, certificates and config' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from init" -l public-addr -d 'The address clients use, HOST:PORT' -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from init" -l listen -d 'The address to listen on (default: 127.0.0.1 and the public port)' -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from init" -l cluster-name -d 'The cluster name (default: the public host)' -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from init" -l san -d 'Another DNS name or IP for the server certificate (repeatable)' -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from init" -l proxy -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from init" -l identity -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from init" -l ca -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from init" -l force -d 'Replace an existing CA (invalidates every identity it issued)'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from init" -l insecure
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from init" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from init" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from init" -s V -l version -d 'Print version'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from issue" -l dir -d 'The server directory holding the CA' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from issue" -l user -d 'The user (certificate CN)' -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from issue" -l group -d 'A group (certificate O), repeatable' -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from issue" -l ttl -d 'Validity, e.g. 12h, 7d (above 7d you get a warning)' -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from issue" -l out -d 'Where to write the identity file' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from issue" -l proxy -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from issue" -l identity -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from issue" -l ca -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from issue" -l force -d 'Replace an existing --out file'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from issue" -l insecure
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from issue" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from issue" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from issue" -s V -l version -d 'Print version'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from invite" -l dir -d 'The server directory (its server.yaml names the state store)' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from invite" -l user -d 'The user (certificate CN)' -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from invite" -l group -d 'A group (certificate O), repeatable' -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from invite" -l ttl -d 'Validity of each certificate, e.g. 12h' -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from invite" -l renewable-for -d 'How long after enrollment the identity may be renewed, e.g. 30d' -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from invite" -l expires-in -d 'How long the token may be used, e.g. 1h' -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from invite" -l proxy -d 'The proxy address to print in the login command (default: public_addr)' -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from invite" -l identity -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from invite" -l ca -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from invite" -l insecure
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from invite" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from invite" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from invite" -s V -l version -d 'Print version'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from revoke" -l dir -d 'The server directory' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from revoke" -l user -d 'Revoke every identity issued to this user' -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from revoke" -l serial -d 'Revoke the identity with this serial (hex, as `identities ls` shows it)' -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from revoke" -l reason -d 'Why; the user sees it' -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from revoke" -l proxy -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from revoke" -l identity -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from revoke" -l ca -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from revoke" -l insecure
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from revoke" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from revoke" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from revoke" -s V -l version -d 'Print version'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from identities" -l proxy -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from identities" -l identity -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from identities" -l ca -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from identities" -l insecure
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from identities" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from identities" -s h -l help -d 'Print help'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from identities" -s V -l version -d 'Print version'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from identities" -f -a "ls" -d 'List issued identities: serial, user, groups, issued, expires, revoked'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from identities" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from start" -l config -d 'The config file' -r -F
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from start" -l proxy -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from start" -l identity -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from start" -l ca -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from start" -l insecure
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from start" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from start" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from start" -s V -l version -d 'Print version'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from recordings" -l proxy -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from recordings" -l identity -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from recordings" -l ca -r
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from recordings" -l insecure
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from recordings" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from recordings" -s h -l help -d 'Print help'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from recordings" -s V -l version -d 'Print version'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from recordings" -f -a "ls" -d 'List the recordings of every kube cluster\'s recording directory: session id, start (UTC), duration, size, who, where and what'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from recordings" -f -a "play" -d 'Play a recording in the terminal (output only, as the user saw it)'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from recordings" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from help" -f -a "init" -d 'Make a CA, a server certificate for every routed name, and a commented server.yaml in DIR'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from help" -f -a "issue" -d 'Issue an identity file (client certificate CN=user, O=groups, key and CA), written with mode 0600'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from help" -f -a "invite" -d 'Invite a user: prints a one-time token (it pins this cluster\'s CA) and the `oneport login` command to run on the user\'s machine, where the key pair is made. The server keeps only the token\'s hash'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from help" -f -a "revoke" -d 'Revoke identities: every one issued to a user, or one serial. Running servers refuse them within seconds (`state_refresh`), at every connection and renewal'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from help" -f -a "identities" -d 'Identities issued by this cluster'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from help" -f -a "start" -d 'Run the routing server until SIGINT/SIGTERM, then drain. SIGHUP reloads the config (established sessions keep going; a bad config is refused and logged)'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from help" -f -a "recordings" -d 'List and play recorded `kubectl exec`/`attach` sessions'
complete -c oneport -n "__fish_oneport_using_subcommand server; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c oneport -n "__fish_oneport_using_subcommand demo" -l proxy -r
complete -c oneport -n "__fish_oneport_using_subcommand demo" -l identity -r
complete -c oneport -n "__fish_oneport_using_subcommand demo" -l ca -r
complete -c oneport -n "__fish_oneport_using_subcommand demo" -l once -d 'Exit after the round trip instead of serving until Ctrl-C'
complete -c oneport -n "__fish_oneport_using_subcommand demo" -l insecure
complete -c oneport -n "__fish_oneport_using_subcommand demo" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace). RUST_LOG overrides'
complete -c oneport -n "__fish_oneport_using_subcommand demo" -s h -l help -d 'Print help'
complete -c oneport -n "__fish_oneport_using_subcommand demo" -s V -l version -d 'Print version'
complete -c oneport -n "__fish_oneport_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls proxy db ssh config kube kubectl doctor server demo help" -f -a "login" -d 'Log in: with an invite token (a key pair is made here and never leaves this machine), with an identity file, or renew the current identity'
complete -c oneport -n "__fish_oneport_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls proxy db ssh config kube kubectl doctor server demo help" -f -a "logout" -d 'Forget a login profile and its stored identity'
complete -c oneport -n "__fish_oneport_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls proxy db ssh config kube kubectl doctor server demo help" -f -a "status" -d 'Show what the next command will use, and the stored profiles'
complete -c oneport -n "__fish_oneport_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls proxy db ssh config kube kubectl doctor server demo help" -f -a "ls" -d 'List the resources the proxy offers to you, optionally of one kind'
complete -c oneport -n "__fish_oneport_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls proxy db ssh config kube kubectl doctor server demo help" -f -a "proxy" -d 'Local proxies for client tools'
complete -c oneport -n "__fish_oneport_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls proxy db ssh config kube kubectl doctor server demo help" -f -a "db" -d 'Databases: run psql or mysql through the proxy'
complete -c oneport -n "__fish_oneport_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls proxy db ssh config kube kubectl doctor server demo help" -f -a "ssh" -d 'Run the system ssh to a node through the proxy; ssh\'s exit code is ours'
complete -c oneport -n "__fish_oneport_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls proxy db ssh config kube kubectl doctor server demo help" -f -a "config" -d 'Print configuration snippets for client tools'
complete -c oneport -n "__fish_oneport_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls proxy db ssh config kube kubectl doctor server demo help" -f -a "kube" -d 'Kubernetes: kubeconfig entries for kubectl, and its credentials'
complete -c oneport -n "__fish_oneport_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls proxy db ssh config kube kubectl doctor server demo help" -f -a "kubectl" -d 'Run the system kubectl against a kube cluster through the proxy, with a throwaway kubeconfig (your own is not touched); kubectl\'s exit code is ours'
complete -c oneport -n "__fish_oneport_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls proxy db ssh config kube kubectl doctor server demo help" -f -a "doctor" -d 'Walk the path to the proxy layer by layer and say where it breaks'
complete -c oneport -n "__fish_oneport_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls proxy db ssh config kube kubectl doctor server demo help" -f -a "server" -d 'Run and administer the routing server'
complete -c oneport -n "__fish_oneport_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls proxy db ssh config kube kubectl doctor server demo help" -f -a "demo" -d 'Start a throwaway server, backend and local proxy on loopback and prove a round trip through them'
complete -c oneport -n "__fish_oneport_using_subcommand help; and not __fish_seen_subcommand_from login logout status ls proxy db ssh config kube kubectl doctor server demo help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c oneport -n "__fish_oneport_using_subcommand help; and __fish_seen_subcommand_from proxy" -f -a "app" -d 'Serve an app on a loopback port: HTTP apps over http/1.1, TCP apps over teleport-tcp'
complete -c oneport -n "__fish_oneport_using_subcommand help; and __fish_seen_subcommand_from proxy" -f -a "kube" -d 'Serve kube clusters to kubectl on a loopback HTTPS port, with a throwaway CA and kubeconfig; works through layer 7 load balancers, where `kube login` alone cannot'
complete -c oneport -n "__fish_oneport_using_subcommand help; and __fish_seen_subcommand_from proxy" -f -a "db" -d 'Serve a database on a loopback port for GUI and CLI clients'
complete -c oneport -n "__fish_oneport_using_subcommand help; and __fish_seen_subcommand_from proxy" -f -a "ssh" -d 'Relay stdin/stdout to an SSH node: an OpenSSH ProxyCommand. Logs go to stderr; stdout carries nothing but SSH'
complete -c oneport -n "__fish_oneport_using_subcommand help; and __fish_seen_subcommand_from db" -f -a "connect" -d 'Run psql or mysql against a database through a local proxy'
complete -c oneport -n "__fish_oneport_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "ssh" -d 'Print an ssh_config block that sends `ssh USER@NODE.<cluster>` through the proxy (for the login profile, or the --proxy/--identity given here)'
complete -c oneport -n "__fish_oneport_using_subcommand help; and __fish_seen_subcommand_from kube" -f -a "login" -d 'Add (or update) a kube cluster in the kubeconfig kubectl uses and switch to it; kubectl then reaches the cluster through the proxy, routed by SNI'
complete -c oneport -n "__fish_oneport_using_subcommand help; and __fish_seen_subcommand_from kube" -f -a "credentials" -d 'Print the ExecCredential (client certificate, key, expiry) kubectl\'s exec plugin reads. `kube login` configures kubectl to run it; no network is used'
complete -c oneport -n "__fish_oneport_using_subcommand help; and __fish_seen_subcommand_from server" -f -a "init" -d 'Make a CA, a server certificate for every routed name, and a commented server.yaml in DIR'
complete -c oneport -n "__fish_oneport_using_subcommand help; and __fish_seen_subcommand_from server" -f -a "issue" -d 'Issue an identity file (client certificate CN=user, O=groups, key and CA), written with mode 0600'
complete -c oneport -n "__fish_oneport_using_subcommand help; and __fish_seen_subcommand_from server" -f -a "invite" -d 'Invite a user: prints a one-time token (it pins this cluster\'s CA) and the `oneport login` command to run on the user\'s machine, where the key pair is made. The server keeps only the token\'s hash'
complete -c oneport -n "__fish_oneport_using_subcommand help; and __fish_seen_subcommand_from server" -f -a "revoke" -d 'Revoke identities: every one issued to a user, or one serial. Running servers refuse them within seconds (`state_refresh`), at every connection and renewal'
complete -c oneport -n "__fish_oneport_using_subcommand help; and __fish_seen_subcommand_from server" -f -a "identities" -d 'Identities issued by this cluster'
complete -c oneport -n "__fish_oneport_using_subcommand help; and __fish_seen_subcommand_from server" -f -a "start" -d 'Run the routing server until SIGINT/SIGTERM, then drain. SIGHUP reloads the config (established sessions keep going; a bad config is refused and logged)'
complete -c oneport -n "__fish_oneport_using_subcommand help; and __fish_seen_subcommand_from server" -f -a "recordings" -d 'List and play recorded `kubectl exec`/`attach` sessions'

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
