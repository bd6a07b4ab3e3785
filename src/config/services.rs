//! `services:` — anycast services announced through ExaBGP (issue 7).
//!
//! `RawService` is the YAML shape (deserialized as part of the top-level config, so its
//! errors carry line and column); `Service` is the validated form.

use serde::Deserialize;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {}

#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    pub name: String,
}

/// Validate one service. `groups` are the configured oper-group names (a service may
/// follow a group's health). The error is a message naming the offending key.
pub fn resolve(name: &str, _raw: &RawService, _groups: &[&str]) -> Result<Service, String> {
    Ok(Service { name: name.to_string() })
}
