//! Test helpers: a real `docker-registry` on 127.0.0.1, a tiny fake HTTP server,
//! and small images built in the blob store.
#![allow(dead_code)]

pub mod fake;
pub mod images;
pub mod registry;
pub mod sink;
pub mod token;
