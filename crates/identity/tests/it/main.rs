//! Integration tests of berth-identity's public API: signing, verification, forgery, rotation.

mod common;
mod forgery;
mod properties;
mod rotation;
mod tokens;
