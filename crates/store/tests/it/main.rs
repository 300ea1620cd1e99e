//! Integration tests of ferrocket-store against real files in temporary directories.

mod common;
mod flush;
mod readwrite;
