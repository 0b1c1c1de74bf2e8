//! C_Sign throughput of one PKCS#11 module, in a process of its own: `signpath-bench csign ...` loads the module,
//! logs in, finds the key, and lets N threads sign (each on its own session, as a multi-threaded host does) for a
//! fixed time. It prints one JSON line: signatures, seconds, errors, the process's CPU time while the threads
//! signed (the module's own cost to its host, with the loop's), and the process's RSS before the module was
//! loaded and after signing, which is the memory the module adds to its host.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use sha2::Digest;

use crate::procs::proc_status_mib;
use crate::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The PKCS#11 module to load.
    #[arg(long)]
    pub module: String,
    /// The token's label.
    #[arg(long)]
    pub token: String,
    /// The private key's label.
    #[arg(long)]
    pub key: String,
    /// ec (CKM_ECDSA over a SHA-256 digest) or rsa (CKM_RSA_PKCS over a SHA-256 DigestInfo).
    #[arg(long)]
    pub kind: String,
    #[arg(long)]
    pub threads: usize,
    #[arg(long)]
    pub seconds: f64,
    /// The environment variable that holds the PIN (never on the command line).
    #[arg(long, default_value = "BENCH_PKCS11_PIN")]
    pub pin_env: String,
}

/// What one run printed.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub signs: u64,
    pub errors: u64,
    pub seconds: f64,
    pub rss_before_mib: f64,
    pub rss_after_mib: f64,
    /// The process's CPU time (user + system) while the threads signed.
    pub cpu_seconds: f64,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        self.signs as f64 / self.seconds
    }

    /// The signing process's CPU time per signature, in ms.
    pub fn cpu_ms_per_sign(&self) -> f64 {
        self.cpu_seconds * 1000.0 / self.signs as f64
    }

    pub fn parse(line: &str) -> Result<Self> {
        let v: serde_json::Value = serde_json::from_str(line.trim())?;
        let f = |k: &str| {
            v[k].as_f64()
                .ok_or_else(|| format!("csign printed no {k}: {line}"))
        };
        Ok(Self {
            signs: f("signs")? as u64,
            errors: f("errors")? as u64,
            seconds: f("seconds")?,
            rss_before_mib: f("rss_before_mib")?,
            rss_after_mib: f("rss_after_mib")?,
            cpu_seconds: f("cpu_seconds")?,
        })
    }
}

pub fn run(args: &Args) -> Result<()> {
    let own = std::process::id();
    let rss_before = proc_status_mib(own, "VmRSS").unwrap_or(f64::NAN);
    let pin = std::env::var(&args.pin_env).map_err(|_| format!("{} is not set", args.pin_env))?;
    let pkcs11 = Arc::new(Pkcs11::new(&args.module)?);
    pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    let slot = pkcs11
        .get_slots_with_token()?
        .into_iter()
        .find(|s| {
            pkcs11
                .get_token_info(*s)
                .map(|t| t.label().trim() == args.token)
                .unwrap_or(false)
        })
        .ok_or_else(|| format!("no token labelled {}", args.token))?;
    let digest = sha2::Sha256::digest(b"signpath-bench").to_vec();
    let (mechanism, data) = match args.kind.as_str() {
        "ec" => (Mechanism::Ecdsa, digest),
        "rsa" => (
            Mechanism::RsaPkcs,
            common::encoding::encode_digest_info(common::keys::HashAlgorithm::Sha256, &digest),
        ),
        other => return Err(format!("unknown kind {other}").into()),
    };
    // One login for the token (it is shared by every session of the application), then a session per thread.
    let first = pkcs11.open_rw_session(slot)?;
    first.login(UserType::User, Some(&AuthPin::new(pin.into())))?;
    let key = first
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(args.key.as_bytes().to_vec()),
        ])?
        .into_iter()
        .next()
        .ok_or_else(|| format!("no private key labelled {}", args.key))?;
    first.sign(&mechanism, key, &data)?;
    let is_ec = matches!(mechanism, Mechanism::Ecdsa);

    let stop = Arc::new(AtomicBool::new(false));
    let signs = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let cpu_before = process_cpu_seconds()?;
    let workers: Vec<_> = (0..args.threads)
        .map(|_| {
            let (pkcs11, stop, signs, errors) = (pkcs11.clone(), stop.clone(), signs.clone(), errors.clone());
            let data = data.clone();
            std::thread::spawn(move || {
                let mechanism = if is_ec {
                    Mechanism::Ecdsa
                } else {
                    Mechanism::RsaPkcs
                };
                let Ok(session) = pkcs11.open_rw_session(slot) else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                while !stop.load(Ordering::Relaxed) {
                    match session.sign(&mechanism, key, &data) {
                        Ok(_) => signs.fetch_add(1, Ordering::Relaxed),
                        Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(args.seconds));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = process_cpu_seconds()? - cpu_before;
    let rss_after = proc_status_mib(own, "VmRSS").unwrap_or(f64::NAN);
    drop(first);
    println!(
        "{}",
        serde_json::json!({
            "signs": signs.load(Ordering::Relaxed),
            "errors": errors.load(Ordering::Relaxed),
            "seconds": seconds,
            "rss_before_mib": rss_before,
            "rss_after_mib": rss_after,
            "cpu_seconds": cpu_seconds,
        })
    );
    Ok(())
}

/// This process's user + system CPU time.
fn process_cpu_seconds() -> Result<f64> {
    crate::procs::cpu_seconds("self")
}
