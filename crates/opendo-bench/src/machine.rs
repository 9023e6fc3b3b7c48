//! What the machine itself did during a measurement. A virtual machine's CPUs stop whenever its
//! host runs something else on theirs ("steal" time): other guests, or the host's handling of
//! this machine's own disk I/O. That slows the servers and the load generator alike, and explains
//! runs far slower than the usual ones; reporting it lets a reader tell such a run from a change
//! in the code.

/// The machine's cumulative CPU time, from the first line of `/proc/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimes {
    stolen: u64,
    total: u64,
}

impl CpuTimes {
    /// Reads them now; `None` where `/proc/stat` cannot be read or parsed (not Linux).
    pub fn now() -> Option<Self> {
        parse(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    /// The share of the machine's CPU time since `earlier` that its host took, in percent.
    pub fn stolen_percent_since(&self, earlier: &CpuTimes) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total).filter(|&total| total > 0)?;
        let stolen = self.stolen.checked_sub(earlier.stolen)?;
        Some(100.0 * stolen as f64 / total as f64)
    }
}

/// The share of CPU time stolen while `work` ran, in percent, with what `work` returned.
pub fn stolen_during<T>(work: impl FnOnce() -> T) -> (T, Option<f64>) {
    let before = CpuTimes::now();
    let value = work();
    let stolen = CpuTimes::now().zip(before).and_then(|(after, before)| after.stolen_percent_since(&before));
    (value, stolen)
}

fn parse(stat: &str) -> Option<CpuTimes> {
    let mut fields = stat.lines().next()?.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    // user, nice, system, idle, iowait, irq, softirq, steal. The guest columns after them are
    // already counted in user and nice.
    let ticks = fields.take(8).map(str::parse).collect::<Result<Vec<u64>, _>>().ok()?;
    let stolen = *ticks.get(7)?;
    Some(CpuTimes { stolen, total: ticks.iter().sum() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steal_is_a_share_of_all_cpu_time_between_two_readings() {
        let before = parse("cpu  100 0 50 800 10 0 0 40 7 0\ncpu0 1 2 3\n").unwrap();
        let after = parse("cpu  200 0 100 1550 20 0 0 130 9 0\ncpu0 1 2 3\n").unwrap();
        // 1000 ticks went by, 90 of them stolen.
        assert_eq!(after.stolen_percent_since(&before), Some(9.0));
        assert_eq!(after.stolen_percent_since(&after), None, "no time went by");
    }

    #[test]
    fn a_stat_without_a_steal_column_is_not_read() {
        assert_eq!(parse("cpu  100 0 50 800 10 0 0\n"), None);
        assert_eq!(parse("intr 5 6 7 8 9 10 11 12\n"), None);
        assert_eq!(parse(""), None);
    }
}
