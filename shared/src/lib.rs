//! Synchro's shared vocabulary: what an operator transmits and how.
//!
//! - [`template`]: the record template v1 (fields, categories, identity-quality flags).
//! - [`normalise`]: identity normalisation (names, dates, sex) as French registers need it.
//! - [`pseudonym`]: keyed match keys and per-operator references derived from identities.
//! - [`batch`]: the versioned wire format, its signature and its age encryption.
//!
//! This crate has no I/O runtime, no database and no HTTP: the agent, the hub and the tests
//! all depend on it, so what it defines is the contract between them.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod batch;
pub mod normalise;
pub mod pseudonym;
pub mod settings;
pub mod template;
