//! Whole-process measurements: commands run alternately (A, B, A, B, ...) so that a change in the machine's load
//! hits both sides alike, wall time taken around the child, peak RSS from `/usr/bin/time`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::stats::Samples;
use crate::Result;

/// A command with its environment and stdin; the environment is the whole environment (nothing inherited).
#[derive(Debug, Clone)]
pub struct Cmd {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub dir: Option<PathBuf>,
    pub stdin: Option<Vec<u8>>,
}

impl Cmd {
    pub fn new(program: impl Into<PathBuf>, args: &[&str], env: &[(String, String)]) -> Self {
        Self {
            program: program.into(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env: env.to_vec(),
            dir: None,
            stdin: None,
        }
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    pub fn in_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    fn command(&self, wrapper: Option<&[String]>) -> Command {
        let mut c = match wrapper {
            Some(w) => {
                let mut c = Command::new(&w[0]);
                c.args(&w[1..]).arg(&self.program);
                c
            }
            None => Command::new(&self.program),
        };
        c.args(&self.args).env_clear().envs(self.env.iter().cloned());
        if let Some(dir) = &self.dir {
            c.current_dir(dir);
        }
        c.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        c
    }

    fn spawn_and_wait(&self, wrapper: Option<&[String]>) -> Result<()> {
        let mut child = self
            .command(wrapper)
            .spawn()
            .map_err(|e| format!("{}: {e}", self.program.display()))?;
        if let (Some(bytes), Some(mut stdin)) = (&self.stdin, child.stdin.take()) {
            stdin.write_all(bytes)?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            return Err(format!(
                "{} {} failed ({}): {}{}",
                self.program.display(),
                self.args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(())
    }

    /// One run's wall time in milliseconds, the child started and reaped directly.
    pub fn wall_ms(&self) -> Result<f64> {
        let started = Instant::now();
        self.spawn_and_wait(None)?;
        Ok(started.elapsed().as_secs_f64() * 1e3)
    }

    /// One run's peak resident set in MiB, as `/usr/bin/time` reports it (the kernel's ru_maxrss).
    pub fn peak_rss_mib(&self) -> Result<f64> {
        let report = tempfile::NamedTempFile::new()?;
        let wrapper = [
            "/usr/bin/time".to_owned(),
            "-f".to_owned(),
            "%M".to_owned(),
            "-o".to_owned(),
            report.path().display().to_string(),
        ];
        self.spawn_and_wait(Some(&wrapper))?;
        let kib: f64 = std::fs::read_to_string(report.path())?
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .parse()
            .map_err(|e| format!("/usr/bin/time printed no peak RSS: {e}"))?;
        Ok(kib / 1024.0)
    }
}

/// Runs each command `runs` times, alternating between them, after one untimed warm-up run of each; the wall
/// times in milliseconds, in the order of `commands`.
pub fn alternate(commands: &[&Cmd], runs: usize) -> Result<Vec<Samples>> {
    for c in commands {
        c.wall_ms()?;
    }
    let mut samples = vec![Samples::default(); commands.len()];
    for _ in 0..runs {
        for (c, s) in commands.iter().zip(samples.iter_mut()) {
            s.push(c.wall_ms()?);
        }
    }
    Ok(samples)
}

/// Peak RSS of each command over `runs` alternating runs, in MiB.
pub fn alternate_rss(commands: &[&Cmd], runs: usize) -> Result<Vec<Samples>> {
    let mut samples = vec![Samples::default(); commands.len()];
    for _ in 0..runs {
        for (c, s) in commands.iter().zip(samples.iter_mut()) {
            s.push(c.peak_rss_mib()?);
        }
    }
    Ok(samples)
}

/// VmRSS or VmHWM of a process in MiB, from /proc.
pub fn proc_status_mib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kib| kib / 1024.0)
}

/// A process's user + system CPU time (fields 14 and 15 of /proc/{pid}/stat, in clock ticks of 1/100 s, the value
/// Linux has used on every architecture we build for); `pid` may be "self".
pub fn cpu_seconds(pid: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; the fields after it start past its closing parenthesis.
    let after_name = stat.rsplit_once(')').ok_or("malformed /proc/PID/stat")?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks =
        |i: usize| -> Result<f64> { Ok(fields.get(i).ok_or("short /proc/PID/stat")?.parse::<f64>()?) };
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

/// The bytes a process has passed to write-like system calls (`wchar` of /proc/{pid}/io): for the gateway, its
/// audit database's WAL frames, whatever later reaches the disk.
pub fn written_bytes(pid: u32) -> Result<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io"))?;
    Ok(io
        .lines()
        .find_map(|l| l.strip_prefix("wchar:"))
        .ok_or("no wchar in /proc/PID/io")?
        .trim()
        .parse()?)
}
