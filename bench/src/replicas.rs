//! Figure 9: the gateway as a service. SignHash at 32 clients (closed loop, TLS) against one gateway on its
//! embedded SQLite store, one replica on PostgreSQL reached directly, and three replicas on the same PostgreSQL
//! behind HAProxy (TCP mode, `/readyz` health checks), alternating per round. PostgreSQL and HAProxy are Debian's,
//! started by the end-to-end tests' fixtures (a temporary data directory, fsync on). Every side makes the same
//! HSM signature and durable audit record per request; what differs is where the record is committed and how
//! many processes share this machine's cores.

use e2e_tests::postgres::{self, Postgres};
use e2e_tests::replicas::{self, Replicas};

use crate::load::{self, Operation, Target};
use crate::stats::{ratio, Samples};
use crate::{row, Result, Row, RunArgs};

const CLIENTS: usize = 32;

pub fn figures(sqlite: &Target, args: &RunArgs, rows: &mut Vec<Row>) -> Result<()> {
    let pg_bin = postgres::bin_dir().ok_or("PostgreSQL not found; run scripts/install-deps")?;
    let haproxy = replicas::haproxy().ok_or("haproxy not found; run scripts/install-deps")?;
    eprintln!("signpath-bench: replicas: starting PostgreSQL, three gateways and HAProxy");
    let database = Postgres::start(&pg_bin);
    let gateways = Replicas::start(3, &database.url(), &haproxy, |_| {});
    let target = |url: String| -> Result<Target> {
        Ok(Target {
            api_url: url,
            organization_id: gateways.env("SIGNPATH_ORGANIZATION_ID"),
            api_token: gateways.env("SIGNPATH_API_TOKEN"),
            tls_ca_pem: std::fs::read(gateways.setup().join("tls-ca.pem"))?,
            project: sqlite.project.clone(),
            policy: sqlite.policy.clone(),
            operation: Operation::SignHash,
        })
    };
    let sides = [
        sqlite.clone(),
        target(gateways.replica_url(0))?,
        target(gateways.api_url())?,
    ];
    let mut rates = vec![Samples::default(); sides.len()];
    let mut p99s = vec![Samples::default(); sides.len()];
    let mut errors = vec![0u64; sides.len()];
    for round in 0..args.rounds {
        for (i, side) in sides.iter().enumerate() {
            eprintln!("signpath-bench: replicas round {}, side {}", round + 1, i + 1);
            let o = load::closed_loop(side, CLIENTS, args.seconds)?;
            rates[i].push(o.rate());
            p99s[i].push(o.p99_ms);
            errors[i] += o.errors;
        }
    }
    let show = |i: usize| {
        format!(
            "{}, p99 {}, {} errors",
            rates[i].show("signs/s", 0),
            p99s[i].show("ms", 2),
            errors[i]
        )
    };
    rows.push(row(
        format!("9. SignHash EC-256, {CLIENTS} clients: 1 replica on PostgreSQL vs 1 gateway on SQLite"),
        show(1),
        show(0),
        ratio(&rates[1], &rates[0]),
        "–",
    ));
    rows.push(row(
        format!("9. SignHash EC-256, {CLIENTS} clients: 3 replicas on PostgreSQL behind HAProxy vs 1 gateway on SQLite"),
        show(2),
        show(0),
        ratio(&rates[2], &rates[0]),
        "–",
    ));
    Ok(())
}
