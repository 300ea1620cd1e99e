//! Integration tests of ferrocket-store against real files in temporary directories.

mod busy;
mod common;
mod crash;
mod flush;
mod index;
mod model;
mod readwrite;
mod recovery;
mod replica;
mod retention;
