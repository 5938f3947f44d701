//! The one integration-test binary (one link step for the whole suite).
//!
//! Tests run real plugins built from `plugins/` by `scripts/build-plugins.sh`,
//! once per test run (see `support::plugin`).

mod capabilities;
mod cli;
mod cli_capabilities;
mod client_cli;
mod cluster;
mod examples;
mod invalid_modules;
mod misbehaving;
mod outbound;
mod plugins;
mod sandbox;
mod serve_cli;
mod server;
mod store;
mod support;
