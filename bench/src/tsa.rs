//! Figure 7: the gateway as an RFC 3161 time-stamping authority. Timestamp queries (`POST /timestamp`, a distinct
//! SHA-256 imprint each, nonce and `certReq` as notation sends them; every reply parsed and checked granted) in a
//! closed loop, beside SignHash at the same concurrency on the same gateway, the two alternating per round. Both
//! make one HSM signature and one durable audit record per request; a timestamp token also carries the TSA's
//! certificate and is a CMS SignedData, where SignHash answers a bare signature.

use crate::load::{self, Target};
use crate::stats::Samples;
use crate::{row, Result, Row, RunArgs};

pub fn figures(sign_hash: &Target, args: &RunArgs, rows: &mut Vec<Row>) -> Result<()> {
    let timestamps = sign_hash.timestamps();
    for clients in [1usize, 8] {
        eprintln!("signpath-bench: timestamps vs SignHash, {clients} clients");
        let (mut ts_rate, mut ts_p99, mut sh_rate, mut sh_p99) = (
            Samples::default(),
            Samples::default(),
            Samples::default(),
            Samples::default(),
        );
        let mut errors = 0;
        for _ in 0..args.rounds {
            let t = load::closed_loop(&timestamps, clients, args.seconds)?;
            let s = load::closed_loop(sign_hash, clients, args.seconds)?;
            errors += t.errors + s.errors;
            ts_rate.push(t.rate());
            ts_p99.push(t.p99_ms);
            sh_rate.push(s.rate());
            sh_p99.push(s.p99_ms);
        }
        let plural = if clients == 1 { "" } else { "s" };
        rows.push(row(
            format!("7. RFC 3161 timestamps, {clients} client{plural} (closed loop, TLS): timestamps/s and p99 vs SignHash EC-256"),
            format!("{}, p99 {}", ts_rate.show("timestamps/s", 0), ts_p99.show("ms", 2)),
            format!("{}, p99 {}", sh_rate.show("signs/s", 0), sh_p99.show("ms", 2)),
            format!("{:.2}×{}", ts_rate.median() / sh_rate.median(), if errors > 0 { format!(" ({errors} errors)") } else { String::new() }),
            "–",
        ));
    }
    Ok(())
}

/// Sets the gateway in `dir` to take any number of timestamp queries from one address: figure 7's all come from
/// this one, as fast as the gateway answers, and the limit `init` writes (20 a second) would be what it measured.
pub fn without_the_query_limit(dir: &std::path::Path) {
    let path = dir.join("gateway.toml");
    let config = std::fs::read_to_string(&path).expect("gateway.toml");
    let limit = "max_timestamps_per_address_per_second = 20";
    assert!(
        config.contains(limit),
        "init's gateway.toml no longer has `{limit}`"
    );
    std::fs::write(
        &path,
        config.replace(limit, "max_timestamps_per_address_per_second = 0"),
    )
    .expect("gateway.toml");
}
