//! The log's persistence, run against both stores (SQLite, and a throwaway PostgreSQL server as replicas share
//! it): a signature record's leaf written with the record, sequencing, a growth lost to another gateway, uploads.

use std::path::Path;

use super::testing::{key, sequence};
use super::{sequencer, verify};
use crate::store::log::{Growth, KIND_REKOR, KIND_SIGNATURE};
use crate::store::{Record, Stores};

fn signature(n: usize) -> Record {
    Record {
        request_id: format!("request-{n}"),
        completed: "2026-12-07T12:00:00Z".into(),
        organization: "org".into(),
        route: "/v1/org/signingrequests/signhash".into(),
        digest: Some(format!("{n:064x}")),
        signature_sha256: Some(format!("{:064x}", n + 1000)),
        outcome: "allowed".into(),
        status: 200,
        ..Record::default()
    }
}

fn the_log_keeps_its_leaves_with_their_records(stores: &Stores) {
    let log = stores.log.as_ref();
    for n in 0..3 {
        stores.audit.append(&signature(n), None).expect("append");
    }
    let refused = Record {
        request_id: "refused".into(),
        outcome: "refused".into(),
        ..signature(9)
    };
    stores.audit.append(&refused, None).expect("append");
    let pending = log.pending(10).expect("pending");
    assert_eq!(
        pending.len(),
        3,
        "one leaf per signature record, none for a refusal"
    );
    assert_eq!(Some(pending[1].body.clone()), signature(1).log_entry());
    assert_eq!(
        log.leaf("request-2").expect("leaf").map(|l| (l.kind, l.index)),
        Some((KIND_SIGNATURE.into(), None))
    );

    let (size, note) = sequence(log);
    assert_eq!(size, 3);
    assert_eq!(log.checkpoint().expect("checkpoint"), Some((3, note.clone())));
    assert_eq!(
        log.leaf("request-2").expect("leaf").and_then(|l| l.index),
        Some(2)
    );
    let records = stores.audit.records(None).expect("records");
    let verified = verify::verify(log, &key().1, &records, None).expect("verifies");
    assert_eq!((verified.size, verified.signature_leaves), (3, 3));

    // Another gateway's growth computed from the old size is refused whole.
    let stale = Growth {
        from: 0,
        to: 1,
        leaves: vec![],
        hashes: vec![(0, [0; 32])],
        checkpoint: "stale".into(),
    };
    assert!(!log.grow(&stale).expect("grow"));
    assert_eq!(log.checkpoint().expect("checkpoint"), Some((3, note.clone())));

    // An upload's leaf joins the same tree; a turn with nothing pending changes nothing.
    log.add("upload-1", KIND_REKOR, b"{\"kind\":\"hashedrekord\"}")
        .expect("add");
    let (size, _) = sequence(log);
    assert_eq!(size, 4);
    assert_eq!(
        log.bodies(3, 4).expect("bodies"),
        vec![b"{\"kind\":\"hashedrekord\"}".to_vec()]
    );
    let (secret, log_key) = key();
    let unchanged = sequencer::grow_once(log, &log_key, &|m| {
        use p256::ecdsa::signature::Signer as _;
        let sig: p256::ecdsa::DerSignature = secret.sign(m);
        Ok(sig.as_bytes().to_vec())
    })
    .expect("turn");
    assert_eq!(unchanged, 4);
    let leaves = log.leaves().expect("leaves");
    assert_eq!(
        leaves.iter().map(|l| l.index).collect::<Vec<_>>(),
        vec![Some(0), Some(1), Some(2), Some(3)]
    );
    verify::verify(
        log,
        &key().1,
        &stores.audit.records(None).expect("records"),
        Some(note.as_bytes()),
    )
    .expect("consistent");
}

#[test]
fn the_sqlite_store_keeps_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stores = Stores::sqlite(&dir.path().join("audit.db")).expect("open");
    the_log_keeps_its_leaves_with_their_records(&stores);
    // A new database's records rewrite no `sqlite_sequence` row (no AUTOINCREMENT): a page fewer per commit.
    let sequences: i64 = rusqlite::Connection::open(dir.path().join("audit.db"))
        .and_then(|c| {
            c.query_row(
                "SELECT count(*) FROM sqlite_sequence WHERE name IN ('audit', 'tlog_leaves')",
                [],
                |r| r.get(0),
            )
        })
        .expect("sqlite_sequence");
    assert_eq!(sequences, 0);
}

/// The tables as the gateway made them before they were laid out for fewer pages per record (`AUTOINCREMENT`, a
/// rowid table of idempotency answers, `leaf_index INTEGER UNIQUE`), and before the audit table's three later
/// columns.
const EARLIER_SCHEMA: &str = "
    CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT, received TEXT, completed TEXT,
        organization TEXT, project TEXT, policy TEXT, token_id TEXT, client_address TEXT, user_agent TEXT,
        method TEXT, route TEXT, algorithm TEXT, hash_algorithm TEXT, digest TEXT, signature_sha256 TEXT,
        certificate_sha256 TEXT, metadata TEXT, idempotency_key TEXT, outcome TEXT, status INTEGER,
        error_type TEXT, error_detail TEXT, UNIQUE(request_id));
    CREATE TABLE idempotency (token_id TEXT NOT NULL, key TEXT NOT NULL, request_id TEXT NOT NULL,
        body_sha256 TEXT NOT NULL, response TEXT NOT NULL, created INTEGER NOT NULL, PRIMARY KEY (token_id, key));
    CREATE INDEX idempotency_request ON idempotency (request_id);
    CREATE TABLE tlog_leaves (seq INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL, body BLOB NOT NULL, leaf_index INTEGER UNIQUE);
    CREATE INDEX tlog_leaves_pending ON tlog_leaves (seq) WHERE leaf_index IS NULL;";

#[test]
fn a_database_made_with_the_earlier_tables_keeps_the_log_and_the_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.db");
    rusqlite::Connection::open(&path)
        .and_then(|c| c.execute_batch(EARLIER_SCHEMA))
        .expect("the earlier tables");
    let stores = Stores::sqlite(&path).expect("open");
    the_log_keeps_its_leaves_with_their_records(&stores);
    let answer = crate::store::IdempotentAnswer {
        token_id: "token".into(),
        key: "key-1".into(),
        body_sha256: "ab".into(),
        response: "{}".into(),
    };
    let record = Record {
        request_id: "request-answered".into(),
        ..signature(20)
    };
    stores.audit.append(&record, Some(answer)).expect("append");
    let stored = stores
        .audit
        .idempotent("token", "key-1")
        .expect("lookup")
        .expect("stored");
    assert_eq!(
        (stored.body_sha256.as_str(), stored.response.as_str()),
        ("ab", "{}")
    );
    let autoincrement: i64 = rusqlite::Connection::open(&path)
        .and_then(|c| c.query_row("SELECT count(*) FROM sqlite_sequence", [], |r| r.get(0)))
        .expect("sqlite_sequence");
    assert_eq!(autoincrement, 2, "the earlier tables were kept as they were");
}

#[test]
fn the_postgresql_store_keeps_the_log() {
    let Some(bin) = e2e_tests::postgres::bin_dir() else {
        panic!("PostgreSQL's server binaries are not installed (apt-get install postgresql); the log suite runs against both stores");
    };
    let pg = e2e_tests::postgres::Postgres::start(&bin);
    let stores = Stores::open(Path::new("."), Path::new(&pg.url())).expect("open");
    the_log_keeps_its_leaves_with_their_records(&stores);
}
