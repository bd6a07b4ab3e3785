//! Dry-run output (contract section 3): one JSON object per path on stdout, at the
//! moment the controller would set it. Logs never go to stdout.

use std::io::Write;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::model::SetIntent;

/// One line of dry-run output. Field order is the contract's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DryRunLine {
    pub target: String,
    pub group: String,
    pub path: String,
    pub value: String,
    pub reason: String,
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
                value: value.as_str().to_string(),
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
    use crate::model::AdminState;

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
}
