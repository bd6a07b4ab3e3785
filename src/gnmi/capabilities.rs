//! Capabilities: the first RPC of every session, and the encoding it decides (JSON_IETF
//! when offered, else PROTO) for that session's Subscribe and the target's Sets.

use std::time::Duration;

use gnmi_proto::{CapabilityRequest, Encoding};

use crate::config::Target;
use crate::model::WireEncoding;

use super::connect::{ErrorKind, GnmiClient, GnmiError};

/// Asks for Capabilities and chooses the encoding to subscribe and Set with.
pub async fn check_capabilities(
    client: &mut GnmiClient,
    target: &Target,
    timeout: Duration,
) -> Result<WireEncoding, GnmiError> {
    let mut req = tonic::Request::new(CapabilityRequest {});
    req.set_timeout(timeout);
    let caps = match tokio::time::timeout(timeout, client.capabilities(req)).await {
        Err(_) => {
            return Err(GnmiError::new(
                target,
                ErrorKind::Timeout,
                format!("Capabilities did not answer within {timeout:?}"),
            ));
        }
        Ok(Err(status)) => return Err(GnmiError::from_status(target, &status)),
        Ok(Ok(resp)) => resp.into_inner(),
    };
    choose_encoding(&caps.supported_encodings).map_err(|why| GnmiError::new(target, ErrorKind::Unsupported, why))
}

/// JSON_IETF when offered, else PROTO (typed scalars). A target that lists no encodings
/// at all says nothing either way: JSON_IETF, the one every gNMI target we know serves, is
/// tried, and a refusal then shows up as the Subscribe's own error.
pub fn choose_encoding(offered: &[i32]) -> Result<WireEncoding, String> {
    if offered.is_empty() || offered.contains(&(Encoding::JsonIetf as i32)) {
        return Ok(WireEncoding::JsonIetf);
    }
    if offered.contains(&(Encoding::Proto as i32)) {
        return Ok(WireEncoding::Proto);
    }
    let names: Vec<String> = offered
        .iter()
        .map(|e| Encoding::try_from(*e).map_or_else(|_| format!("unknown({e})"), |e| e.as_str_name().to_string()))
        .collect();
    Err(format!("neither JSON_IETF nor PROTO encoding is offered (offered: {})", names.join(", ")))
}

/// The wire enum for a chosen encoding.
pub fn wire(encoding: WireEncoding) -> Encoding {
    match encoding {
        WireEncoding::JsonIetf => Encoding::JsonIetf,
        WireEncoding::Proto => Encoding::Proto,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_ietf_is_chosen_when_offered_else_proto() {
        let e = |v: &[Encoding]| choose_encoding(&v.iter().map(|e| *e as i32).collect::<Vec<_>>());
        assert_eq!(e(&[Encoding::Proto, Encoding::JsonIetf]), Ok(WireEncoding::JsonIetf));
        assert_eq!(e(&[Encoding::Ascii, Encoding::Proto]), Ok(WireEncoding::Proto));
        assert_eq!(e(&[]), Ok(WireEncoding::JsonIetf), "a target that lists nothing is tried in JSON_IETF");
        assert_eq!(
            choose_encoding(&[Encoding::Json as i32, 42]),
            Err("neither JSON_IETF nor PROTO encoding is offered (offered: JSON, unknown(42))".into())
        );
    }
}
