//! Figure 8: sign before push, SignPath's file-based flow. (a) `signpath-oci submit` of a stripped tarball (the
//! upload, the gateway checking the layout and making the Notary JWS signature, the signed tarball downloaded)
//! against `signpath-oci sign` of the same tarball (one SignHash round trip, the envelope made on the client):
//! whole processes, alternating, each on a fresh copy. The goal: about one hash signature plus the upload.
//! (b) A 1 GiB unstripped tarball submitted to a gateway of its own, fresh, so its peak RSS (VmHWM) is this
//! request's: the artifact must be streamed to and from disk, never held whole.

use std::path::Path;
use std::time::Instant;

use e2e_tests::gateway::Gateway;
use e2e_tests::tools;

use crate::procs::{alternate, proc_status_mib, Cmd};
use crate::setup::Bench;
use crate::stats::ratio;
use crate::{row, tarball, Result, Row, RunArgs};

const IMAGE: &str = "registry.example/bench/app:1.0";
const KEY: &str = "demo/ec-256";

pub fn figures(bench: &Bench, args: &RunArgs, rows: &mut Vec<Row>) -> Result<()> {
    let oci = tools::release_artifact("signpath-oci");
    if !oci.is_file() {
        return Err(format!("{} not found; build the workspace first", oci.display()).into());
    }
    let work = tempfile::Builder::new().prefix("signpath-bench-oci-").tempdir()?;
    let dir = work.path();
    eprintln!("signpath-bench: sign before push, stripped tarball");
    let stripped = dir.join("stripped.tar");
    tarball::write(&stripped, IMAGE, 32 << 20, dir)?;
    let oci_str = oci.display().to_string();
    let strip = |out: &Path| -> Result<()> {
        let status = std::process::Command::new(&oci)
            .args(["strip"])
            .arg(&stripped)
            .args(["--reference", IMAGE, "--directory"])
            .arg(out)
            .stdout(std::process::Stdio::null())
            .status()?;
        if !status.success() {
            return Err("signpath-oci strip failed".into());
        }
        Ok(())
    };
    strip(&dir.join("layers"))?;
    let stripped_size = std::fs::metadata(&stripped)?.len();

    // Both sides copy the tarball first (sign writes into it), through sh with a minimal PATH.
    let mut env = bench.gateway_env();
    env.push(("PATH".into(), "/usr/bin:/bin".into()));
    let q = |p: &Path| format!("'{}'", p.display());
    let submit = Cmd::new(
        "/bin/sh",
        &[
            "-c",
            &format!(
                "cp {s} {a} && exec '{oci_str}' submit {a} --key {KEY} --output {o} 2>/dev/null",
                s = q(&stripped),
                a = q(&dir.join("a.tar")),
                o = q(&dir.join("a-signed.tar"))
            ),
        ],
        &env,
    );
    let sign = Cmd::new(
        "/bin/sh",
        &[
            "-c",
            &format!(
                "cp {s} {b} && exec '{oci_str}' sign {b} --reference {IMAGE} --key {KEY} >/dev/null",
                s = q(&stripped),
                b = q(&dir.join("b.tar"))
            ),
        ],
        &env,
    );
    let s = alternate(&[&submit, &sign], args.runs)?;
    rows.push(row(
        format!(
            "8. Sign before push: `signpath-oci submit` of a stripped tarball ({:.0} KiB; upload, JWS on the gateway, download) vs `signpath-oci sign` (one SignHash)",
            stripped_size as f64 / 1024.0
        ),
        s[0].show("ms", 1),
        s[1].show("ms", 1),
        ratio(&s[0], &s[1]),
        "≈ 1 hash signature + upload",
    ));

    eprintln!("signpath-bench: sign before push, 1 GiB tarball");
    let big = dir.join("big.tar");
    tarball::write(&big, IMAGE, 1 << 30, dir)?;
    let big_size = std::fs::metadata(&big)?.len();
    let gateway = Gateway::start();
    let pid = gateway.pid();
    let idle = proc_status_mib(pid, "VmHWM").unwrap_or(f64::NAN);
    let started = Instant::now();
    let out = std::process::Command::new(&oci)
        .arg("submit")
        .arg(&big)
        .args(["--key", KEY, "--output"])
        .arg(dir.join("big-signed.tar"))
        .env_clear()
        .envs(gateway.env_vars())
        .output()?;
    let seconds = started.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!(
            "submitting the 1 GiB tarball failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let peak = proc_status_mib(pid, "VmHWM").unwrap_or(f64::NAN);
    let signed_size = std::fs::metadata(dir.join("big-signed.tar"))?.len();
    rows.push(row(
        "8. Sign before push: a 1 GiB unstripped tarball submitted: gateway peak RSS (fresh gateway), time for upload + sign + download",
        format!(
            "peak {peak:.1} MiB (idle {idle:.1} MiB) for {:.2} GiB in, {:.2} GiB out, {seconds:.1} s ({:.0} MiB of tarball per s)",
            big_size as f64 / (1u64 << 30) as f64,
            signed_size as f64 / (1u64 << 30) as f64,
            big_size as f64 / (1u64 << 20) as f64 / seconds
        ),
        "–".into(),
        "–".into(),
        "streamed: peak RSS ≪ tarball",
    ));
    drop(gateway);
    Ok(())
}
