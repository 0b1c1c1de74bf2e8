//! notation-signpath: filled in by the Notation plugin work.

fn main() {}
