//! ecr-platform-guard: catches images pushed to Amazon ECR for a CPU architecture the services
//! that run them cannot execute, before the next deployment fails with `exec format error`.
//!
//! The data walks one line: [`event`] → [`manifest`] → [`consumer`] → [`verdict`] → [`alert`],
//! driven by [`validate`] against the traits it defines; [`aws`] holds the SDK-backed adapters.

pub mod alert;
pub mod aws;
pub mod cli;
pub mod config;
pub mod consumer;
pub mod event;
pub mod handler;
pub mod manifest;
pub mod platform;
pub mod reference;
pub mod validate;
pub mod verdict;
