//! End-to-end tests: the real `berth` binary against a real berth server (in-process, HTTPS with
//! its generated CA, SQLite), each test with its own server and its own config directory.

mod common;

mod account;
mod acr;
mod acr_data;
mod ad;
mod bicep;
mod bicep_modules;
mod crash;
mod deployment;
mod errors;
mod group;
mod identity;
mod role;
mod serve;
mod webapp;
mod workload;
