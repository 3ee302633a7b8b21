//! The open-files limit: raise the soft limit to the hard one at start, and keep
//! `max_connections` within what the descriptors allow. Each proxied connection
//! holds two descriptors (the client's socket and the backend's), and the process
//! needs a few more of its own (listener, log and config files, kube upstreams).

/// Descriptors kept for the process itself (listener, files, kube pool, runtime).
pub const RESERVED: u64 = 100;

/// The open-files limits after [`raise`]: soft (in force) and hard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The soft limit before raising.
    pub before: u64,
    /// The soft limit in force.
    pub soft: u64,
    /// The hard limit.
    pub hard: u64,
}

/// Raises the soft open-files limit to the hard limit (Unix; `None` elsewhere or
/// when the limits cannot be read).
pub fn raise() -> Option<Limits> {
    #[cfg(unix)]
    {
        let (before, hard) = rlimit::Resource::NOFILE.get().ok()?;
        let soft = rlimit::increase_nofile_limit(hard).unwrap_or(before);
        Some(Limits { before, soft, hard })
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The connections `soft` descriptors carry: two each, after [`RESERVED`] (pure).
pub fn connections_for(soft: u64) -> usize {
    usize::try_from(soft.saturating_sub(RESERVED) / 2).unwrap_or(usize::MAX).max(1)
}

/// `max_connections` capped to what `soft` descriptors carry: the value to use, and
/// whether it was lowered (pure).
pub fn cap(max_connections: usize, soft: u64) -> (usize, bool) {
    let allowed = connections_for(soft);
    if max_connections > allowed {
        (allowed, true)
    } else {
        (max_connections, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_descriptors_per_connection_after_the_reserve() {
        assert_eq!(connections_for(1024), 462);
        assert_eq!(connections_for(20_000), 9950);
        assert_eq!(connections_for(50), 1, "never zero");
        assert_eq!(cap(10_000, 1024), (462, true));
        assert_eq!(cap(100, 1024), (100, false));
        assert_eq!(cap(9950, 20_000), (9950, false));
    }

    #[test]
    fn raise_reaches_the_hard_limit() {
        let l = raise().expect("limits readable");
        assert!(l.soft >= l.before, "{l:?}");
        #[cfg(target_os = "linux")]
        assert_eq!(l.soft, l.hard, "{l:?}");
    }
}
