//! Integration tests of the server: a real berth on 127.0.0.1:0 over HTTPS, on every metadata backend.

mod acr_metadata;
mod common;
mod control_plane;
mod deployments;
mod gc;
mod identities;
mod identity_provider;
mod lifecycle;
mod rbac;
mod real_clients;
mod registry;
mod registry_tokens;
mod sites;
mod workloads;
