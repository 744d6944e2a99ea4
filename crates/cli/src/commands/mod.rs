//! Command implementations. Each returns the JSON result az would print (`None` for commands that
//! print nothing); `main` applies `--query` and `--output` to it.

mod account;
mod acr;
mod acr_data;
mod ad;
mod bicep;
mod bicep_registry;
mod deployment;
mod group;
mod identity;
mod role;
mod serve;
mod webapp;
mod workload;

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::Result;
use serde_json::Value;

use crate::args::{
    AccountCommand, AcrCommand, AcrIdentityCommand, AcrManifestCommand, AcrRepositoryCommand,
    AdCommand, AppserviceCommand, BicepArgs, BicepCommand, Command, ContainerCommand,
    DeploymentCommand, DeploymentGroupCommand, FederatedCredentialCommand, GlobalArgs,
    GroupCommand, IdentityCommand, IdentityEndpointCommand, PlanCommand, RoleAssignmentCommand,
    RoleAuditCommand, RoleCommand, RoleDefinitionCommand, SpCommand, WebappCommand,
    WebappConfigCommand, WebappIdentityCommand, WebappLogCommand,
};
use crate::profile::ConfigDir;
use crate::session::Session;

/// A mistake in how a command was called that clap cannot see (exit code 2, like clap's errors).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// What every command may need: the global flags and the configuration directory.
pub struct Context<'a> {
    pub global: &'a GlobalArgs,
    pub config_dir: ConfigDir,
}

impl Context<'_> {
    /// Prints `WARNING: ...` to stderr unless `--only-show-errors`.
    pub fn warn(&self, message: &str) {
        if !self.global.only_show_errors {
            eprintln!("WARNING: {message}");
        }
    }

    /// An authenticated session; `command_name` is what az sends as `CommandName`.
    pub async fn session(&self, command_name: &str) -> Result<Session> {
        Session::open(&self.config_dir, command_name).await
    }

    /// The subscription ID the command works in.
    pub fn subscription_id(&self, session: &Session) -> Result<String> {
        Ok(session.subscription(self.global.subscription.as_deref())?.subscription_id.clone())
    }
}

/// Runs `command`; the value is what to print.
pub async fn run(command: Command, context: &Context<'_>) -> Result<Option<Value>> {
    match command {
        Command::Serve(args) => serve::run(args).await.map(|()| None),
        Command::Login(args) => account::login(args, context).await.map(Some),
        Command::Logout => account::logout(context).map(|()| None),
        Command::Account { command } => match command {
            AccountCommand::Show => account::show(context).map(Some),
            AccountCommand::List => account::list(context).map(Some),
            AccountCommand::Set => account::set(context).map(|()| None),
        },
        Command::Group { command } => match command {
            GroupCommand::Create(args) => group::create(args, context).await.map(Some),
            GroupCommand::Show(args) => group::show(args, context).await.map(Some),
            GroupCommand::List => group::list(context).await.map(Some),
            GroupCommand::Delete(args) => group::delete(args, context).await.map(|()| None),
        },
        Command::Acr { command } => match command {
            AcrCommand::Create(args) => acr::create(args, context).await.map(Some),
            AcrCommand::Show(args) => acr::show(args, context).await.map(Some),
            AcrCommand::List(args) => acr::list(args, context).await.map(Some),
            AcrCommand::Update(args) => acr::update(args, context).await.map(Some),
            AcrCommand::Delete(args) => acr::delete(args, context).await.map(|()| None),
            AcrCommand::Login(args) => acr_data::acr_login(args, context).await,
            AcrCommand::Repository { command } => match command {
                AcrRepositoryCommand::List(args) => {
                    acr_data::repository_list(args, context).await.map(Some)
                }
                AcrRepositoryCommand::ShowTags(args) => {
                    acr_data::repository_show_tags(args, context).await.map(Some)
                }
                AcrRepositoryCommand::Show(args) => {
                    acr_data::repository_show(args, context).await.map(Some)
                }
                AcrRepositoryCommand::Delete(args) => {
                    acr_data::repository_delete(args, context).await
                }
            },
            AcrCommand::Manifest { command: AcrManifestCommand::ListMetadata(args) } => {
                acr_data::manifest_list_metadata(args, context).await.map(Some)
            }
            AcrCommand::Gc(args) => acr_data::gc(args, context).await.map(Some),
            AcrCommand::Identity { command } => match command {
                AcrIdentityCommand::Assign(args) => {
                    identity::acr_assign(args, context).await.map(Some)
                }
                AcrIdentityCommand::Remove(args) => {
                    identity::acr_remove(args, context).await.map(Some)
                }
                AcrIdentityCommand::Show(args) => identity::acr_show(args, context).await.map(Some),
            },
            AcrCommand::CheckAccess(args) => role::acr_check_access(args, context).await.map(Some),
        },
        Command::Ad { command: AdCommand::Sp { command: SpCommand::CreateForRbac(args) } } => {
            ad::create_for_rbac(args, context).await.map(Some)
        }
        Command::Role { command } => match command {
            RoleCommand::Definition { command } => match command {
                RoleDefinitionCommand::List(args) => {
                    role::definition_list(args, context).await.map(Some)
                }
                RoleDefinitionCommand::Show(args) => {
                    role::definition_show(args, context).await.map(Some)
                }
                RoleDefinitionCommand::Create(args) => {
                    role::definition_create(args, context).await.map(Some)
                }
                RoleDefinitionCommand::Update(args) => {
                    role::definition_update(args, context).await.map(Some)
                }
                RoleDefinitionCommand::Delete(args) => {
                    role::definition_delete(args, context).await.map(|()| None)
                }
            },
            RoleCommand::Assignment { command } => match command {
                RoleAssignmentCommand::Create(args) => {
                    role::assignment_create(args, context).await.map(Some)
                }
                RoleAssignmentCommand::List(args) => {
                    role::assignment_list(args, context).await.map(Some)
                }
                RoleAssignmentCommand::Delete(args) => {
                    role::assignment_delete(args, context).await.map(|()| None)
                }
            },
            RoleCommand::Audit { command: RoleAuditCommand::List(args) } => {
                role::audit_list(args, context).await.map(Some)
            }
        },
        Command::Bicep(BicepArgs { version, command }) => match command {
            Some(BicepCommand::Build(args)) => bicep::build(args, context).await.map(|()| None),
            Some(BicepCommand::Lint(args)) => bicep::lint(args, context).await.map(|()| None),
            Some(BicepCommand::Format(args)) => bicep::format(args).map(|()| None),
            Some(BicepCommand::Restore(args)) => bicep::restore(args, context).await.map(|()| None),
            Some(BicepCommand::Publish(args)) => bicep::publish(args, context).await,
            None if version => bicep::version().map(|()| None),
            None => Err(UsageError(
                "the following arguments are required: build|lint|format|restore|publish (or --version)".to_owned(),
            )
            .into()),
        },
        Command::Deployment { command: DeploymentCommand::Group { command } } => match command {
            DeploymentGroupCommand::Create(args) => deployment::create(args, context).await,
            DeploymentGroupCommand::Validate(args) => {
                deployment::validate(args, context).await.map(Some)
            }
            DeploymentGroupCommand::WhatIf(args) => deployment::what_if(args, context).await,
            DeploymentGroupCommand::Show(args) => deployment::show(args, context).await.map(Some),
            DeploymentGroupCommand::List(args) => deployment::list(args, context).await.map(Some),
            DeploymentGroupCommand::Delete(args) => {
                deployment::delete(args, context).await.map(|()| None)
            }
        },
        Command::Identity { command } => match command {
            IdentityCommand::Create(args) => identity::create(args, context).await.map(Some),
            IdentityCommand::Show(args) => identity::show(args, context).await.map(Some),
            IdentityCommand::List(args) => identity::list(args, context).await.map(Some),
            IdentityCommand::Delete(args) => identity::delete(args, context).await.map(|()| None),
            IdentityCommand::Endpoint { command } => match command {
                IdentityEndpointCommand::Create(args) => {
                    workload::create(args, context).await.map(Some)
                }
                IdentityEndpointCommand::Show(args) => {
                    workload::show(args, context).await.map(Some)
                }
                IdentityEndpointCommand::Rotate(args) => {
                    workload::rotate(args, context).await.map(Some)
                }
                IdentityEndpointCommand::Delete(args) => {
                    workload::delete(args, context).await.map(|()| None)
                }
            },
            IdentityCommand::FederatedCredential { command } => match command {
                FederatedCredentialCommand::Create(args) => {
                    identity::credential_create(args, context).await.map(Some)
                }
                FederatedCredentialCommand::Show(args) => {
                    identity::credential_show(args, context).await.map(Some)
                }
                FederatedCredentialCommand::List(args) => {
                    identity::credential_list(args, context).await.map(Some)
                }
                FederatedCredentialCommand::Delete(args) => {
                    identity::credential_delete(args, context).await.map(|()| None)
                }
            },
        },
        Command::Appservice { command: AppserviceCommand::Plan { command } } => match command {
            PlanCommand::Create(args) => webapp::plan_create(args, context).await.map(Some),
            PlanCommand::Show(args) => webapp::plan_show(args, context).await.map(Some),
            PlanCommand::List(args) => webapp::plan_list(args, context).await.map(Some),
            PlanCommand::Delete(args) => webapp::plan_delete(args, context).await.map(|()| None),
        },
        Command::Webapp { command } => match command {
            WebappCommand::Create(args) => webapp::create(args, context).await.map(Some),
            WebappCommand::Show(args) => webapp::show(args, context).await.map(Some),
            WebappCommand::List(args) => webapp::list(args, context).await.map(Some),
            WebappCommand::Delete(args) => webapp::delete(args, context).await.map(|()| None),
            WebappCommand::Restart(args) => webapp::restart(args, context).await.map(|()| None),
            WebappCommand::Identity { command } => match command {
                WebappIdentityCommand::Assign(args) => {
                    webapp::identity_assign(args, context).await.map(Some)
                }
                WebappIdentityCommand::Remove(args) => {
                    webapp::identity_remove(args, context).await.map(Some)
                }
                WebappIdentityCommand::Show(args) => {
                    webapp::identity_show(args, context).await.map(Some)
                }
            },
            WebappCommand::Config { command: WebappConfigCommand::Container { command } } => {
                match command {
                    ContainerCommand::Set(args) => {
                        webapp::container_set(args, context).await.map(Some)
                    }
                    ContainerCommand::Show(args) => {
                        webapp::container_show(args, context).await.map(Some)
                    }
                }
            }
            WebappCommand::Log { command: WebappLogCommand::Tail(args) } => {
                webapp::log_tail(args, context).await.map(Some)
            }
        },
    }
}

/// The az confirmation for destructive commands: `--yes` skips it; without a terminal to ask on,
/// the command fails rather than guessing.
pub fn confirm(question: &str, yes: bool) -> Result<bool> {
    if yes {
        return Ok(true);
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        anyhow::bail!("Unable to prompt for confirmation as no tty available. Use --yes.");
    }
    let mut stderr = std::io::stderr();
    write!(stderr, "{question} (y/n): ")?;
    stderr.flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}
