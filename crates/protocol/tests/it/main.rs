//! Workspace-level checks that live with the bottom crate.

mod deps;
mod frames;
