//! opergroupd: subscribe to leaves over gNMI, decide per oper-group, enforce with gNMI Set.
//!
//! Flow, one direction: sources -> state -> policy -> actuators (see README.md).

pub mod config;
pub mod leader;
pub mod model;
pub mod paths;
