//! `signpath-gateway migrate`: brings the database `audit_db` names up to this binary's schema before replicas
//! of a new version start (`serve` applies missing migrations on start as well). A SQLite file creates and
//! upgrades its tables whenever it is opened, so for it this only opens it.

use std::path::Path;

use super::CliResult;
use crate::config::GatewayConfig;
use crate::store::{postgres, Stores};

pub fn run(config_path: &Path) -> CliResult {
    let (config, base) = GatewayConfig::load(config_path)?;
    match config.audit_db.to_str().filter(|url| postgres::is_postgres(url)) {
        Some(url) => {
            let db = postgres::Database::connect(url)?;
            let applied = postgres::migrate(&db)?;
            let applied: Vec<String> = applied.iter().map(i32::to_string).collect();
            if applied.is_empty() {
                println!(
                    "the PostgreSQL schema is at version {}; nothing to apply",
                    postgres::latest_migration()
                );
            } else {
                println!(
                    "applied migration {}; the PostgreSQL schema is at version {}",
                    applied.join(", "),
                    postgres::latest_migration()
                );
            }
        }
        None => {
            Stores::open(&base, &config.audit_db)?;
            println!("the SQLite database {} is up to date", config.audit_db.display());
        }
    }
    Ok(())
}
