//! Arguments of `berth identity ...` (user-assigned identities and their federated credentials) and of
//! `berth acr identity ...`, with the Azure CLI's words. Parsing only.

use clap::{Args, Subcommand};

use super::{AcrNameArgs, ConfirmArgs, TagsArg};

/// The audience federated credentials get when `--audiences` is left out, as in az.
pub const DEFAULT_AUDIENCE: &str = "api://AzureADTokenExchange";

#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Create a user-assigned identity.
    Create(IdentityCreateArgs),
    /// Show a user-assigned identity.
    Show(IdentityNameArgs),
    /// List user-assigned identities.
    List(IdentityListArgs),
    /// Delete a user-assigned identity (its principal and federated credentials go with it).
    Delete(IdentityNameArgs),
    /// Manage federated identity credentials under user-assigned identities.
    FederatedCredential {
        #[command(subcommand)]
        command: FederatedCredentialCommand,
    },
    /// Manage workload token endpoints (IMDS and App Service protocols) of resources with identities.
    Endpoint {
        #[command(subcommand)]
        command: super::IdentityEndpointCommand,
    },
}

#[derive(Debug, Args)]
pub struct IdentityCreateArgs {
    /// Name of the resource group.
    #[arg(short = 'g', long)]
    pub resource_group: String,
    /// The name of the identity resource.
    #[arg(short = 'n', long)]
    pub name: String,
    /// Location (default: the resource group's).
    #[arg(short = 'l', long)]
    pub location: Option<String>,
    #[command(flatten)]
    pub tags: TagsArg,
}

#[derive(Debug, Args)]
pub struct IdentityNameArgs {
    /// Name of the resource group.
    #[arg(short = 'g', long)]
    pub resource_group: String,
    /// The name of the identity resource.
    #[arg(short = 'n', long)]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct IdentityListArgs {
    /// Only the identities of this resource group.
    #[arg(short = 'g', long)]
    pub resource_group: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum FederatedCredentialCommand {
    /// Create a federated identity credential under an existing user-assigned identity.
    Create(FederatedCredentialCreateArgs),
    /// Show a federated identity credential.
    Show(FederatedCredentialNameArgs),
    /// List the federated identity credentials of a user-assigned identity.
    List(FederatedCredentialListArgs),
    /// Delete a federated identity credential.
    Delete(FederatedCredentialDeleteArgs),
}

#[derive(Debug, Args)]
pub struct FederatedCredentialNameArgs {
    /// Name of the resource group.
    #[arg(short = 'g', long)]
    pub resource_group: String,
    /// The name of the identity resource.
    #[arg(long)]
    pub identity_name: String,
    /// The name of the federated identity credential.
    #[arg(short = 'n', long)]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct FederatedCredentialCreateArgs {
    #[command(flatten)]
    pub credential: FederatedCredentialNameArgs,
    /// The openId connect metadata URL of the issuer of the identity provider (the `iss` of its tokens).
    #[arg(long)]
    pub issuer: String,
    /// The sub value in the token sent to Azure AD for getting the user-assigned identity's token.
    #[arg(long)]
    pub subject: String,
    /// The aud values in the token sent to Azure AD for getting the user-assigned identity's token.
    #[arg(long, num_args = 1.., default_value = DEFAULT_AUDIENCE)]
    pub audiences: Vec<String>,
}

#[derive(Debug, Args)]
pub struct FederatedCredentialListArgs {
    /// Name of the resource group.
    #[arg(short = 'g', long)]
    pub resource_group: String,
    /// The name of the identity resource.
    #[arg(long)]
    pub identity_name: String,
}

#[derive(Debug, Args)]
pub struct FederatedCredentialDeleteArgs {
    #[command(flatten)]
    pub credential: FederatedCredentialNameArgs,
    #[command(flatten)]
    pub confirm: ConfirmArgs,
}

#[derive(Debug, Subcommand)]
pub enum AcrIdentityCommand {
    /// Assign managed identities to a container registry.
    Assign(AcrIdentityArgs),
    /// Remove managed identities from a container registry.
    Remove(AcrIdentityArgs),
    /// Show the managed identities of a container registry.
    Show(AcrNameArgs),
}

#[derive(Debug, Args)]
pub struct AcrIdentityArgs {
    #[command(flatten)]
    pub registry: AcrNameArgs,
    /// Space-separated names or IDs of identities; `[system]` is the registry's system-assigned identity.
    #[arg(long, num_args = 1.., required = true, value_name = "IDENTITY")]
    pub identities: Vec<String>,
}

/// `--assign-identity [system] <name or ID>...` of `acr create` and `acr update`.
#[derive(Debug, Args)]
pub struct AssignIdentityArg {
    /// Space-separated names or IDs of identities to assign; `[system]` is the registry's system-assigned
    /// identity (the default when no value is given).
    #[arg(long, num_args = 0.., value_name = "IDENTITY")]
    pub assign_identity: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use crate::args::{AcrCommand, Cli, Command};
    use clap::Parser as _;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("berth").chain(args.iter().copied()))
    }

    #[test]
    fn identity_commands_take_az_arguments() {
        let cli = parse(&["identity", "create", "-g", "rg", "-n", "id1", "--tags", "a=b"]).unwrap();
        let Command::Identity { command: IdentityCommand::Create(create) } = cli.command else {
            panic!("identity create")
        };
        assert_eq!((create.resource_group.as_str(), create.name.as_str()), ("rg", "id1"));
        assert!(create.location.is_none());
        let cli = parse(&[
            "identity",
            "federated-credential",
            "create",
            "--identity-name",
            "id1",
            "-g",
            "rg",
            "-n",
            "fic",
            "--issuer",
            "https://i",
            "--subject",
            "s",
        ])
        .unwrap();
        let Command::Identity {
            command:
                IdentityCommand::FederatedCredential {
                    command: FederatedCredentialCommand::Create(create),
                },
        } = cli.command
        else {
            panic!("federated-credential create")
        };
        assert_eq!(create.audiences, vec![DEFAULT_AUDIENCE.to_owned()]);
        assert!(parse(&[
            "identity",
            "federated-credential",
            "create",
            "--identity-name",
            "i",
            "-g",
            "g",
            "-n",
            "f"
        ])
        .is_err());
        assert!(parse(&["identity", "list"]).is_ok());
    }

    #[test]
    fn serve_takes_federation_issuers() {
        let cli = parse(&[
            "serve",
            "--federation-jwks",
            "https://issuer.example=/etc/berth/jwks.json",
            "--federation-jwks",
            "https://ci.example=http://127.0.0.1:9000/keys?x=1",
        ])
        .unwrap();
        let Command::Serve(serve) = cli.command else { panic!("serve") };
        assert_eq!(
            serve.federation_jwks,
            vec![
                ("https://issuer.example".to_owned(), "/etc/berth/jwks.json".to_owned()),
                ("https://ci.example".to_owned(), "http://127.0.0.1:9000/keys?x=1".to_owned()),
            ]
        );
        assert!(parse(&["serve", "--federation-jwks", "no-source"]).is_err());
        assert!(parse(&["serve", "--federation-jwks", "=/file"]).is_err());
    }

    #[test]
    fn acr_identity_takes_system_and_names() {
        let cli =
            parse(&["acr", "identity", "assign", "-n", "r", "--identities", "[system]", "id1"])
                .unwrap();
        let Command::Acr {
            command: AcrCommand::Identity { command: AcrIdentityCommand::Assign(a) },
        } = cli.command
        else {
            panic!("acr identity assign")
        };
        assert_eq!(a.identities, vec!["[system]".to_owned(), "id1".to_owned()]);
        assert!(parse(&["acr", "identity", "remove", "-n", "r"]).is_err());
        let cli =
            parse(&["acr", "create", "-g", "g", "-n", "r", "--sku", "Basic", "--assign-identity"])
                .unwrap();
        let Command::Acr { command: AcrCommand::Create(create) } = cli.command else {
            panic!("acr create")
        };
        assert_eq!(create.identity.assign_identity, Some(vec![]));
    }
}
