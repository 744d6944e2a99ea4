//! Arguments of `berth identity endpoint ...`: a resource's workload token endpoints (register, show, rotate the
//! header secret, unregister). Parsing only.

use clap::{Args, Subcommand};

use super::ConfirmArgs;

#[derive(Debug, Subcommand)]
pub enum IdentityEndpointCommand {
    /// Register a resource as a workload: prints its IDENTITY_ENDPOINT, IDENTITY_HEADER (shown once) and IMDS
    /// endpoint. Registering again rotates the header.
    Create(IdentityEndpointArgs),
    /// Show a workload's endpoints (not its header).
    Show(IdentityEndpointArgs),
    /// Issue a new IDENTITY_HEADER; the old one stops working.
    Rotate(IdentityEndpointArgs),
    /// Unregister a workload: its listener closes and its header stops working.
    Delete(IdentityEndpointDeleteArgs),
}

#[derive(Debug, Args)]
pub struct IdentityEndpointArgs {
    /// The workload's resource ID (a registry, a web app, a user-assigned identity).
    #[arg(long, visible_alias = "ids", value_name = "ID")]
    pub resource: String,
}

#[derive(Debug, Args)]
pub struct IdentityEndpointDeleteArgs {
    #[command(flatten)]
    pub endpoint: IdentityEndpointArgs,
    #[command(flatten)]
    pub confirm: ConfirmArgs,
}
