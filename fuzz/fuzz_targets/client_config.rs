//! The clients' configuration: every SIGNPATH_* setting from the environment (here: `NAME=value` lines of the
//! input) and per-call overrides, parsed into a Config or a precise error.
#![no_main]

use std::collections::BTreeMap;

use common::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut env = BTreeMap::new();
    let mut overrides = BTreeMap::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=') {
            if k.starts_with("SIGNPATH_") && k != "SIGNPATH_CONFIG_FILE" {
                env.insert(k.to_owned(), v.to_owned());
            } else {
                overrides.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    let lookup = |name: &str| env.get(name).cloned();
    let _ = Config::load(&overrides, &lookup);
});
