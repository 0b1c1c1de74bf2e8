//! A throwaway PostgreSQL server for a test: Debian's `postgresql` binaries (initdb, pg_ctl from
//! /usr/lib/postgresql/<version>/bin), a data directory in a temporary directory, trust authentication on a free
//! loopback port and no Unix socket outside that directory. PostgreSQL refuses to run as root, so as root the
//! server runs as `nobody` (through `runuser`). Dropping the fixture stops the server at once and removes its data.

#![allow(clippy::unwrap_used)] // test scaffolding: a failure here should stop the test loudly

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::gateway::free_port;

#[derive(Debug)]
pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

/// The unprivileged user the server runs as when the tests run as root.
const UNPRIVILEGED: &str = "nobody";

/// The directory of the newest installed PostgreSQL's server binaries, if any.
pub fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, bin)| bin)
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

impl Postgres {
    /// Starts a server; `bin` is [`bin_dir`]'s answer.
    pub fn start(bin: &Path) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("signpath-postgres-")
            .tempdir()
            .unwrap();
        if running_as_root() {
            let chown = Command::new("chown")
                .arg(UNPRIVILEGED)
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(
                chown.success(),
                "cannot give the data directory to {UNPRIVILEGED}"
            );
        }
        let data = dir.path().join("data");
        let mut pg = Self {
            bin: bin.to_owned(),
            data,
            port: 0,
            _dir: dir,
        };
        let init = pg
            .command("initdb")
            .args([
                "--auth=trust",
                "--username=signpath",
                "--encoding=UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&pg.data)
            .output()
            .unwrap();
        assert!(
            init.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        // PostgreSQL cannot bind port 0 and say which port it got: a picked port another test may take first, and
        // then another port.
        for attempt in 1..=3 {
            pg.port = free_port();
            let options = format!(
                "-p {} -c listen_addresses=127.0.0.1 -k {} -c max_connections=200",
                pg.port,
                pg.data.display()
            );
            let start = pg
                .command("pg_ctl")
                .args(["-w", "-t", "30", "-D"])
                .arg(&pg.data)
                .arg("-l")
                .arg(pg.data.join("server.log"))
                .args(["-o", &options, "start"])
                .output()
                .unwrap();
            if start.status.success() {
                return pg;
            }
            let log = std::fs::read_to_string(pg.data.join("server.log")).unwrap_or_default();
            assert!(
                attempt < 3 && log.contains("already in use"),
                "pg_ctl start failed: {}{log}",
                String::from_utf8_lossy(&start.stdout),
            );
        }
        unreachable!("the loop returns or panics")
    }

    /// The URL gateways connect with (`audit_db`).
    pub fn url(&self) -> String {
        format!("postgres://signpath@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs `sql` with psql as the gateways' user; its unaligned output, or a panic with psql's error.
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args([
                "-U",
                "signpath",
                "-d",
                "postgres",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A PostgreSQL program, run as the user that owns the data directory.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if running_as_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", UNPRIVILEGED, "--"]).arg(path);
            cmd
        } else {
            Command::new(path)
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D"])
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}
