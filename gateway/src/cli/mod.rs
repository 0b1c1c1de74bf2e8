//! The command line's own commands beside `serve`: reading the audit log and approving on the command line. They
//! open the stores directly; they never import `http/`.

pub mod access;
pub mod approvals;
pub mod audit;
pub mod doctor;
pub mod migrate;
pub mod pending;
pub mod policy;
pub mod revoke;
pub mod revoke_requests;
pub mod terminal;
pub mod verify_kit;

pub type CliResult = Result<(), crate::error::BoxError>;
