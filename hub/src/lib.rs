//! The Synchro hub, run by the technical operator.
//!
//! - [`config`]: `hub.toml`, validated at start-up.
//! - [`ingest`]: verifies and opens an operator's sealed batch, refusing it with a precise reason.
//! - [`store`]: all SQL, on SQLite or PostgreSQL.
//! - [`linkage`]: links records of one person from their keyed pseudonyms.
//! - [`persons`] and [`processing`]: stable person and household ids, run by run.
//! - [`audit`]: the Merkle-tree audit log and its signed checkpoints.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod accounts;
pub mod audit;
pub mod bench;
pub mod command;
pub mod config;
pub mod demo;
pub mod evaluation;
pub mod ingest;
pub mod linkage;
pub mod persons;
pub mod processing;
pub mod report;
pub mod server;
pub mod service;
pub mod store;
pub mod web;
