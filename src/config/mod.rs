//! Configuration: an optional `warroom.toml`, every value overridable from the environment.
//!
//! The file is read into a TOML table, environment overrides (`WARROOM_<SECTION>__<KEY>`, e.g.
//! `WARROOM_SLACK__ANNOUNCE_CHANNEL=C123` or `WARROOM_SEVERITY__P0__TARGET=1h`) are merged in,
//! and the result is checked key by key. Every problem is reported with its dotted key and the
//! file it came from; nothing falls back to a default silently.

mod load;
mod types;
mod validate;

pub use load::{Environment, CONFIG_ENV};
pub use types::*;
pub use validate::{ConfigError, Problem, Warning};
