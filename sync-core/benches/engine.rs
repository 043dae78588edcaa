//! Engine benchmark (filled in later).

fn main() {}
