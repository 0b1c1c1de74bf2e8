//! The end-to-end suites that can share a process, as one test binary: each former `tests/tests/NAME.rs` is the
//! module `NAME` here, so the suite compiles and links once instead of once per file. Run one suite with
//! `cargo test --release -p e2e-tests --test e2e NAME::`, one test with `... --test e2e NAME::TEST_NAME`.
//!
//! Folding a new `tests/tests/NAME.rs` in (until then it is a test binary of its own, which works too):
//! `git mv tests/tests/NAME.rs tests/tests/e2e/` and one line `mod NAME;` below, in order. A support directory
//! `NAME_support/` moves along, is declared once below, and the file says `use super::NAME_support;` instead of
//! `mod NAME_support;`.
//!
//! What stays a binary of its own, in `tests/tests/` beside this directory, and why: a suite that changes the
//! process for every test in it. `pkcs11_module.rs`, `pkcs11_clients.rs`, `cosign_e2e.rs`, `pkcs11_first_hour.rs`
//! and `load.rs` load the PKCS#11 module into the test process (its `C_Initialize` state is process-wide) and point
//! the process environment at their gateway; `pkcs11_fork.rs` forks; `pkcs11_no_threads.rs` needs a process whose
//! only threads are its own; `secrets.rs` sets the gateway's log level in the process environment, which every
//! gateway started here would inherit. Each says so at its top.

mod artifacts_e2e;
mod audit_outcomes;
mod authorization;
mod client_secrets;
mod config_rules;
mod cosign_kms_plugin;
mod crash;
mod docs_fixes;
mod faults;
mod gateway_api;
mod gateway_doctor;
mod gateway_hardening;
mod gateway_openapi;
mod github_action;
mod github_connector;
mod governance_e2e;
mod gpg_e2e;
mod keyless_approval;
mod keyless_ca;
mod keyless_cosign;
mod notation_doctor;
mod notation_e2e;
mod notation_protocol;
mod oci_e2e;
mod oci_submit_e2e;
mod operations;
mod packages;
mod pkcs11_conformance;
mod pki_e2e;
mod plugin_config_secrets;
mod registry_fixture;
mod release;
mod replica_artifacts;
mod replicas;
mod replicas_exactly_once;
mod request_revocation;
mod schemathesis;
mod security_approvals;
mod security_artifacts;
mod security_audit;
mod security_client_and_config;
mod security_listeners;
mod server_limits;
mod signing_authority;
mod timestamps;
mod transparency_log;
mod unreachable_gateway;
mod verifiers;
mod verify_kit;

// Support modules, each shared by the suites that `use super::` it.
mod faults_support;
mod governance_e2e_support;
mod notation_e2e_support;
mod notation_protocol_support;
mod oci_support;
