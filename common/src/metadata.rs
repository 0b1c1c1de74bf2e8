//! The audit metadata a client sends with each signature: who asked (SignPath's `sourceProcess`) and what was
//! signed (our `oci` extension).

use std::sync::OnceLock;

use crate::protocol::{OperatingSystem, SourceProcess};
use crate::secret::{redact_command_line, scrub};

/// Describes the current process, with secrets removed from its command line: the exact values this process holds
/// (see [`crate::secret::scrub`]; applied on every call, since a PIN may be learnt after the first) and whatever
/// looks like a secret. Read once per process: the PKCS#11 module calls this on every C_Sign, and neither the
/// command line nor the kernel changes under a process.
pub fn current_source_process() -> SourceProcess {
    static CURRENT: OnceLock<SourceProcess> = OnceLock::new();
    let mut process = CURRENT.get_or_init(read_source_process).clone();
    process.command_line = process.command_line.map(|line| scrub(&line));
    process
}

fn read_source_process() -> SourceProcess {
    let command_line = std::fs::read("/proc/self/cmdline").ok().map(|raw| {
        let words: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|w| !w.is_empty())
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        redact_command_line(&words.join(" "))
    });
    let user = std::env::var("USER")
        .ok()
        .or_else(|| std::env::var("LOGNAME").ok());
    let version = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|v| v.trim().to_owned());
    SourceProcess {
        command_line,
        user,
        operating_system: Some(OperatingSystem {
            os_type: Some(std::env::consts::OS.to_owned()),
            version,
            architecture: Some(std::env::consts::ARCH.to_owned()),
        }),
    }
}
