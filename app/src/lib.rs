//! The expense tracker application: configuration, the HTTP surface, and the wiring that
//! turns the domain and the adapters into one running service.
//!
//! Rules: handlers are thin and never write SQL; everything that touches the outside world
//! lives in `infrastructure`; the binary (`src/main.rs`) only parses the command line and
//! calls into this library, so that tests start exactly what users run.

pub mod accounts;
pub mod assistant;
pub mod audit;
pub mod commands;
pub mod config;
pub mod crash;
pub mod demo_data;
pub mod directory;
pub mod http;
pub mod mail;
pub mod password_reset;
pub mod read_models;
pub mod rebuild_cli;
pub mod rebuilds;
pub mod repeatable_ids;
pub mod schedule_views;
pub mod scheduler;
pub mod startup;
pub mod state;
pub mod support;
#[cfg(test)]
mod test_support;
pub mod ticket_views;
pub mod wallet_views;
pub mod web;
pub mod workers;

pub use config::Config;
pub use startup::{Application, shutdown_signal};
