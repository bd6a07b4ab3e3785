//! opergroupd: subscribe to leaves over gNMI, decide per oper-group, enforce with gNMI Set.
//!
//! Flow, one direction: sources -> state -> policy -> actuators (see README.md).

pub mod actuate;
pub mod anycast;
pub mod app;
pub mod backoff;
pub mod brief;
pub mod check;
pub mod config;
pub mod controller;
pub mod demo;
pub mod fdlimit;
pub mod gnmi;
pub mod leader;
pub mod logwriter;
pub mod model;
pub mod plan;
pub mod policy;
pub mod profile;
pub mod safety;
pub mod sleep;
pub mod srl_paths;
pub mod state;
pub mod status;
