//! Lease owner ids, and telling whether the process behind one is gone.
//!
//! An owner id names the host and the process: `host:pid1234-<nanos>-<n>`. When a lease is
//! held by a process of this host that no longer runs (a `kill -9`, a crash), waiting for the
//! lease to expire would block every run for the whole lease time; the engine takes it over
//! at once instead. A holder on another host, or one whose liveness cannot be told, is waited
//! for as before.

use std::sync::atomic::{AtomicU64, Ordering};

/// A new owner id for this process.
pub(crate) fn default_owner() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{}:pid{}-{nanos:x}-{}",
        host().unwrap_or_default(),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// The host and process id an owner id names, when it is one of ours.
fn parse(owner: &str) -> Option<(&str, u32)> {
    let (host, rest) = owner.rsplit_once(':')?;
    let pid = rest.strip_prefix("pid")?.split('-').next()?;
    Some((host, pid.parse().ok()?))
}

/// Whether `owner` is a process of this host that has ended. False whenever that cannot be
/// told for sure: another host, an id of another form, no `/proc`.
pub(crate) fn is_dead_here(owner: &str) -> bool {
    let Some((owner_host, pid)) = parse(owner) else {
        return false;
    };
    match host() {
        Some(h) if !h.is_empty() && h == owner_host => process_ended(pid),
        _ => false,
    }
}

/// The host name, where the system tells it without a call into libc.
fn host() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    Some(name.trim().to_owned())
}

/// Whether no process `pid` runs. A reused pid reads as alive: the lease is then waited for,
/// which is safe.
fn process_ended(pid: u32) -> bool {
    pid != std::process::id()
        && std::path::Path::new("/proc/self").exists()
        && !std::path::Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_ids_name_this_host_and_process() {
        let id = default_owner();
        let (h, pid) = parse(&id).unwrap();
        assert_eq!((h, pid), (host().unwrap().as_str(), std::process::id()));
        assert!(!is_dead_here(&id), "this process runs");
    }

    #[test]
    fn an_ended_process_of_this_host_is_dead_others_are_not_told() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let here = host().unwrap();
        assert!(is_dead_here(&format!("{here}:pid{pid}-1f-0")));
        // Another host, the old form without a host, a name someone chose: never taken over.
        assert!(!is_dead_here(&format!("{here}-elsewhere:pid{pid}-1f-0")));
        assert!(!is_dead_here(&format!("pid{pid}-1f-0")));
        assert!(!is_dead_here("worker-1"));
        assert!(!is_dead_here(&format!("{here}:pidx-1f-0")));
    }
}
