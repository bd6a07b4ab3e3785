//! One target from its YAML shape and the defaults under it: address, TLS, the one
//! password (given, from the environment, or from a file).

use std::path::PathBuf;

use serde_saphyr::{Location, Spanned};

use super::raw::{RawDefaults, RawTarget};
use super::resolve::{Context, DEFAULT_LIVENESS, DEFAULT_PORT, DEFAULT_RECONNECT_MAX};
use super::{ConfigError, Secret, Target, Tls};

pub(super) fn check_one_password(
    key: &str,
    password: Option<&Spanned<Secret>>,
    env: Option<&Spanned<String>>,
    file: Option<&Spanned<PathBuf>>,
    cx: &Context,
) -> Result<(), ConfigError> {
    let set: Vec<(&str, Location)> = [
        password.map(|p| ("password", p.referenced)),
        env.map(|p| ("password-env", p.referenced)),
        file.map(|p| ("password-file", p.referenced)),
    ]
    .into_iter()
    .flatten()
    .collect();
    if let [_, (second, at), ..] = set[..] {
        return Err(cx.error(
            format!("{key}.{second}"),
            Some(at),
            "set exactly one of password, password-env, password-file",
        ));
    }
    Ok(())
}

pub(super) fn target(
    name: &str,
    t: &RawTarget,
    defaults: &RawDefaults,
    inherited: &mut Option<Option<Secret>>,
    cx: &Context,
) -> Result<Target, ConfigError> {
    let key = format!("targets.{name}");
    check_one_password(&key, t.password.as_ref(), t.password_env.as_ref(), t.password_file.as_ref(), cx)?;
    let own = t.password.is_some() || t.password_env.is_some() || t.password_file.is_some();
    let password = if own {
        secret(&key, t.password.as_ref(), t.password_env.as_ref(), t.password_file.as_ref(), cx)?
    } else {
        match inherited {
            Some(secret) => secret.clone(),
            None => {
                let d = defaults;
                let s = secret("defaults", d.password.as_ref(), d.password_env.as_ref(), d.password_file.as_ref(), cx)?;
                inherited.insert(s).clone()
            }
        }
    };
    let port = defaults.port.map_or(DEFAULT_PORT, |p| p.0);
    let address = address(&t.address.value, port)
        .map_err(|e| cx.error(format!("{key}.address"), Some(t.address.referenced), e))?;
    let tls = t.tls.clone().or_else(|| defaults.tls.clone()).unwrap_or(Tls::Verify {
        ca_file: None,
        client: None,
        server_name: None,
    });
    let liveness = t.liveness.or(defaults.liveness).map_or(DEFAULT_LIVENESS, |d| d.0);
    let reconnect_max = t.reconnect_max.as_ref().or(defaults.reconnect_max.as_ref());
    if let Some(r) = reconnect_max
        && r.value.0.is_zero()
    {
        let owner = if t.reconnect_max.is_some() { key.as_str() } else { "defaults" };
        return Err(cx.error(
            format!("{owner}.reconnect-max"),
            Some(r.referenced),
            "reconnect-max must be more than 0s",
        ));
    }
    Ok(Target {
        name: name.to_string(),
        address,
        username: t.username.clone().or_else(|| defaults.username.clone()),
        password,
        tls: cx.tls(tls),
        liveness: (!liveness.is_zero()).then_some(liveness),
        reconnect_max: reconnect_max.map_or(DEFAULT_RECONNECT_MAX, |r| r.value.0),
    })
}

/// Read the one configured password source. Error texts name the source, never the value.
fn secret(
    key: &str,
    password: Option<&Spanned<Secret>>,
    env: Option<&Spanned<String>>,
    file: Option<&Spanned<PathBuf>>,
    cx: &Context,
) -> Result<Option<Secret>, ConfigError> {
    let (value, key, at) = if let Some(p) = password {
        (p.value.expose().to_string(), format!("{key}.password"), p.referenced)
    } else if let Some(var) = env {
        let value = std::env::var(&var.value).map_err(|e| {
            let why = match e {
                std::env::VarError::NotPresent => "is not set",
                std::env::VarError::NotUnicode(_) => "is not valid UTF-8",
            };
            cx.error(
                format!("{key}.password-env"),
                Some(var.referenced),
                format!("environment variable {} {why}", var.value),
            )
        })?;
        (value, format!("{key}.password-env"), var.referenced)
    } else if let Some(file) = file {
        let path = cx.path(&file.value);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            cx.error(
                format!("{key}.password-file"),
                Some(file.referenced),
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        let value = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
        (value.to_string(), format!("{key}.password-file"), file.referenced)
    } else {
        return Ok(None);
    };
    if value.is_empty() {
        return Err(cx.error(key, Some(at), "the password is empty"));
    }
    Ok(Some(Secret::new(value)))
}

/// `host:port`, `host`, `[v6]:port`, `[v6]` or a bare IPv6 address; the port is filled in.
fn address(text: &str, default_port: u16) -> Result<String, String> {
    let text = text.trim();
    let bad = |why: &str| format!("invalid address {text:?}: {why}");
    if text.is_empty() {
        return Err(bad("empty"));
    }
    if text.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok(format!("[{text}]:{default_port}"));
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or_else(|| bad("missing ']'"))?;
        v6.parse::<std::net::Ipv6Addr>().map_err(|_| bad("not an IPv6 address inside [ ]"))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| bad("expected ':' after ']'"))?),
        };
        (format!("[{v6}]"), port)
    } else {
        match text.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (text.to_string(), None),
        }
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || "/@?#".contains(c)) {
        return Err(bad("expected host or host:port"));
    }
    let port = match port {
        None => default_port,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| bad("port must be 1..65535"))?,
    };
    Ok(format!("{host}:{port}"))
}
