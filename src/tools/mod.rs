//! Glue for the client programs oneport drives, with no sockets: OpenSSH's
//! ProxyCommand target and `ssh_config` block ([`ssh`]), database client settings
//! and command lines ([`db`]), kubectl's kubeconfig and exec credentials ([`kube`]),
//! and child processes ([`process`]).

pub mod db;
pub mod kube;
pub mod process;
pub mod ssh;
