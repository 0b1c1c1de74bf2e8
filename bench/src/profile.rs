//! A CPU profile of the gateway while a benchmark runs: `perf record` on its process, reported by shared object and
//! by symbol. Knows nothing of the benchmarks themselves.

use std::process::{Child, Command, Stdio};

use crate::setup::run;
use crate::Result;

/// A CPU profile of the gateway (perf record, software cpu-clock event, so it works in VMs without PMU access).
#[derive(Debug)]
pub struct Profile {
    child: Child,
    data: tempfile::TempDir,
}

impl Profile {
    pub fn start(pid: u32, seconds: f64) -> Result<Self> {
        let data = tempfile::tempdir()?;
        let child = Command::new("perf")
            .args(["record", "-e", "cpu-clock", "-F", "999", "-g", "-o"])
            .arg(data.path().join("perf.data"))
            .args(["-p", &pid.to_string(), "--", "sleep", &format!("{seconds:.0}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("perf: {e} (install linux-perf)"))?;
        Ok(Self { child, data })
    }

    /// Where the gateway's CPU time went, by shared object and by symbol, as a markdown note.
    pub fn finish(mut self) -> Result<String> {
        self.child.wait()?;
        let report = |sort: &str| {
            run(Command::new("perf")
                .args([
                    "report",
                    "--stdio",
                    "--no-children",
                    "--percent-limit",
                    "2",
                    "--sort",
                    sort,
                    "-g",
                    "none",
                    "-i",
                ])
                .arg(self.data.path().join("perf.data")))
        };
        let pick = |text: String| {
            text.lines()
                .filter(|l| l.trim_start().chars().next().is_some_and(|c| c.is_ascii_digit()))
                .take(12)
                .map(|l| format!("    {}", l.trim()))
                .collect::<Vec<_>>()
                .join("\n")
        };
        Ok(format!(
            "Gateway CPU profile during the 1,000 signs/s run (perf, cpu-clock), by shared object:\n\n{}\n\nby symbol:\n\n{}",
            pick(report("dso")?),
            pick(report("dso,sym")?)
        ))
    }
}
