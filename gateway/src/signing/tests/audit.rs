//! One outcome per request, decided by the core: the audit record and what the core hands the request's log line
//! agree, also where the status alone would say otherwise (a timestamp reply that grants nothing is 200), and a
//! record that answers no request (a block of failed authentications) is written the same way.

use super::{audited, fixture, record};
use crate::signing::{refuse, Answer, AuditOutcome, Reason};

#[test]
fn a_timestamp_reply_that_grants_nothing_is_concluded_and_audited_refused() {
    let f = fixture();
    assert!(
        f.core.state.timestamping.is_some(),
        "init makes a time-stamping authority"
    );
    let mut record = record(None);
    let id = record.request_id.clone();
    let reply = f
        .core
        .timestamp(b"not a TimeStampReq", &mut record)
        .expect("a query the TSA cannot read gets a failure reply, not a refusal");
    assert!(reply.refused);
    let (result, outcome) = f.core.conclude(record, Ok(reply));
    assert!(result.is_ok(), "the failure reply is the answer");
    assert_eq!(outcome, AuditOutcome::Refused, "what the request's log line says");
    let record = audited(&id);
    assert_eq!(
        (record.outcome.as_str(), record.status),
        ("refused", 200),
        "what the audit record says"
    );
}

#[test]
fn a_signature_a_read_and_a_refusal_conclude_with_the_outcome_their_records_keep() {
    let f = fixture();
    let answered = |method: &str, signed: bool| {
        let mut record = record(None);
        record.method = method.into();
        if signed {
            record.signature_sha256 = Some("00".into());
        }
        let id = record.request_id.clone();
        let (_, outcome) = f.core.conclude(record, Ok(Answer::done("{}".into())));
        (outcome, audited(&id).outcome)
    };
    for (method, signed, expected) in [
        ("POST", true, AuditOutcome::Allowed),
        ("GET", false, AuditOutcome::Read),
    ] {
        let (outcome, kept) = answered(method, signed);
        assert_eq!((outcome, kept.as_str()), (expected, expected.as_str()));
    }
    for (reason, expected) in [
        (Reason::TokenNotAllowed, AuditOutcome::Refused),
        (Reason::HsmUnavailable, AuditOutcome::Error),
    ] {
        let record = record(None);
        let id = record.request_id.clone();
        let (_, outcome) = f.core.conclude::<Answer>(record, Err(refuse(reason, "why")));
        assert_eq!(outcome, expected, "{reason:?}");
        assert_eq!(audited(&id).outcome, expected.as_str(), "{reason:?}");
    }
}

#[test]
fn a_block_of_failed_authentications_is_audited_by_the_core_from_its_refusal() {
    let f = fixture();
    let mut record = record(None);
    record.client_address = "192.0.2.7:0".into();
    let id = record.request_id.clone();
    let refusal = refuse(Reason::Throttled, "5 failed authentications within 60 s");
    let (_, outcome) = f.core.conclude::<Answer>(record, Err(refusal));
    assert_eq!(outcome, AuditOutcome::Refused);
    let record = audited(&id);
    assert_eq!(
        (
            record.outcome.as_str(),
            record.status,
            record.error_type.as_deref(),
            record.error_detail.as_deref()
        ),
        (
            "refused",
            429,
            Some("throttled"),
            Some("5 failed authentications within 60 s")
        )
    );
    assert!(!record.completed.is_empty(), "the core stamps the record");
}
