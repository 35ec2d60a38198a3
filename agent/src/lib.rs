//! The Synchro agent: from an operator's monthly export to an encrypted, signed batch.
//!
//! - [`config`] and [`profile`]: `agent.toml` and the mapping profile.
//! - [`export`]: reading CSV and spreadsheets; [`mapping`]: rows to the template.
//! - [`pipeline`]: the streaming, parallel pass; [`report`]: located problems (fr/en).
//! - [`upload`] and [`receipt`]: HTTPS delivery and the local receipt.
//! - [`command`]: the subcommands behind the `synchro-agent` binary.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod command;
pub mod config;
pub mod export;
pub mod mapping;
pub mod pipeline;
pub mod profile;
pub mod receipt;
pub mod report;
pub mod upload;
