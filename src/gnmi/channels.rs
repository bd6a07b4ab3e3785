//! One HTTP/2 connection per target, shared by its subscription and its Sets. The source
//! publishes the channel it subscribed on; the [`super::Setter`] sends on it (a client is a
//! cheap clone; each RPC is its own HTTP/2 stream with its own flow-control
//! window, so a Set does not wait behind queued notifications). A Set that fails with a
//! retryable error forgets the channel; the next Set opens one and publishes it, and the
//! source's next session replaces it with its own.
//!
//! Measured (BENCHMARKS.md, "one connection per target"): half the sockets and about a
//! third less memory per target, less CPU per Set than a second connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::Target;
use crate::model::WireEncoding;

use super::connect::GnmiClient;

#[derive(Clone, Default)]
pub struct Channels(Arc<Mutex<HashMap<String, Channel>>>);

/// An open channel, the settings it was made with, and the encoding its target offered.
struct Channel {
    made_for: Target,
    client: GnmiClient,
    encoding: WireEncoding,
}

impl Channels {
    /// The channel open to `target`, if one was made with the same address, TLS and
    /// credentials, and the encoding to send on it.
    pub fn get(&self, target: &Target) -> Option<(GnmiClient, WireEncoding)> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&target.name).filter(|c| same_connection(&c.made_for, target)).map(|c| (c.client.clone(), c.encoding))
    }

    /// Makes `client` the channel for `target` (replacing any older one).
    pub fn publish(&self, target: &Target, client: &GnmiClient, encoding: WireEncoding) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(target.name.clone(), Channel { made_for: target.clone(), client: client.clone(), encoding });
    }

    pub fn forget(&self, target: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(target);
    }
}

/// Equal when they are the same registry (for `SourceOptions`' derived equality).
impl PartialEq for Channels {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Channels {}

impl std::fmt::Debug for Channels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.lock().map(|m| m.len()).unwrap_or(0);
        write!(f, "Channels({n} targets)")
    }
}

fn same_connection(a: &Target, b: &Target) -> bool {
    a.address == b.address && a.tls == b.tls && a.username == b.username && a.password == b.password
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Tls;

    fn target(address: &str) -> Target {
        Target {
            name: "leaf1".into(),
            address: address.into(),
            username: None,
            password: None,
            tls: Tls::Insecure,
            liveness: None,
            reconnect_max: crate::config::DEFAULT_RECONNECT_MAX,
        }
    }

    #[tokio::test]
    async fn a_channel_is_found_only_for_the_same_address_and_until_forgotten() {
        // A listener that accepts and says nothing: the client side's HTTP/2 handshake is
        // only its preface, so a connection can be made without a gNMI server.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let _accepting = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let client = crate::gnmi::connect(&target(&address), &Default::default()).await.unwrap();
        let c = Channels::default();
        c.publish(&target(&address), &client, WireEncoding::Proto);
        assert_eq!(c.get(&target(&address)).map(|(_, e)| e), Some(WireEncoding::Proto));
        assert!(c.get(&target("127.0.0.1:10")).is_none(), "address changed: a new channel");
        c.forget("leaf1");
        assert!(c.get(&target(&address)).is_none());
    }
}
