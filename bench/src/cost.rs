//! Where one C_Sign's CPU goes, ours against p11-kit's remoting and SoftHSM2 loaded directly (`--profile`): one
//! more run of each path under `perf record -a` (every process on the machine, software cpu-clock, no call graphs),
//! the samples sorted into the parts of a signature's path by thread name, shared object and symbol, and shown as
//! µs of CPU per signature. It tells the parts a goal keeps (the HSM, the durable audit record, the module's check
//! of the signature, the kernel's network and wake-ups) from our own code.
//!
//! Imports the bench's setup and nothing of the gateway; reads perf's report as text.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use crate::csign::Outcome;
use crate::setup::{run, Bench};
use crate::{Result, RunArgs};

/// perf's sampling frequency per CPU: each sample stands for 1/999 s of one CPU.
const HZ: f64 = 999.0;

/// The parts of a signature's path, in the order the note shows them.
const PARTS: [&str; 10] = [
    "HSM: SoftHSM2 and its OpenSSL",
    "Durable audit record: SQLite, and the kernel writing and syncing its WAL, on whichever thread commits; the checkpointer",
    "Kernel workers (block I/O completion, deferred network work)",
    "The module's check of the signature (AWS-LC)",
    "Kernel on the signing path's threads: system calls, loopback TCP or unix socket, wake-ups",
    "Allocation and copies (libc) on the signing path's threads",
    "p11-kit: its client library and server",
    "Our module: HTTP, TLS, JSON, its own logic",
    "Our gateway: HTTP, TLS, JSON, authorization, the audit record, idempotency lookup",
    "Everything else (the benchmark's loop, loader, vDSO, other processes)",
];

/// One column: a path, its rate while profiled, and CPU µs per signature by part.
struct Column {
    title: String,
    rate: f64,
    idle_share: f64,
    us_per_sign: BTreeMap<&'static str, f64>,
}

pub fn note(bench: &Bench, args: &RunArgs) -> Result<String> {
    let p11kit = bench.p11kit_server()?;
    let seconds = args.seconds;
    let mut columns = Vec::new();
    for threads in [1usize, 8] {
        eprintln!("signpath-bench: where the CPU goes, C_Sign EC-256 at {threads} thread(s)");
        let t = if threads == 1 { "1 thread" } else { "8 threads" };
        columns.push(profiled(&format!("ours, EC-256, {t}"), || {
            bench.csign_module("ec", "ec-256", threads, seconds)
        })?);
        columns.push(profiled(&format!("p11-kit, EC-256, {t}"), || {
            bench.csign_p11kit(&p11kit, "ec", "ec-256", threads, seconds)
        })?);
    }
    eprintln!("signpath-bench: where the CPU goes, C_Sign RSA-3072 at 8 threads");
    columns.push(profiled("ours, RSA-3072, 8 threads", || {
        bench.csign_module("rsa", "rsa-3072", 8, seconds)
    })?);
    columns.push(profiled("SoftHSM2 directly, RSA-3072, 8 threads", || {
        bench.csign_softhsm("rsa", "rsa-3072", 8, seconds)
    })?);
    Ok(render(&columns))
}

/// Runs `sign` under `perf record -a` and sorts the samples into [`PARTS`].
fn profiled(title: &str, sign: impl FnOnce() -> Result<Outcome>) -> Result<Column> {
    let data = tempfile::tempdir()?;
    let file = data.path().join("perf.data");
    let perf = Recording::start(&file)?;
    let start = Instant::now();
    let outcome = sign()?;
    let window = start.elapsed().as_secs_f64();
    perf.stop()?;
    let report = run(Command::new("perf")
        .args(["report", "--stdio", "--no-children", "-g", "none"])
        .args([
            "--sort",
            "comm,dso,sym",
            "-F",
            "sample,comm,dso,sym",
            "-t",
            "\t",
            "-i",
        ])
        .arg(&file))?;
    // The signatures made while perf watched: the rate of the signing window over perf's whole window (the process's
    // start, login and exit add a little CPU and some idle time, not signatures).
    let signs = outcome.rate() * window;
    let (mut us_per_sign, mut idle, mut all) = (BTreeMap::new(), 0.0, 0.0);
    for line in report.lines().filter(|l| !l.starts_with('#')) {
        let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
        let [samples, comm, dso, sym] = fields[..] else {
            continue;
        };
        let Ok(samples) = samples.parse::<f64>() else {
            continue;
        };
        all += samples;
        match part(comm, dso, sym) {
            None => idle += samples,
            Some(p) => *us_per_sign.entry(p).or_insert(0.0) += samples * 1e6 / HZ / signs.max(1.0),
        }
    }
    Ok(Column {
        title: title.to_owned(),
        rate: outcome.rate(),
        idle_share: idle / all.max(1.0),
        us_per_sign,
    })
}

/// Which part of the path a sample belongs to; None for an idle CPU.
fn part(comm: &str, dso: &str, sym: &str) -> Option<&'static str> {
    let on_path = comm == "signpath-bench"
        || comm.starts_with("tokio-")
        || comm == "tlog-sequencer"
        || comm.starts_with("p11-kit");
    let kernel = dso.contains("kernel");
    let index = if comm == "swapper" {
        return None;
    } else if ["libsofthsm2.so", "libcrypto.so.3"].contains(&dso) || dso.starts_with("libstdc++") {
        0
    } else if comm.starts_with("audit-") || (on_path && is_audit_write(dso, sym)) {
        1
    } else if comm.starts_with("kworker") || comm.starts_with("ksoftirq") {
        2
    } else if dso == "libsignpath_pkcs11.so" {
        // AWS-LC is linked into the module with its symbols prefixed; its assembly keeps its own names.
        let check = ["aws_lc_", "nistz256", "bn_", "beeu", "rsaz_", "_mont"]
            .iter()
            .any(|s| sym.contains(s));
        if check {
            3
        } else {
            7
        }
    } else if !on_path {
        9
    } else if kernel {
        4
    } else if dso.starts_with("libc.so") {
        5
    } else if dso.contains("p11-kit") {
        6
    } else if dso == "signpath-gateway" {
        8
    } else {
        9
    };
    Some(PARTS[index])
}

/// SQLite's code (bundled into the gateway, its functions keep their C names) and the kernel's work of writing a
/// file and syncing it to the disk. Since a request that finds the audit writer idle commits its record on its own
/// thread, the thread's name no longer tells the audit record's CPU from the request's.
fn is_audit_write(dso: &str, sym: &str) -> bool {
    let sym = sym.trim_start_matches("[k] ").trim_start_matches("[.] ");
    let prefixes: &[&str] = if dso.contains("kernel") {
        &[
            "iowrite",
            "ext4_",
            "mark_buffer_dirty",
            "copy_folio_from_iter",
            "filemap_",
            "__filemap",
            "block_",
            "__block",
            "blk_",
            "virtblk",
            "virtqueue",
            "vring_",
            "folio",
            "__folio",
            "jbd2",
            "generic_perform_write",
            "file_write",
            "submit_bio",
            "bio_",
        ]
    } else if dso == "signpath-gateway" {
        &[
            "sqlite3",
            "rusqlite",
            "wal",
            "pager",
            "pcache",
            "btree",
            "vdbe",
            "yy_",
            "balance",
            "moveTo",
            "releaseMem",
            "unix",
            "fillInCell",
            "insertCell",
            "allocateSpace",
            "getAndInitPage",
            "accessPayload",
        ]
    } else {
        &[]
    };
    prefixes.iter().any(|p| sym.starts_with(p))
}

fn render(columns: &[Column]) -> String {
    let mut out = String::from(
        "Where the CPU of one C_Sign goes (`--profile`: one more run of each path under `perf record -a`, cpu-clock, \
         every process on the machine), µs of CPU per signature:\n\n| Part |",
    );
    for c in columns {
        out.push_str(&format!(" {} |", c.title));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(columns.len()));
    for p in PARTS {
        out.push_str(&format!("\n| {p} |"));
        for c in columns {
            match c.us_per_sign.get(p) {
                Some(us) if *us >= 0.5 => out.push_str(&format!(" {us:.0} |")),
                _ => out.push_str(" – |"),
            }
        }
    }
    out.push_str("\n| **All of it** |");
    for c in columns {
        out.push_str(&format!(" **{:.0}** |", c.us_per_sign.values().sum::<f64>()));
    }
    out.push_str("\n| Rate while profiled; idle share of the two cores |");
    for c in columns {
        out.push_str(&format!(" {:.0}/s; {:.0}% |", c.rate, c.idle_share * 100.0));
    }
    out
}

/// `perf record -a` until stopped.
struct Recording(Child);

impl Recording {
    fn start(file: &Path) -> Result<Self> {
        let child = Command::new("perf")
            .args(["record", "-a", "-e", "cpu-clock", "-F", "999", "-o"])
            .arg(file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("perf: {e} (install linux-perf)"))?;
        // perf opens its events before it samples; give it that moment.
        std::thread::sleep(std::time::Duration::from_millis(300));
        Ok(Self(child))
    }

    /// Stops the recording as Ctrl-C would, so perf writes its data out.
    fn stop(mut self) -> Result<()> {
        run(Command::new("kill").args(["-INT", &self.0.id().to_string()]))?;
        self.0.wait()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_commit_is_counted_as_the_audit_record_on_whichever_thread_runs_it() {
        let kernel = "[kernel.kallsyms]";
        let request = "tokio-rt-worker";
        assert_eq!(
            part(request, "signpath-gateway", "[.] sqlite3VdbeExec"),
            Some(PARTS[1])
        );
        assert_eq!(
            part(request, "signpath-gateway", "[.] walChecksumBytes"),
            Some(PARTS[1])
        );
        assert_eq!(part(request, kernel, "[k] iowrite16"), Some(PARTS[1]));
        assert_eq!(part("audit-writer", "libc.so.6", "[.] malloc"), Some(PARTS[1]));
        // The request's own work stays the request's.
        assert_eq!(
            part(
                request,
                "signpath-gateway",
                "[.] hyper::proto::h1::dispatch::Dispatcher::poll_write"
            ),
            Some(PARTS[8])
        );
        assert_eq!(
            part(request, kernel, "[k] finish_task_switch.isra.0"),
            Some(PARTS[4])
        );
        assert_eq!(part(request, "libc.so.6", "[.] malloc"), Some(PARTS[5]));
        assert_eq!(part("swapper", kernel, "[k] default_idle"), None);
    }
}
