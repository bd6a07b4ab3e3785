//! fabric-sim: a gNMI simulator of the reference fabric.
