//! The self-signed certificate of `--self-signed` mode, made at start with rcgen.

use std::net::IpAddr;

use crate::SimError;

#[derive(Clone)]
pub struct ServerCert {
    pub cert_pem: String,
    pub key_pem: String,
}

/// One certificate shared by every leaf: valid for localhost, the listen address and,
/// for fabrics small enough to name, `leaf1`..`leafN` as in containerlab.
pub fn self_signed(listen: IpAddr, leaves: usize) -> Result<ServerCert, SimError> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string(), listen.to_string()];
    if leaves <= 64 {
        names.extend((1..=leaves).map(|k| format!("leaf{k}")));
    }
    names.dedup();
    let ck = rcgen::generate_simple_self_signed(names).map_err(|e| SimError::Tls(e.to_string()))?;
    Ok(ServerCert { cert_pem: ck.cert.pem(), key_pem: ck.signing_key.serialize_pem() })
}
