//! signpath-gateway: filled in by the gateway work.

fn main() {}
