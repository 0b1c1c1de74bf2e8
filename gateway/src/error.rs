//! The error of work whose caller only reports its message and stops: `init` and the other commands, loading
//! gateway.toml into the core's state, starting the server. Failures a client sees have their own types
//! (`signing::Refusal`, the store's and the HSM's errors), translated once at the edge.
//!
//! It sits below every other module and imports nothing from the crate, so a file that returns it never needs the
//! file beside it that happens to return it too.

/// Any error with its message: what `?` makes of an `std::io::Error`, a `String` or a library's error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
