//! gNMI messages and service stubs, generated at build time from `gnmi.proto`.
//! Shared by the controller and by fabric-sim so both speak exactly one wire shape.
#![allow(clippy::all, missing_docs)]

pub mod codec;

pub mod gnmi {
    tonic::include_proto!("gnmi");
}

pub use gnmi::*;
