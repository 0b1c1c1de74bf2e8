//! What the Notation plugin, the PKCS#11 module and the gateway share.
//!
//! - [`protocol`]: the wire types of SignPath's hash-signing API (and our extensions).
//! - [`config`]: SignPath's Crypto Provider settings (`CryptoProvidersConfig.json`, `SIGNPATH_*`).
//! - [`client`]: the gateway client (reqwest + rustls, all I/O on the calling thread).
//! - [`remote_key`]: a signing policy as a key: sign a digest remotely, verify the answer locally.
//! - [`revocation_list`]: request revocations, the signed list the gateway publishes, and the rule of what they
//!   cover.
//! - [`broken_pipe`]: the command-line programs end quietly when their reader closes stdout.
//! - [`keys`], [`encoding`], [`pubkey`], [`x509`]: algorithms, DigestInfo and ECDSA encodings, keys, certificates.

pub mod broken_pipe;
pub mod client;
pub mod config;
pub mod encoding;
pub mod error;
pub mod keys;
pub mod logging;
pub mod metadata;
pub mod protocol;
pub mod pubkey;
pub mod remote_key;
pub mod retry;
pub mod revocation_list;
pub mod secret;
pub mod tls;
pub mod x509;

pub use error::Error;
