//! SR Linux interface names <-> Linux interface names.
//!
//! Linux names cannot hold `/` (and are at most 15 bytes), so the lab names the kernel
//! side the way SR Linux itself does on its Linux side: `ethernet-1/49` is `e1-49`.
//! Only names of that shape are served; `lo`, `mgmt0`, bridges and VXLAN devices are not.

/// `ethernet-1/49` -> `e1-49`; `None` for anything that is not `ethernet-<slot>/<port>`.
pub fn to_linux(srl: &str) -> Option<String> {
    let (slot, port) = srl.strip_prefix("ethernet-")?.split_once('/')?;
    numeric(slot).then_some(())?;
    numeric(port).then_some(())?;
    Some(format!("e{slot}-{port}"))
}

/// `e1-49` -> `ethernet-1/49`; `None` for any other Linux name.
pub fn to_srl(linux: &str) -> Option<String> {
    let (slot, port) = linux.strip_prefix('e')?.split_once('-')?;
    (numeric(slot) && numeric(port)).then(|| format!("ethernet-{slot}/{port}"))
}

fn numeric(s: &str) -> bool {
    !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_ethernet_names() {
        assert_eq!(to_linux("ethernet-1/49").as_deref(), Some("e1-49"));
        assert_eq!(to_srl("e1-49").as_deref(), Some("ethernet-1/49"));
        assert_eq!(to_srl(&to_linux("ethernet-2/1").unwrap()).as_deref(), Some("ethernet-2/1"));
    }

    #[test]
    fn other_names_are_not_served() {
        for linux in ["lo", "mgmt0", "br100", "vxlan100", "e1", "e-1", "e1-", "ex-1", "e1-1a"] {
            assert_eq!(to_srl(linux), None, "{linux}");
        }
        for srl in ["mgmt0", "ethernet-1", "ethernet-/1", "ethernet-1/x", "lag1"] {
            assert_eq!(to_linux(srl), None, "{srl}");
        }
    }
}
