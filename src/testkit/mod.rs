//! The test kit: in-process emulators of the outside services warroom talks to, used by
//! `warroom demo`, the integration tests and the benchmarks, never by `serve`.
//!
//! * [`slack_emulator`]: the Slack Web API, `response_url`s, outgoing webhooks and health
//!   endpoints, recording every call;
//! * [`smtp_sink`]: an SMTP server that keeps the mail it receives.
//!
//! Product modules do not import this module; it imports them where it must agree with them
//! (Slack's documented limits, say).

pub mod slack_emulator;
pub mod smtp_sink;
