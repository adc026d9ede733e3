//! What Linux's /proc says about processes (their group, their start time) and about who
//! listens on a port, and signals to process groups. Elsewhere /proc is absent: every question
//! answers "unknown", and the checks that need it are skipped.

use std::collections::HashSet;
use std::net::Ipv4Addr;

/// A process as /proc/<pid>/stat shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub pgid: i32,
    /// Clock ticks after boot: with the pid, names one process even once the pid is recycled.
    pub start_ticks: u64,
    /// Exited, not yet waited for: it holds nothing and needs no signal.
    pub zombie: bool,
}

/// `pid`'s group and start time; `None` when it does not exist (or /proc is absent).
pub fn stat(pid: i32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
    let fields: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    // Counted from field 3 (the state): field 5 is the group, field 22 the start time.
    Some(ProcStat {
        pgid: fields.get(2)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
        zombie: fields.first() == Some(&"Z") || fields.first() == Some(&"X"),
    })
}

/// This boot's id: start times count from boot, so a record from before a reboot names nobody.
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok().map(|s| s.trim().to_owned())
}

/// The live (not zombie) processes of group `pgid`.
pub fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| stat(pid).is_some_and(|s| s.pgid == pgid && !s.zombie))
        .collect()
}

/// Sends `sig` to process group `group`; true when the group still exists (0 probes).
pub fn signal_group(group: i32, sig: i32) -> bool {
    // SAFETY: kill(2) on a process group; no memory is involved.
    unsafe { libc::kill(-group, sig) == 0 }
}

/// Who holds the listening socket of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortHolder {
    /// Nobody listens there.
    Nobody,
    /// Every listening socket that a connection to 127.0.0.1 can reach belongs to the group.
    Group,
    /// At least one belongs to another process.
    Other,
    /// /proc cannot say (not Linux).
    Unknown,
}

/// Who listens on `port` where a connection to 127.0.0.1 arrives (127.0.0.1, 0.0.0.0, `::` or
/// `::ffff:127.0.0.1`), compared with the sockets open in process group `pgid`.
pub fn port_holder(port: u16, pgid: i32) -> PortHolder {
    let Some(listening) = loopback_listeners(port) else { return PortHolder::Unknown };
    if listening.is_empty() {
        return PortHolder::Nobody;
    }
    let ours: HashSet<u64> = group_members(pgid).into_iter().flat_map(socket_inodes).collect();
    if listening.iter().all(|inode| ours.contains(inode)) { PortHolder::Group } else { PortHolder::Other }
}

/// The socket inodes listening on `port` that a connection to 127.0.0.1 reaches; `None`
/// when /proc/net/tcp cannot be read.
fn loopback_listeners(port: u16) -> Option<Vec<u64>> {
    let v4 = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let v6 = std::fs::read_to_string("/proc/net/tcp6").unwrap_or_default();
    Some(v4.lines().chain(v6.lines()).filter_map(|line| listener(line, port)).collect())
}

/// The inode of one /proc/net/tcp{,6} row when it is a socket listening on `port` where a
/// connection to 127.0.0.1 arrives.
fn listener(line: &str, port: u16) -> Option<u64> {
    let f: Vec<&str> = line.split_whitespace().collect();
    // sl, local_address, rem_address, st, queues, timer, retransmits, uid, timeout, inode.
    let (address, state, inode) = (f.get(1)?, f.get(3)?, f.get(9)?);
    let (ip, p) = address.split_once(':')?;
    if *state != "0A" || u16::from_str_radix(p, 16).ok()? != port {
        return None;
    }
    // The address is printed as native-endian 32-bit words of the network-order bytes.
    let mut octets = Vec::new();
    for word in ip.as_bytes().chunks(8) {
        octets.extend(u32::from_str_radix(std::str::from_utf8(word).ok()?, 16).ok()?.to_ne_bytes());
    }
    let loopback = Ipv4Addr::LOCALHOST.octets();
    let reaches = match octets.as_slice() {
        [a, b, c, d] => [*a, *b, *c, *d] == loopback || [*a, *b, *c, *d] == [0; 4],
        v6 if v6.len() == 16 => {
            v6.iter().all(|&b| b == 0)
                || (v6[..10] == [0; 10] && v6[10..12] == [0xff, 0xff] && v6[12..] == loopback)
        }
        _ => false,
    };
    reaches.then(|| inode.parse().ok()).flatten()
}

/// The inodes of the sockets `pid` has open (none when its fds cannot be read).
fn socket_inodes(pid: i32) -> Vec<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return Vec::new() };
    fds.flatten()
        .filter_map(|fd| {
            let target = std::fs::read_link(fd.path()).ok()?;
            target.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_listener_of_this_process_is_its_groups_and_not_another_groups() {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        // SAFETY: getpgrp(2) reads this process's group.
        let own = unsafe { libc::getpgrp() };
        assert_eq!(port_holder(port, own), PortHolder::Group);
        // A group with no members holds no socket.
        assert_eq!(port_holder(port, i32::MAX), PortHolder::Other);
        drop(socket);
        assert_eq!(port_holder(port, own), PortHolder::Nobody);
        let me = stat(std::process::id() as i32).unwrap();
        assert_eq!(me.pgid, own);
        assert!(!me.zombie);
    }

    #[test]
    fn proc_net_rows_are_read_for_loopback_and_wildcard_listeners_only() {
        let row = |addr: &str, st: &str| {
            format!("0: {addr} 00000000:0000 {st} 00000000:00000000 00:00000000 00000000 1000 0 4242 1")
        };
        let lo = format!("{:08X}:1F90", u32::from_ne_bytes([127, 0, 0, 1]));
        assert_eq!(listener(&row(&lo, "0A"), 8080), Some(4242));
        assert_eq!(listener(&row(&lo, "01"), 8080), None, "established, not listening");
        assert_eq!(listener(&row(&lo, "0A"), 8081), None);
        assert_eq!(listener(&row("00000000:1F90", "0A"), 8080), Some(4242));
        let other = format!("{:08X}:1F90", u32::from_ne_bytes([10, 0, 0, 5]));
        assert_eq!(listener(&row(&other, "0A"), 8080), None);
        assert_eq!(listener(&row(&format!("{}:1F90", "0".repeat(32)), "0A"), 8080), Some(4242));
        let mapped: String = [[0u8, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0xff, 0xff], [127, 0, 0, 1]]
            .iter()
            .map(|w| format!("{:08X}", u32::from_ne_bytes(*w)))
            .collect();
        assert_eq!(listener(&row(&format!("{mapped}:1F90"), "0A"), 8080), Some(4242));
    }
}
