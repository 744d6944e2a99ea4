//! Arguments of `berth appservice plan ...` and `berth webapp ...`, with the Azure CLI's words. Parsing only.

use clap::{Args, Subcommand};

use super::{ConfirmArgs, TagsArg};

#[derive(Debug, Subcommand)]
pub enum AppserviceCommand {
    /// Manage App Service plans.
    Plan {
        #[command(subcommand)]
        command: PlanCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Create an App Service plan.
    Create(PlanCreateArgs),
    /// Show an App Service plan.
    Show(PlanNameArgs),
    /// List App Service plans.
    List(WebListArgs),
    /// Delete an App Service plan (refused while web apps use it).
    Delete(PlanDeleteArgs),
}

#[derive(Debug, Args)]
pub struct PlanCreateArgs {
    /// Name of the resource group.
    #[arg(short = 'g', long)]
    pub resource_group: String,
    /// Name of the new App Service plan.
    #[arg(short = 'n', long)]
    pub name: String,
    /// Host web apps on Linux workers.
    #[arg(long)]
    pub is_linux: bool,
    /// The pricing tier, e.g. F1, B1, S1, P1V2, P0V3, P1V3.
    #[arg(long, default_value = "B1")]
    pub sku: String,
    /// Number of workers.
    #[arg(long, default_value_t = 1)]
    pub number_of_workers: u64,
    /// Location (default: the resource group's).
    #[arg(short = 'l', long)]
    pub location: Option<String>,
    #[command(flatten)]
    pub tags: TagsArg,
}

#[derive(Debug, Args)]
pub struct PlanNameArgs {
    /// Name of the resource group.
    #[arg(short = 'g', long)]
    pub resource_group: String,
    /// Name of the App Service plan.
    #[arg(short = 'n', long)]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct PlanDeleteArgs {
    #[command(flatten)]
    pub plan: PlanNameArgs,
    #[command(flatten)]
    pub confirm: ConfirmArgs,
}

#[derive(Debug, Args)]
pub struct WebListArgs {
    /// Only this resource group.
    #[arg(short = 'g', long)]
    pub resource_group: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum WebappCommand {
    /// Create a web app that runs a container image.
    Create(WebappCreateArgs),
    /// Show a web app (its `imagePull` says how the host agent's last pull went).
    Show(WebappNameArgs),
    /// List web apps.
    List(WebListArgs),
    /// Delete a web app (its system-assigned identity goes with it).
    Delete(WebappNameArgs),
    /// Restart a web app: the host agent pulls its image again at once.
    Restart(WebappNameArgs),
    /// Manage the web app's managed identities.
    Identity {
        #[command(subcommand)]
        command: WebappIdentityCommand,
    },
    /// Configure a web app.
    Config {
        #[command(subcommand)]
        command: WebappConfigCommand,
    },
    /// The host agent's log of a web app (pulls, outcomes, runtime hand-off).
    Log {
        #[command(subcommand)]
        command: WebappLogCommand,
    },
}

#[derive(Debug, Args)]
pub struct WebappNameArgs {
    /// Name of the resource group.
    #[arg(short = 'g', long)]
    pub resource_group: String,
    /// Name of the web app.
    #[arg(short = 'n', long)]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct WebappCreateArgs {
    #[command(flatten)]
    pub app: WebappNameArgs,
    /// Name or resource ID of the App Service plan (default: `<name>-plan`, a Linux B1 plan created if missing).
    #[arg(short = 'p', long)]
    pub plan: Option<String>,
    /// The container image, `<login server>/<repository>:<tag>`.
    #[arg(
        short = 'i',
        long,
        visible_alias = "deployment-container-image-name",
        value_name = "IMAGE"
    )]
    pub container_image_name: String,
    /// Identities to assign: `[system]` (the default when no value is given), names or IDs of user-assigned ones.
    #[arg(long, num_args = 0.., value_name = "IDENTITY")]
    pub assign_identity: Option<Vec<String>>,
    /// Pull the image with a managed identity instead of registry credentials.
    #[arg(long)]
    pub acr_use_identity: bool,
    /// The identity to pull with: `[system]` (default) or a user-assigned identity's name or ID.
    #[arg(long, value_name = "IDENTITY")]
    pub acr_identity: Option<String>,
    #[command(flatten)]
    pub tags: TagsArg,
}

#[derive(Debug, Subcommand)]
pub enum WebappIdentityCommand {
    /// Assign managed identities to the web app.
    Assign(WebappIdentityArgs),
    /// Remove managed identities from the web app.
    Remove(WebappIdentityArgs),
    /// Show the web app's managed identities.
    Show(WebappNameArgs),
}

#[derive(Debug, Args)]
pub struct WebappIdentityArgs {
    #[command(flatten)]
    pub app: WebappNameArgs,
    /// Space-separated identities: `[system]` (the default), names or IDs of user-assigned identities.
    #[arg(long, num_args = 0.., value_name = "IDENTITY")]
    pub identities: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum WebappConfigCommand {
    /// The web app's container settings.
    Container {
        #[command(subcommand)]
        command: ContainerCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Set the container image and how it is pulled; the host agent pulls again at once.
    Set(ContainerSetArgs),
    /// Show the container settings.
    Show(WebappNameArgs),
}

#[derive(Debug, Args)]
pub struct ContainerSetArgs {
    #[command(flatten)]
    pub app: WebappNameArgs,
    /// The container image, `<login server>/<repository>:<tag>`.
    #[arg(short = 'i', long, visible_alias = "docker-custom-image-name", value_name = "IMAGE")]
    pub container_image_name: Option<String>,
    /// Pull with a managed identity (`true`) or without credentials (`false`).
    #[arg(long, value_name = "BOOL")]
    pub acr_use_identity: Option<bool>,
    /// The identity to pull with: `[system]` or a user-assigned identity's name or ID.
    #[arg(long, value_name = "IDENTITY")]
    pub acr_identity: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum WebappLogCommand {
    /// Print the host agent's log of the web app.
    Tail(WebappNameArgs),
}

#[cfg(test)]
mod tests {
    use crate::args::{Cli, Command};
    use clap::Parser as _;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("berth").chain(args.iter().copied()))
    }

    #[test]
    fn webapp_create_takes_the_scenario_words() {
        let cli = parse(&[
            "webapp",
            "create",
            "--resource-group",
            "g",
            "--name",
            "app",
            "--container-image-name",
            "h:1/acr/img:tag",
            "--assign-identity",
            "[system]",
            "--acr-use-identity",
            "--acr-identity",
            "[system]",
        ])
        .unwrap();
        let Command::Webapp { command: WebappCommand::Create(create) } = cli.command else {
            panic!("create")
        };
        assert_eq!(create.assign_identity, Some(vec!["[system]".to_owned()]));
        assert!(create.acr_use_identity && create.plan.is_none());
        assert_eq!(create.acr_identity.as_deref(), Some("[system]"));
        assert!(
            parse(&["webapp", "create", "-g", "g", "-n", "a"]).is_err(),
            "the image is required"
        );
        assert!(
            parse(&["appservice", "plan", "create", "-g", "g", "-n", "p", "--is-linux"]).is_ok()
        );
        assert!(parse(&[
            "webapp",
            "config",
            "container",
            "set",
            "-g",
            "g",
            "-n",
            "a",
            "-i",
            "h.com/x:1"
        ])
        .is_ok());
        assert!(parse(&["webapp", "log", "tail", "-g", "g", "-n", "a"]).is_ok());
    }
}
