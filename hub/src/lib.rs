//! The Synchro hub, run by the technical operator.
//!
//! - [`ingest`]: verifies and opens an operator's sealed batch (signature, decryption, format,
//!   versions, key epoch), refusing it with a precise, machine-readable reason.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod ingest;
