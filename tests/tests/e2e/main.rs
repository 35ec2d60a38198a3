//! End-to-end tests across Synchro's binaries, as one integration binary.

mod bad_input;
mod hub_audit;
mod hub_ingest;
mod hub_linkage;
mod hub_refusals;
mod hub_resilience;
mod hub_web;
mod interop;
mod preview;
mod privacy;
mod quickstart;
mod upload;
mod vectors;
