//! Reading a process's state, CPU time and memory from `/proc/<pid>/stat` and `/proc/<pid>/status`.

use std::time::Duration;

/// The fields of `/proc/<pid>/stat` the supervisor uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// State letter (`R`, `S`, `T`, `Z`, ...).
    pub state: char,
    /// utime + stime in clock ticks.
    pub cpu_ticks: u64,
}

/// Parses the text of `/proc/<pid>/stat`. The command name is in parentheses and may itself
/// contain spaces and parentheses, so fields are counted after the last `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name: state is field 3 of the man page, utime 14, stime 15.
    let state = fields.first()?.chars().next()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(ProcStat {
        state,
        cpu_ticks: utime.saturating_add(stime),
    })
}

/// Parses `VmRSS` (resident memory) from the text of `/proc/<pid>/status`, in bytes. A zombie has
/// no `VmRSS` line: that reads as 0.
pub fn parse_rss_bytes(text: &str) -> Option<u64> {
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("VmRSS:") {
            let mut parts = rest.split_whitespace();
            let n: u64 = parts.next()?.parse().ok()?;
            return match parts.next() {
                Some("kB") | None => Some(n.saturating_mul(1024)),
                Some(_) => None,
            };
        }
    }
    Some(0)
}

/// Clock ticks per second for `/proc` CPU times, from `sysconf(_SC_CLK_TCK)`; 100 (the value on
/// every Linux build in practice) if it cannot be read.
pub fn clock_ticks_per_sec() -> u64 {
    use nix::unistd::{sysconf, SysconfVar};
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(n)) if n > 0 => u64::try_from(n).unwrap_or(100),
        _ => 100,
    }
}

/// CPU % of one core between two samples `wall` apart.
pub fn cpu_percent(ticks_before: u64, ticks_after: u64, wall: Duration, ticks_per_sec: u64) -> f64 {
    let secs = wall.as_secs_f64();
    if secs <= 0.0 || ticks_per_sec == 0 {
        return 0.0;
    }
    let cpu_secs = ticks_after.saturating_sub(ticks_before) as f64 / ticks_per_sec as f64;
    100.0 * cpu_secs / secs
}

/// Reads `/proc/<pid>/stat`.
pub fn read_stat(pid: u32) -> Result<ProcStat, String> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    parse_stat(&text).ok_or_else(|| format!("{path}: unexpected format"))
}

/// Reads resident memory from `/proc/<pid>/status`.
pub fn read_rss(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    parse_rss_bytes(&text).ok_or_else(|| format!("{path}: unexpected VmRSS line"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let text = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 1 0 12345 1000000 200 18446744073709551615";
        let s = parse_stat(text).expect("parses");
        assert_eq!(s.state, 'S');
        assert_eq!(s.cpu_ticks, 300);
        assert!(parse_stat("garbage").is_none());
        assert!(parse_stat("1 (x) R 1 2").is_none());
    }

    #[test]
    fn parses_rss() {
        let text = "Name:\tx\nVmPeak:\t  2000 kB\nVmRSS:\t    1536 kB\nThreads:\t1\n";
        assert_eq!(parse_rss_bytes(text), Some(1536 * 1024));
        assert_eq!(parse_rss_bytes("Name:\tzombie\n"), Some(0));
        assert_eq!(parse_rss_bytes("VmRSS:\tlots kB\n"), None);
    }

    #[test]
    fn cpu_percent_from_deltas() {
        let p = cpu_percent(100, 150, Duration::from_secs(1), 100);
        assert!((p - 50.0).abs() < 1e-9);
        assert_eq!(cpu_percent(100, 50, Duration::from_secs(1), 100), 0.0);
        assert_eq!(cpu_percent(0, 50, Duration::ZERO, 100), 0.0);
    }

    #[test]
    fn reads_own_process() {
        let pid = std::process::id();
        let s = read_stat(pid).expect("own stat");
        // The main thread of a test binary may be sleeping while a test thread runs.
        assert!(matches!(s.state, 'R' | 'S'), "{}", s.state);
        assert!(read_rss(pid).expect("own rss") > 0);
        assert!(clock_ticks_per_sec() > 0);
    }
}
