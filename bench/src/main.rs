//! `signpath-bench`: our signing paths measured side by side with the local-key paths of the same tools and with
//! the HSM itself, in one run on one machine, printed as one markdown table. Nothing here asserts a time; the
//! goals are printed beside the figures.
//!
//! Every comparison alternates its sides (A, B, A, B, ...) after a warm-up of each, and shows the median with the
//! range. The setup is the end-to-end tests' own: the real gateway (`signpath-gateway init` + `serve`, keys in
//! SoftHSM2), a real docker-registry on loopback, the real notation and cosign.

mod cost;
mod csign;
mod floor;
mod load;
mod p11kit;
mod procs;
mod profile;
mod replicas;
mod setup;
mod sign_before_push;
mod stats;
mod tarball;
mod tsa;

use std::collections::BTreeSet;
use std::fmt::Write as _;

use clap::Parser;

use crate::procs::{alternate, alternate_rss, proc_status_mib, Cmd};
use crate::setup::Bench;
use crate::stats::{ratio, Samples};

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Debug, Parser)]
#[command(
    name = "signpath-bench",
    about = "Benchmarks of the signing paths; prints one markdown table"
)]
enum Cli {
    /// Runs the benchmarks and prints the table.
    Run(RunArgs),
    /// (internal) C_Sign throughput of one module in this process; prints one JSON line.
    #[command(hide = true)]
    Csign(csign::Args),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Timed runs of each side of a whole-process comparison.
    #[arg(long, default_value_t = 15)]
    runs: usize,
    /// Seconds of each throughput and load measurement.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Alternating rounds of each C_Sign throughput pair (the table shows their median).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Only these sections: notation, cosign, csign, load, plugin, memory, tsa, artifacts, replicas, floor (comma
    /// separated; default all).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Also profile: the gateway (perf record, cpu-clock) during the fixed-rate load, and every process during one
    /// more C_Sign run of each path, for where a signature's CPU goes.
    #[arg(long)]
    profile: bool,
}

/// One line of the table.
#[derive(Debug)]
struct Row {
    figure: String,
    ours: String,
    reference: String,
    ratio: String,
    goal: String,
}

fn row(figure: impl Into<String>, ours: String, reference: String, ratio: String, goal: &str) -> Row {
    Row {
        figure: figure.into(),
        ours,
        reference,
        ratio,
        goal: goal.to_owned(),
    }
}

fn main() {
    common::broken_pipe::exit_quietly_on_broken_pipe();
    let result = match Cli::parse() {
        Cli::Run(args) => run(&args),
        Cli::Csign(args) => csign::run(&args),
    };
    if let Err(e) = result {
        eprintln!("signpath-bench: {e}");
        std::process::exit(1);
    }
}

fn run(args: &RunArgs) -> Result<()> {
    let wanted: BTreeSet<&str> = args.only.iter().map(String::as_str).collect();
    let on = |s: &str| wanted.is_empty() || wanted.contains(s);
    eprintln!("signpath-bench: starting the gateway and the registry");
    let bench = Bench::start()?;
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    if on("notation") {
        notation(&bench, args, &mut rows)?;
    }
    if on("cosign") {
        cosign(&bench, args, &mut rows)?;
    }
    let mut direct_rates = Vec::new();
    if on("csign") {
        direct_rates = csign_throughput(&bench, args, &mut rows)?;
        if args.profile {
            notes.push(cost::note(&bench, args)?);
        }
    }
    if on("load") {
        gateway_load(&bench, args, &direct_rates, &mut rows, &mut notes)?;
    }
    if on("plugin") {
        plugin(&bench, args, &mut rows)?;
    }
    if on("memory") {
        memory(&bench, args, &mut rows)?;
    }
    if on("tsa") {
        tsa::figures(&bench.load_target("ec-256")?, args, &mut rows)?;
    }
    if on("artifacts") {
        sign_before_push::figures(&bench, args, &mut rows)?;
    }
    if on("replicas") {
        replicas::figures(&bench.load_target("ec-256")?, args, &mut rows)?;
    }
    if on("floor") {
        floor::figures(&bench, args, &mut rows)?;
    }
    print!("{}", table(&rows));
    for n in notes {
        println!("\n{n}");
    }
    Ok(())
}

fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| Figure | Ours: median (min–max) | Reference: median (min–max) | Ratio | Goal |\n|---|---|---|---|---|\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            r.figure, r.ours, r.reference, r.ratio, r.goal
        );
    }
    out
}

/// 1. `notation sign` through the plugin vs a local key and certificate of the same key spec.
fn notation(bench: &Bench, args: &RunArgs, rows: &mut Vec<Row>) -> Result<()> {
    for (spec, policy) in [("EC-256", "ec-256"), ("RSA-3072", "rsa-3072")] {
        eprintln!("signpath-bench: notation sign, {spec}");
        let ours = bench.notation_sign(&format!("signpath-{policy}"));
        let local = bench.notation_sign(&format!("local-{policy}"));
        let s = alternate(&[&ours, &local], args.runs)?;
        rows.push(row(
            format!("1. `notation sign` {spec}: plugin → gateway vs local key"),
            s[0].show("ms", 1),
            s[1].show("ms", 1),
            ratio(&s[0], &s[1]),
            "≤ 1.10",
        ));
    }
    Ok(())
}

/// 2. `cosign sign` through the module vs a key file vs SoftHSM2 loaded directly, and cosign as released through
///    the KMS plugin (one process per plugin call) vs the module and the key file.
fn cosign(bench: &Bench, args: &RunArgs, rows: &mut Vec<Row>) -> Result<()> {
    eprintln!("signpath-bench: cosign sign, EC-256");
    let ours = bench.cosign_sign_module();
    let file = bench.cosign_sign_key_file()?;
    let softhsm = bench.cosign_sign_softhsm();
    let plugin = bench.cosign_sign_kms_plugin()?;
    let s = alternate(&[&ours, &file, &softhsm, &plugin], args.runs)?;
    rows.push(row(
        "2. `cosign sign` EC-256: module → gateway vs key file",
        s[0].show("ms", 1),
        s[1].show("ms", 1),
        ratio(&s[0], &s[1]),
        "≤ 1.10",
    ));
    rows.push(row(
        "2. `cosign sign` EC-256: module → gateway vs SoftHSM2 module directly",
        s[0].show("ms", 1),
        s[2].show("ms", 1),
        ratio(&s[0], &s[2]),
        "–",
    ));
    rows.push(row(
        "2. `cosign sign` EC-256: KMS plugin → gateway vs key file",
        s[3].show("ms", 1),
        s[1].show("ms", 1),
        ratio(&s[3], &s[1]),
        "–",
    ));
    rows.push(row(
        "2. `cosign sign` EC-256: KMS plugin → gateway vs module → gateway",
        s[3].show("ms", 1),
        s[0].show("ms", 1),
        ratio(&s[3], &s[0]),
        "–",
    ));
    Ok(())
}

/// Figure 3, C_Sign throughput, module → gateway → SoftHSM2 vs SoftHSM2 directly and vs p11-kit's remoting of the
/// same token (p11-kit-client.so → unix socket → `p11-kit server` → SoftHSM2), the three alternating per round.
///
/// Returns the direct EC-256 rates by thread count, the reference for the gateway's own throughput.
fn csign_throughput(bench: &Bench, args: &RunArgs, rows: &mut Vec<Row>) -> Result<Vec<(usize, f64)>> {
    let p11kit = bench.p11kit_server()?;
    let mut direct_ec = Vec::new();
    for (spec, kind, policy) in [("EC-256", "ec", "ec-256"), ("RSA-3072", "rsa", "rsa-3072")] {
        for threads in [1usize, 8, 32] {
            eprintln!("signpath-bench: C_Sign {spec}, {threads} threads");
            let (mut ours, mut direct, mut remote) =
                (Samples::default(), Samples::default(), Samples::default());
            for _ in 0..args.rounds {
                ours.push(bench.csign_module(kind, policy, threads, args.seconds)?.rate());
                remote.push(
                    bench
                        .csign_p11kit(&p11kit, kind, policy, threads, args.seconds)?
                        .rate(),
                );
                direct.push(bench.csign_softhsm(kind, policy, threads, args.seconds)?.rate());
            }
            if kind == "ec" {
                direct_ec.push((threads, direct.median()));
            }
            let label = format!(
                "3. C_Sign {spec}, {threads} thread{}",
                if threads == 1 { "" } else { "s" }
            );
            let (goal_direct, goal_remote) = match (kind, threads) {
                ("ec", 8) => ("–", "≥ 1.0"),
                ("ec", 1) => ("–", "≥ 0.5"),
                ("rsa", 8) => ("≥ 0.9", "–"),
                _ => ("–", "–"),
            };
            rows.push(row(
                format!("{label}: module → gateway → SoftHSM2 vs SoftHSM2"),
                ours.show("signs/s", 0),
                direct.show("signs/s", 0),
                ratio(&ours, &direct),
                goal_direct,
            ));
            rows.push(row(
                format!("{label}: module → gateway → SoftHSM2 vs p11-kit remote → SoftHSM2"),
                ours.show("signs/s", 0),
                remote.show("signs/s", 0),
                ratio(&ours, &remote),
                goal_remote,
            ));
        }
    }
    Ok(direct_ec)
}

/// 4. The gateway under load over TLS: closed loop at fixed concurrency, open loop at 1,000 signs/s.
fn gateway_load(
    bench: &Bench,
    args: &RunArgs,
    direct_rates: &[(usize, f64)],
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) -> Result<()> {
    let target = bench.load_target("ec-256")?;
    for clients in [1usize, 8, 32] {
        eprintln!("signpath-bench: gateway load, {clients} clients");
        // The gateway's own cost per signature, steadier than its rate on a machine whose cores the load
        // generator shares: its CPU time, and what it wrote (the audit database's WAL, the log lines).
        let pid = bench.gateway_pid();
        let (cpu, written) = (procs::cpu_seconds(&pid.to_string())?, procs::written_bytes(pid)?);
        let o = load::closed_loop(&target, clients, args.seconds)?;
        let cpu_ms = (procs::cpu_seconds(&pid.to_string())? - cpu) * 1000.0 / o.signs.max(1) as f64;
        let written_kib = (procs::written_bytes(pid)? - written) as f64 / 1024.0 / o.signs.max(1) as f64;
        let reference = direct_rates.iter().find(|(t, _)| *t == clients).map(|(_, r)| *r);
        rows.push(row(
            format!("4. Gateway EC-256, {clients} client{} (closed loop, TLS): signs/s, p50/p99, gateway CPU and bytes written per signature vs SoftHSM2 C_Sign at {clients} thread{}", if clients == 1 { "" } else { "s" }, if clients == 1 { "" } else { "s" }),
            format!("{:.0} signs/s, p50 {:.2} ms, p99 {:.2} ms, {} errors; {cpu_ms:.2} ms CPU, {written_kib:.1} KiB written", o.rate(), o.p50_ms, o.p99_ms, o.errors),
            reference.map_or("–".into(), |r| format!("{r:.0} signs/s")),
            reference.map_or("–".into(), |r| format!("{:.2}×", o.rate() / r)),
            "–",
        ));
    }
    eprintln!("signpath-bench: gateway load, 1,000 signs/s");
    let profile = args
        .profile
        .then(|| profile::Profile::start(bench.gateway_pid(), args.seconds + 2.0))
        .transpose()?;
    let o = load::open_loop(&target, 1000.0, args.seconds)?;
    rows.push(row(
        "4. Gateway EC-256 at a fixed 1,000 signs/s (open loop, TLS): p50 / p99 / max latency",
        format!(
            "{:.0} signs/s, p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms, {} errors (sender lag p99 {:.2} ms)",
            o.rate(),
            o.p50_ms,
            o.p99_ms,
            o.max_ms,
            o.errors,
            o.sender_lag_p99_ms
        ),
        "–".into(),
        "–".into(),
        "p99 ≤ 2 ms",
    ));
    if let Some(p) = profile {
        notes.push(p.finish()?);
    }
    Ok(())
}

/// 5. The plugin process alone: wall time and peak RSS per command; gateway round trips per `notation sign`.
fn plugin(bench: &Bench, args: &RunArgs, rows: &mut Vec<Row>) -> Result<()> {
    eprintln!("signpath-bench: plugin process");
    let mut commands = bench.plugin_commands()?;
    // The floor: starting any process at all on this machine.
    commands.push(("/bin/true", Cmd::new("/bin/true", &[], &[])));
    let refs: Vec<&Cmd> = commands.iter().map(|(_, c)| c).collect();
    let wall = alternate(&refs, args.runs)?;
    let rss = alternate_rss(&refs, args.runs.min(5))?;
    let (floor_wall, floor_rss) = (&wall[wall.len() - 1], &rss[rss.len() - 1]);
    for (((name, _), w), r) in commands.iter().zip(&wall).zip(&rss).take(commands.len() - 1) {
        let goal = if *name == "get-plugin-metadata" {
            "≤ 2 ms, ≤ 10 MiB"
        } else {
            "–"
        };
        rows.push(row(
            format!("5. Plugin `{name}`: wall time, peak RSS vs starting `/bin/true`"),
            format!("{}, {}", w.show("ms", 2), r.show("MiB", 1)),
            format!("{}, {}", floor_wall.show("ms", 2), floor_rss.show("MiB", 1)),
            ratio(w, floor_wall),
            goal,
        ));
    }
    let (warm, cold) = bench.round_trips_per_notation_sign(args.runs.min(5))?;
    rows.push(row(
        "5. Gateway round trips per `notation sign` (key cached / first sign)",
        format!("{warm:.2} / {cold:.2}"),
        "–".into(),
        "–".into(),
        "1",
    ));
    Ok(())
}

/// 6. Memory: what the module adds to its host process, and the gateway's RSS under load.
fn memory(bench: &Bench, args: &RunArgs, rows: &mut Vec<Row>) -> Result<()> {
    eprintln!("signpath-bench: memory");
    let (mut ours, mut direct) = (Samples::default(), Samples::default());
    for _ in 0..args.rounds {
        let o = bench.csign_module("ec", "ec-256", 8, 1.0)?;
        ours.push(o.rss_after_mib - o.rss_before_mib);
        let d = bench.csign_softhsm("ec", "ec-256", 8, 1.0)?;
        direct.push(d.rss_after_mib - d.rss_before_mib);
    }
    rows.push(row(
        "6. RSS a module adds to its host (8 threads signing) vs SoftHSM2 directly",
        ours.show("MiB", 1),
        direct.show("MiB", 1),
        ratio(&ours, &direct),
        "–",
    ));
    let pid = bench.gateway_pid();
    let before = proc_status_mib(pid, "VmRSS").unwrap_or(f64::NAN);
    let target = bench.load_target("ec-256")?;
    let o = load::closed_loop(&target, 32, args.seconds)?;
    let after = proc_status_mib(pid, "VmRSS").unwrap_or(f64::NAN);
    let peak = proc_status_mib(pid, "VmHWM").unwrap_or(f64::NAN);
    rows.push(row(
        "6. Gateway RSS: idle → after 32 clients (peak)",
        format!(
            "{before:.1} MiB → {after:.1} MiB (peak {peak:.1} MiB) after {} signs",
            o.signs
        ),
        "–".into(),
        "–".into(),
        "–",
    ));
    Ok(())
}
