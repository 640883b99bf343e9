//! warroom: a self-hosted incident-response bot for Slack and Microsoft Teams.
//!
//! Chat adapters (`slack`) turn requests into `commands`, which apply the pure rules of
//! `core` and persist the result with `store` in one transaction, enqueueing effects as
//! durable `jobs` that workers carry out.

pub mod app;
pub mod chat;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod context;
pub mod core;
pub mod demo;
pub mod effects;
pub mod health;
pub mod http;
pub mod jobs;
pub mod link_token;
pub mod paging;
pub mod publish;
pub mod resolution;
pub mod retention;
pub mod slack;
pub mod store;
pub mod templates;
pub mod testkit;
pub mod timeline;
pub mod web;
