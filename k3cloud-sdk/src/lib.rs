//! Typed async client for the Kingdee K3Cloud (金蝶云星空) WebAPI.
//!
//! Work in progress: see the workspace README for the state of each crate.
#![deny(missing_docs)]
