//! Figure 10: what one signature cannot cost less than, and the module's check of each signature.
//!
//! (a) The single-thread floor. A path that keeps its audit record durable before it answers pays at least one
//! small write and an `fdatasync` on the audit database's disk; a remote HSM call pays at least what p11-kit's
//! remoting pays for one C_Sign (a round trip to its server and SoftHSM2's signature), and p11-kit waits for
//! nothing else. Their sum is the floor; our time per signature at one thread is set against it. The three are
//! measured in the same rounds, alternating, so the machine's load hits them alike.
//!
//! (b) The module checks every signature the gateway returns. For ECDSA P-256 and RSA-3072 PKCS#1 v1.5 over a
//! digest: RustCrypto's arithmetic (what the module used) against the check the module now makes
//! (`common::pubkey` with AWS-LC), CPU time of this thread per verification, alternating rounds.
//!
//! Around our run at one thread, two scrapes of the gateway's `/metrics` split its time per signature: the audit
//! record's durable commit (set against the floor's write + `fdatasync`), the HSM's signature (against p11-kit's
//! whole C_Sign), the rest of the gateway's handling, and what is outside it (the module, TLS, loopback, wake-ups).
//!
//! With `SIGNPATH_BENCH_BASELINE_MODULE` set to another build of the module, its CPU per signature (the signing
//! process's) at one thread, and its rate and CPU at 8 threads, are measured in the same rounds beside this
//! build's.
//!
//! This module imports nothing of the gateway; it writes one probe file beside the audit database and removes it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use common::keys::{HashAlgorithm, SignatureScheme};
use common::pubkey::PublicKey;
use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};

use crate::setup::Bench;
use crate::stats::{ratio, Samples};
use crate::{row, Result, Row, RunArgs};

/// Durable appends per round: enough that one slow flush does not decide the mean.
const APPENDS: usize = 200;
/// Verifications per side per round.
const VERIFIES: usize = 2000;
/// A module built from another commit, for an A/B of the module's CPU per signature in the same run.
const BASELINE_MODULE: &str = "SIGNPATH_BENCH_BASELINE_MODULE";

pub fn figures(bench: &Bench, args: &RunArgs, rows: &mut Vec<Row>) -> Result<()> {
    single_thread_floor(bench, args, rows)?;
    if let Some(baseline) = std::env::var_os(BASELINE_MODULE) {
        module_at_8_threads(bench, args, &PathBuf::from(baseline), rows)?;
    }
    verification(args, rows)?;
    rsa_verification(args, rows)
}

/// This build of the module against the baseline at 8 threads, alternating per round: the rate and the signing
/// process's CPU per signature.
fn module_at_8_threads(bench: &Bench, args: &RunArgs, baseline: &Path, rows: &mut Vec<Row>) -> Result<()> {
    let (mut rate, mut baseline_rate) = (Samples::default(), Samples::default());
    let (mut cpu, mut baseline_cpu) = (Samples::default(), Samples::default());
    for round in 0..args.rounds {
        eprintln!(
            "signpath-bench: the module against {}, 8 threads, round {}",
            baseline.display(),
            round + 1
        );
        let ours = bench.csign_module("ec", "ec-256", 8, args.seconds)?;
        let theirs = bench.csign_module_file(baseline, "ec", "ec-256", 8, args.seconds)?;
        rate.push(ours.rate());
        cpu.push(ours.cpu_ms_per_sign());
        baseline_rate.push(theirs.rate());
        baseline_cpu.push(theirs.cpu_ms_per_sign());
    }
    let vs = baseline.display();
    rows.push(row(
        format!("10. C_Sign EC-256, 8 threads: module → gateway → SoftHSM2, this build vs {vs}"),
        rate.show("signs/s", 0),
        baseline_rate.show("signs/s", 0),
        ratio(&rate, &baseline_rate),
        "–",
    ));
    rows.push(row(
        format!("10. C_Sign EC-256, 8 threads: CPU per signature of the signing process, this build vs {vs}"),
        cpu.show("ms", 3),
        baseline_cpu.show("ms", 3),
        ratio(&cpu, &baseline_cpu),
        "–",
    ));
    Ok(())
}

fn single_thread_floor(bench: &Bench, args: &RunArgs, rows: &mut Vec<Row>) -> Result<()> {
    let p11kit = bench.p11kit_server()?;
    // Another build of the module, for an A/B of the module's own CPU in the same rounds.
    let baseline = std::env::var_os(BASELINE_MODULE).map(PathBuf::from);
    let (mut append, mut remote, mut floor, mut ours) = (
        Samples::default(),
        Samples::default(),
        Samples::default(),
        Samples::default(),
    );
    let (mut ours_cpu, mut baseline_cpu) = (Samples::default(), Samples::default());
    let (mut hsm, mut commit, mut handling, mut outside) = (
        Samples::default(),
        Samples::default(),
        Samples::default(),
        Samples::default(),
    );
    for round in 0..args.rounds {
        eprintln!("signpath-bench: single-thread floor, round {}", round + 1);
        let fsync_ms = durable_append_ms(&bench.gateway_dir())?;
        let remote_ms = 1000.0
            / bench
                .csign_p11kit(&p11kit, "ec", "ec-256", 1, args.seconds)?
                .rate();
        let before = bench.gateway_metrics()?;
        let signed = bench.csign_module("ec", "ec-256", 1, args.seconds)?;
        let inside = Inside::between(&before, &bench.gateway_metrics()?)?;
        hsm.push(inside.hsm_ms);
        commit.push(inside.commit_ms);
        handling.push(inside.handling_ms - inside.hsm_ms - inside.commit_ms);
        outside.push(1000.0 / signed.rate() - inside.handling_ms);
        append.push(fsync_ms);
        remote.push(remote_ms);
        floor.push(fsync_ms + remote_ms);
        ours.push(1000.0 / signed.rate());
        ours_cpu.push(signed.cpu_ms_per_sign());
        if let Some(module) = &baseline {
            let signed = bench.csign_module_file(module, "ec", "ec-256", 1, args.seconds)?;
            baseline_cpu.push(signed.cpu_ms_per_sign());
        }
    }
    rows.push(row(
        "10. Single-thread floor: a small write + fdatasync on the audit database's disk",
        append.show("ms", 3),
        "–".into(),
        "–".into(),
        "–",
    ));
    rows.push(row(
        "10. Single-thread floor: one C_Sign EC-256 through p11-kit remote → SoftHSM2",
        remote.show("ms", 3),
        "–".into(),
        "–".into(),
        "–",
    ));
    rows.push(row(
        "10. C_Sign EC-256, 1 thread, time per signature: module → gateway → SoftHSM2 vs the floor (append + p11-kit)",
        ours.show("ms", 3),
        floor.show("ms", 3),
        ratio(&ours, &floor),
        "≤ 1.5",
    ));
    let parts: [(&str, &Samples, Option<&Samples>); 4] = [
        (
            "the audit record's durable commit (the gateway's metric) vs the floor's small write + fdatasync",
            &commit,
            Some(&append),
        ),
        (
            "the HSM's signature in the gateway (its metric) vs p11-kit's whole C_Sign",
            &hsm,
            Some(&remote),
        ),
        (
            "the rest of the gateway's handling, headers to audited answer (authorization, idempotency, the blocking pool, JSON)",
            &handling,
            None,
        ),
        (
            "outside the gateway's handling (the module and its check, HTTP and TLS both ends, loopback, wake-ups)",
            &outside,
            None,
        ),
    ];
    for (what, part, reference) in parts {
        rows.push(row(
            format!("10. C_Sign EC-256, 1 thread, where the time per signature goes: {what}"),
            part.show("ms", 3),
            reference.map_or_else(|| "–".into(), |r| r.show("ms", 3)),
            reference.map_or_else(|| "–".into(), |r| ratio(part, r)),
            "–",
        ));
    }
    let (reference, vs) = match &baseline {
        Some(module) => (baseline_cpu.show("ms", 3), format!("vs {}", module.display())),
        None => ("–".into(), format!("(set {BASELINE_MODULE} for an A/B)")),
    };
    rows.push(row(
        format!(
            "10. C_Sign EC-256, 1 thread: CPU per signature of the signing process (the module's side) {vs}"
        ),
        ours_cpu.show("ms", 3),
        reference,
        if baseline.is_some() {
            ratio(&ours_cpu, &baseline_cpu)
        } else {
            "–".into()
        },
        "–",
    ));
    Ok(())
}

/// What the gateway's own metrics say one SignHash cost inside it, between two scrapes of `/metrics` around a run
/// of C_Sign (nothing else is sent to the gateway meanwhile): means over the run, in ms.
#[derive(Debug)]
struct Inside {
    /// `request_duration_seconds` of the SignHash route: from the request's headers to its audited answer.
    handling_ms: f64,
    /// `hsm_signature_duration_seconds`: the HSM's C_SignInit and C_Sign.
    hsm_ms: f64,
    /// `audit_commit_duration_seconds`: the audit record's durable commit.
    commit_ms: f64,
}

impl Inside {
    fn between(before: &str, after: &str) -> Result<Self> {
        let mean_ms = |histogram: &str, labels: &str| -> Result<f64> {
            // A labelled series appears with its first observation: absent is zero.
            let value = |text: &str, suffix: &str| -> Result<f64> {
                let name = format!("signpath_gateway_{histogram}_{suffix}{labels} ");
                match text.lines().find_map(|line| line.strip_prefix(name.as_str())) {
                    None => Ok(0.0),
                    Some(v) => Ok(v.trim().parse::<f64>().map_err(|e| format!("{name}{v}: {e}"))?),
                }
            };
            let count = value(after, "count")? - value(before, "count")?;
            if count < 1.0 {
                return Err(format!("the gateway observed no {histogram}{labels} during the run").into());
            }
            Ok((value(after, "sum")? - value(before, "sum")?) * 1000.0 / count)
        };
        Ok(Self {
            handling_ms: mean_ms(
                "request_duration_seconds",
                "{route=\"/v1/{org}/signingrequests/signhash\"}",
            )?,
            hsm_ms: mean_ms("hsm_signature_duration_seconds", "")?,
            commit_ms: mean_ms("audit_commit_duration_seconds", "")?,
        })
    }
}

/// The mean time of one small write and `fdatasync` to a file beside the audit database. The file is written
/// out and synced first and then overwritten in place, as SQLite's WAL is between checkpoints: an append that grew
/// the file would also wait for the file system's journal to record the new size, which a WAL commit does not.
fn durable_append_ms(dir: &Path) -> Result<f64> {
    use std::os::unix::fs::FileExt as _;
    let path = dir.join("bench-durable-append.probe");
    let record = [b'x'; 256];
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)?;
    file.write_all_at(&vec![0u8; record.len() * APPENDS], 0)?;
    file.sync_all()?;
    let start = Instant::now();
    for i in 0..APPENDS {
        file.write_all_at(&record, (i * record.len()) as u64)?;
        file.sync_data()?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(elapsed * 1000.0 / APPENDS as f64)
}

fn verification(args: &RunArgs, rows: &mut Vec<Row>) -> Result<()> {
    eprintln!("signpath-bench: ECDSA P-256 verification over a digest");
    let signing = p256::ecdsa::SigningKey::from_slice(&[0x5a; 32])?;
    let verifying = *signing.verifying_key();
    let digest = [0x42u8; 32];
    let signature: p256::ecdsa::Signature = signing.sign_prehash(&digest)?;
    let raw = signature.to_bytes();
    let key = PublicKey::P256(verifying);
    rows.push(module_against_rust_crypto(
        "an ECDSA P-256",
        args,
        VERIFIES,
        || {
            key.verify_digest(SignatureScheme::EcdsaIeee, HashAlgorithm::Sha256, &digest, &raw)
                .is_ok()
        },
        || verifying.verify_prehash(&digest, &signature).is_ok(),
    )?);
    Ok(())
}

fn rsa_verification(args: &RunArgs, rows: &mut Vec<Row>) -> Result<()> {
    use rsa::{Pkcs1v15Sign, RsaPrivateKey};
    eprintln!("signpath-bench: RSA-3072 PKCS#1 v1.5 verification over a digest");
    let private = RsaPrivateKey::new(&mut rand_core::OsRng, 3072)?;
    let public = private.to_public_key();
    let digest = HashAlgorithm::Sha256.digest(b"bench");
    let signature = private.sign(Pkcs1v15Sign::new::<sha2::Sha256>(), &digest)?;
    let key = PublicKey::Rsa(public.clone());
    rows.push(module_against_rust_crypto(
        "an RSA-3072 PKCS#1 v1.5",
        args,
        VERIFIES / 4,
        || {
            key.verify_digest(
                SignatureScheme::RsaPkcs1,
                HashAlgorithm::Sha256,
                &digest,
                &signature,
            )
            .is_ok()
        },
        || {
            public
                .verify(Pkcs1v15Sign::new::<sha2::Sha256>(), &digest, &signature)
                .is_ok()
        },
    )?);
    Ok(())
}

/// The module's check (`module`) against RustCrypto's (`rust_crypto`) of `what` signature, `n` verifications each
/// per round, alternating: the row of figure 10(b).
fn module_against_rust_crypto(
    what: &str,
    args: &RunArgs,
    n: usize,
    module: impl Fn() -> bool,
    rust_crypto: impl Fn() -> bool,
) -> Result<Row> {
    let (mut theirs, mut ours) = (Samples::default(), Samples::default());
    for _ in 0..args.rounds.max(3) {
        theirs.push(cpu_us_per(n, &rust_crypto)?);
        ours.push(cpu_us_per(n, &module)?);
    }
    Ok(row(
        format!("10. The module's check of {what} signature over a digest, CPU per verification: AWS-LC (the module's) vs RustCrypto"),
        ours.show("µs", 0),
        theirs.show("µs", 0),
        ratio(&ours, &theirs),
        "–",
    ))
}

/// This thread's CPU time per call of `verify`, in µs, over `n` calls, each of which must succeed.
fn cpu_us_per(n: usize, verify: impl Fn() -> bool) -> Result<f64> {
    let before = thread_cpu_ns()?;
    for _ in 0..n {
        if !verify() {
            return Err("a good signature did not verify".into());
        }
    }
    Ok((thread_cpu_ns()? - before) as f64 / 1000.0 / n as f64)
}

/// Nanoseconds this thread has run on a CPU (the first field of /proc/thread-self/schedstat).
fn thread_cpu_ns() -> Result<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat")?;
    Ok(stat
        .split_whitespace()
        .next()
        .ok_or("empty /proc/thread-self/schedstat")?
        .parse()?)
}
