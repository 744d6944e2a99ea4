//! Arguments of `berth deployment group ...`, with the Azure CLI's words. Parsing only.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

#[derive(Debug, Subcommand)]
pub enum DeploymentCommand {
    /// Manage Azure Resource Manager template deployments at resource group.
    Group {
        #[command(subcommand)]
        command: DeploymentGroupCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeploymentGroupCommand {
    /// Start a deployment at resource group and wait for it to finish.
    Create(DeploymentTemplateArgs),
    /// Validate whether a template is valid at resource group.
    Validate(DeploymentTemplateArgs),
    /// Show what a deployment at resource group would change.
    WhatIf(DeploymentWhatIfArgs),
    /// Show a deployment at resource group.
    Show(DeploymentNameArgs),
    /// List the deployments at resource group.
    List(DeploymentListArgs),
    /// Delete a deployment at resource group (the record, not its resources).
    Delete(DeploymentNameArgs),
}

/// `Incremental` keeps the group's other resources; `Complete` deletes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeploymentModeArg {
    Incremental,
    Complete,
}

impl DeploymentModeArg {
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentModeArg::Incremental => "Incremental",
            DeploymentModeArg::Complete => "Complete",
        }
    }
}

#[derive(Debug, Args)]
pub struct DeploymentTemplateArgs {
    /// Name of the resource group.
    #[arg(short = 'g', long)]
    pub resource_group: String,
    /// The deployment name (default: the template file's name without its extension).
    #[arg(short = 'n', long)]
    pub name: Option<String>,
    /// A template file: `.bicep` (compiled by berth) or `.json` (an ARM template).
    #[arg(short = 'f', long)]
    pub template_file: PathBuf,
    /// Parameters: `KEY=VALUE` pairs, `@file.json` (a parameters file) or inline JSON; may be repeated.
    #[arg(short = 'p', long, num_args = 1.., action = clap::ArgAction::Append, value_name = "PARAMETERS")]
    pub parameters: Vec<String>,
    /// The deployment mode.
    #[arg(long, value_enum, ignore_case = true, default_value_t = DeploymentModeArg::Incremental)]
    pub mode: DeploymentModeArg,
    /// Do not wait for the deployment to finish (create only).
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Args)]
pub struct DeploymentWhatIfArgs {
    #[command(flatten)]
    pub template: DeploymentTemplateArgs,
    /// Print the result as JSON rather than as a readable diff.
    #[arg(long)]
    pub no_pretty_print: bool,
    /// No colours in the diff (also without a terminal or with NO_COLOR set).
    #[arg(long)]
    pub no_color: bool,
}

#[derive(Debug, Args)]
pub struct DeploymentNameArgs {
    /// Name of the resource group.
    #[arg(short = 'g', long)]
    pub resource_group: String,
    /// The deployment name.
    #[arg(short = 'n', long)]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct DeploymentListArgs {
    /// Name of the resource group.
    #[arg(short = 'g', long)]
    pub resource_group: String,
}
