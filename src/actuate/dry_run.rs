//! Dry-run output (contract section 3): one JSON object per path on stdout, at the
//! moment the controller would set it. Logs never go to stdout.

use std::io::Write;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::model::{AdminState, SetIntent};

/// One line of dry-run output. Field order is the contract's. `value` is the value's text
/// (`disable`, `false`); on the line it is written in the target profile's JSON form: a
/// string for SR Linux's admin-state, a boolean for OpenConfig's config/enabled.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct DryRunLine {
    pub target: String,
    pub group: String,
    pub path: String,
    #[serde(deserialize_with = "value_text")]
    pub value: String,
    pub reason: String,
}

impl DryRunLine {
    /// The value as written on the line.
    pub fn json_value(&self) -> serde_json::Value {
        match crate::profile::of_set_path(&self.path).map(|p| p.admin_json(AdminState::Enable)) {
            Some(serde_json::Value::Bool(_)) => {
                serde_json::from_str(&self.value).unwrap_or_else(|_| self.value.clone().into())
            }
            _ => self.value.clone().into(),
        }
    }
}

impl Serialize for DryRunLine {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("DryRunLine", 5)?;
        st.serialize_field("target", &self.target)?;
        st.serialize_field("group", &self.group)?;
        st.serialize_field("path", &self.path)?;
        st.serialize_field("value", &self.json_value())?;
        st.serialize_field("reason", &self.reason)?;
        st.end()
    }
}

/// Reads `value` back from a line: a string or a boolean, kept as text.
fn value_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => s,
        v => v.to_string(),
    })
}

impl DryRunLine {
    pub fn from_intent(intent: &SetIntent) -> Vec<DryRunLine> {
        intent
            .changes
            .iter()
            .map(|(path, value)| DryRunLine {
                target: intent.target.to_string(),
                group: intent.group.clone(),
                path: path.clone(),
                value: match crate::gnmi::set::admin_json(path, *value) {
                    serde_json::Value::String(s) => s,
                    v => v.to_string(),
                },
                reason: intent.reason.clone(),
            })
            .collect()
    }
}

/// Where dry-run lines go: stdout for people and scripts, a channel for tests and the demo.
#[derive(Clone)]
pub enum DryRunSink {
    Stdout,
    Channel(mpsc::UnboundedSender<DryRunLine>),
}

impl DryRunSink {
    pub fn emit(&self, intent: &SetIntent) {
        for line in DryRunLine::from_intent(intent) {
            match self {
                DryRunSink::Stdout => {
                    // A struct of strings always serializes; stdout gone (EPIPE) is not our error to raise.
                    let text = serde_json::to_string(&line).unwrap_or_default();
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{text}");
                    let _ = out.flush();
                }
                DryRunSink::Channel(tx) => {
                    let _ = tx.send(line);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_path_with_contract_keys_in_order() {
        let intent = SetIntent {
            target: "leaf1".into(),
            group: "leaf1-es1".into(),
            changes: vec![
                ("/interface[name=ethernet-1/1]/admin-state".into(), AdminState::Disable),
                ("/interface[name=ethernet-1/2]/admin-state".into(), AdminState::Disable),
            ],
            reason: "0/2 uplinks up, required 1".into(),
        };
        let lines = DryRunLine::from_intent(&intent);
        assert_eq!(lines.len(), 2);
        assert_eq!(
            serde_json::to_string(&lines[0]).unwrap(),
            r#"{"target":"leaf1","group":"leaf1-es1","path":"/interface[name=ethernet-1/1]/admin-state","value":"disable","reason":"0/2 uplinks up, required 1"}"#
        );
        assert_eq!(lines[1].path, "/interface[name=ethernet-1/2]/admin-state");
    }

    #[test]
    fn an_openconfig_line_carries_the_openconfig_path_and_a_json_boolean() {
        let intent = SetIntent {
            target: "leaf-eos1".into(),
            group: "eos-es1".into(),
            changes: vec![("/interfaces/interface[name=Ethernet1]/config/enabled".into(), AdminState::Disable)],
            reason: "0/2 uplinks up, required 1".into(),
        };
        let line = &DryRunLine::from_intent(&intent)[0];
        assert_eq!(line.value, "false");
        let text = serde_json::to_string(line).unwrap();
        assert_eq!(
            text,
            r#"{"target":"leaf-eos1","group":"eos-es1","path":"/interfaces/interface[name=Ethernet1]/config/enabled","value":false,"reason":"0/2 uplinks up, required 1"}"#
        );
        assert_eq!(&serde_json::from_str::<DryRunLine>(&text).unwrap(), line);
    }
}
