//! The command line: every command, flag and global option of `berth`, with the same words as the
//! Azure CLI. Parsing only; no I/O happens here (commands live in `crate::commands`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod bicep;
mod deployment;
mod identity;
pub use bicep::*;
pub use deployment::*;
pub use identity::*;
mod workload;
pub use workload::*;
mod webapp;
pub use webapp::*;
mod role;
pub use role::*;

/// berth: a self-hosted container registry with managed identities and Azure-style RBAC.
#[derive(Debug, Parser)]
#[command(name = "berth", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts, as in the Azure CLI.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// JMESPath query string. See http://jmespath.org/ for more information and examples.
    #[arg(long, global = true, value_name = "JMESPATH", value_parser = parse_query)]
    pub query: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, global = true, value_enum, ignore_case = true, default_value_t = OutputFormat::Json)]
    pub output: OutputFormat,
    /// Name or ID of subscription.
    #[arg(short = 's', long, global = true, value_name = "ID_OR_NAME")]
    pub subscription: Option<String>,
    /// Log requests and responses to stderr (tokens and secrets are redacted).
    #[arg(long, global = true)]
    pub debug: bool,
    /// Only show errors, suppressing warnings.
    #[arg(long, global = true)]
    pub only_show_errors: bool,
}

/// The `-o/--output` choices of the Azure CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Json,
    Jsonc,
    Yaml,
    Yamlc,
    Table,
    Tsv,
    None,
}

/// `--query` is compiled while parsing so a bad expression is a usage error (exit code 2), as in az.
fn parse_query(text: &str) -> Result<String, String> {
    jmespath::compile(text).map(|_| text.to_owned()).map_err(|e| e.to_string())
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the berth server.
    Serve(ServeArgs),
    /// Log in to a berth server.
    Login(LoginArgs),
    /// Log out and forget the stored credentials.
    Logout,
    /// Manage the subscriptions of the logged-in account.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Manage resource groups.
    Group {
        #[command(subcommand)]
        command: GroupCommand,
    },
    /// Manage container registries.
    Acr {
        #[command(subcommand)]
        command: AcrCommand,
    },
    /// Manage applications and service principals.
    Ad {
        #[command(subcommand)]
        command: AdCommand,
    },
    /// Manage managed identities (user-assigned) and their federated credentials.
    Identity {
        #[command(subcommand)]
        command: IdentityCommand,
    },
    /// Manage role definitions, role assignments and the audit log of decisions.
    Role {
        #[command(subcommand)]
        command: RoleCommand,
    },
    /// Manage App Service plans.
    Appservice {
        #[command(subcommand)]
        command: AppserviceCommand,
    },
    /// Manage web apps that run container images, pulled with their managed identity.
    Webapp {
        #[command(subcommand)]
        command: WebappCommand,
    },
    /// Compile Bicep files to ARM templates (the real Bicep CLI's command line; also runs as `bicep`).
    Bicep(BicepArgs),
    /// Manage Azure Resource Manager template deployments.
    Deployment {
        #[command(subcommand)]
        command: DeploymentCommand,
    },
}

/// The command line with `bicep ...` turned into `berth bicep ...` when the binary runs under the
/// name `bicep` (a link on PATH), so tools that call Bicep, such as the Azure CLI, get berth's compiler.
pub fn normalize_argv(argv: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let invoked_as_bicep = argv
        .first()
        .and_then(|program| std::path::Path::new(program).file_stem())
        .is_some_and(|stem| stem.eq_ignore_ascii_case("bicep"));
    if !invoked_as_bicep {
        return argv;
    }
    let mut rewritten = vec![std::ffi::OsString::from("berth"), std::ffi::OsString::from("bicep")];
    rewritten.extend(argv.into_iter().skip(1));
    rewritten
}

/// `berth serve`: each flag can also come from a `BERTH_*` environment variable.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Directory for the database, blobs, TLS material and bootstrap credentials.
    #[arg(long, env = "BERTH_DATA_DIR", value_name = "DIR", default_value = "./berth-data")]
    pub data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "BERTH_LISTEN", value_name = "ADDR", default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// `sqlite://...` or `postgres://...` (default: SQLite in the data directory).
    #[arg(long, env = "BERTH_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// Blob store URL such as `file:///var/lib/berth/blobs` (default: the data directory).
    #[arg(long, env = "BERTH_BLOB_STORE", value_name = "URL")]
    pub blob_store: Option<String>,
    /// PEM certificate chain to serve instead of the generated one.
    #[arg(long, env = "BERTH_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `--tls-cert`.
    #[arg(long, env = "BERTH_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP instead of HTTPS.
    #[arg(long, env = "BERTH_INSECURE_HTTP", conflicts_with_all = ["tls_cert", "tls_key"])]
    pub insecure_http: bool,
    /// Address registries as `<name>.<domain>` (Host routing) instead of by path.
    #[arg(long, env = "BERTH_REGISTRY_DOMAIN", value_name = "DOMAIN")]
    pub registry_domain: Option<String>,
    /// The URL clients use to reach this server (default: derived from the listen address).
    #[arg(long, env = "BERTH_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Trust an external OIDC issuer for workload identity federation: its JWKS from a file or an http:// URL on
    /// loopback, read at start. Repeatable; comma-separated in the environment variable.
    #[arg(long, env = "BERTH_FEDERATION_JWKS", value_name = "ISSUER=PATH_OR_URL", value_delimiter = ',',
          value_parser = parse_federation_jwks)]
    pub federation_jwks: Vec<(String, String)>,
    /// How often the background garbage collector runs (`90s`, `1h`, `2d`; `0` turns it off).
    #[arg(long, env = "BERTH_GC_INTERVAL", value_name = "DURATION", default_value = "1h",
          value_parser = parse_duration)]
    pub gc_interval: std::time::Duration,
    /// How long an unreferenced blob or upload is kept before garbage collection may remove it.
    #[arg(long, env = "BERTH_GC_GRACE_PERIOD", value_name = "DURATION", default_value = "1h",
          value_parser = parse_duration)]
    pub gc_grace_period: std::time::Duration,
    /// How long audited authorization decisions are kept (`90d`; `0` keeps them forever); the background
    /// collector removes older ones.
    #[arg(long, env = "BERTH_AUDIT_RETENTION", value_name = "DURATION", default_value = "90d",
          value_parser = parse_duration)]
    pub audit_retention: std::time::Duration,
    /// Run no host agent in this process (web apps' images are then pulled by other nodes only).
    #[arg(long, env = "BERTH_NO_HOST_AGENT")]
    pub no_host_agent: bool,
    /// How often the host agent looks for web apps to pull (it also wakes at once on this node's changes).
    #[arg(long, env = "BERTH_SITE_POLL_INTERVAL", value_name = "DURATION", default_value = "2s",
          value_parser = parse_duration)]
    pub site_poll_interval: std::time::Duration,
    /// The first retry delay after a failed pull; it doubles per failure up to `--site-retry-max`.
    #[arg(long, env = "BERTH_SITE_RETRY_BASE", value_name = "DURATION", default_value = "5s",
          value_parser = parse_duration)]
    pub site_retry_base: std::time::Duration,
    /// The longest retry delay of a failing pull.
    #[arg(long, env = "BERTH_SITE_RETRY_MAX", value_name = "DURATION", default_value = "5m",
          value_parser = parse_duration)]
    pub site_retry_max: std::time::Duration,
    /// An OCI runtime (crun, runc or youki; a path or a name on PATH) to run pulled web apps with.
    #[arg(long, env = "BERTH_OCI_RUNTIME", value_name = "PATH")]
    pub oci_runtime: Option<PathBuf>,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    berth_server::parse_duration(text).map_err(|e| e.to_string())
}

/// `ISSUER=SOURCE`, split at the first `=` (issuers are URLs without `=`).
fn parse_federation_jwks(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((issuer, source)) if !issuer.trim().is_empty() && !source.trim().is_empty() => {
            Ok((issuer.trim().to_owned(), source.trim().to_owned()))
        }
        _ => Err(format!("'{text}' is not ISSUER=PATH_OR_URL")),
    }
}

/// `berth login --server URL --service-principal -u ID -p SECRET --tenant T`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The berth server, e.g. `https://127.0.0.1:8443`.
    #[arg(long, env = "BERTH_SERVER", value_name = "URL")]
    pub server: String,
    /// Log in with a service principal (the only login kind berth's CLI supports).
    #[arg(long, required = true)]
    pub service_principal: bool,
    /// The service principal's client (application) ID.
    #[arg(short = 'u', long, value_name = "CLIENT_ID")]
    pub username: String,
    /// The service principal's client secret.
    #[arg(short = 'p', long, value_name = "SECRET")]
    pub password: String,
    /// The tenant the service principal belongs to.
    #[arg(short = 't', long, value_name = "TENANT")]
    pub tenant: String,
    /// PEM bundle to trust for the server (stored with the login).
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Log in even when the principal has no subscription.
    #[arg(long)]
    pub allow_no_subscriptions: bool,
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Show the default (or `--subscription`) subscription.
    Show,
    /// List the subscriptions of the logged-in account.
    List,
    /// Set the default subscription (`--subscription`).
    Set,
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a resource group, or update its location and tags.
    Create(GroupCreateArgs),
    /// Show a resource group.
    Show(GroupNameArgs),
    /// List resource groups.
    List,
    /// Delete a resource group and everything in it.
    Delete(GroupDeleteArgs),
}

#[derive(Debug, Args)]
pub struct GroupCreateArgs {
    /// Name of the resource group.
    #[arg(short = 'n', long = "name", visible_short_alias = 'g', visible_alias = "resource-group")]
    pub name: String,
    /// Location, e.g. `westeurope`.
    #[arg(short = 'l', long)]
    pub location: String,
    #[command(flatten)]
    pub tags: TagsArg,
}

#[derive(Debug, Args)]
pub struct GroupNameArgs {
    /// Name of the resource group.
    #[arg(short = 'n', long = "name", visible_short_alias = 'g', visible_alias = "resource-group")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct GroupDeleteArgs {
    /// Name of the resource group.
    #[arg(short = 'n', long = "name", visible_short_alias = 'g', visible_alias = "resource-group")]
    pub name: String,
    #[command(flatten)]
    pub confirm: ConfirmArgs,
    /// Do not wait for the deletion to finish.
    #[arg(long)]
    pub no_wait: bool,
}

/// `--tags k=v k2=v2`; `--tags ""` clears the tags.
#[derive(Debug, Args)]
pub struct TagsArg {
    /// Space-separated tags: key[=value] [key[=value] ...]. Use "" to clear existing tags.
    #[arg(long, num_args = 0.., value_name = "KEY=VALUE")]
    pub tags: Option<Vec<String>>,
}

impl TagsArg {
    /// The tags as a JSON object, when `--tags` was given.
    pub fn to_json(&self) -> Option<serde_json::Value> {
        let tags = self.tags.as_ref()?;
        let mut map = serde_json::Map::new();
        for tag in tags.iter().filter(|tag| !tag.is_empty()) {
            let (key, value) = tag.split_once('=').unwrap_or((tag.as_str(), ""));
            map.insert(key.to_owned(), serde_json::Value::String(value.to_owned()));
        }
        Some(serde_json::Value::Object(map))
    }
}

#[derive(Debug, Args)]
pub struct ConfirmArgs {
    /// Do not prompt for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum AcrCommand {
    /// Create a container registry.
    Create(AcrCreateArgs),
    /// Show a container registry.
    Show(AcrNameArgs),
    /// List container registries.
    List(AcrListArgs),
    /// Update a container registry.
    Update(AcrUpdateArgs),
    /// Delete a container registry.
    Delete(AcrDeleteArgs),
    /// Log in to a container registry through its token exchange.
    Login(AcrLoginArgs),
    /// Manage repositories (image names) of a container registry.
    Repository {
        #[command(subcommand)]
        command: AcrRepositoryCommand,
    },
    /// Manage the manifests of a container registry's repositories.
    Manifest {
        #[command(subcommand)]
        command: AcrManifestCommand,
    },
    /// Delete what no tag or manifest reaches any more (untagged manifests, unreferenced blobs).
    Gc(AcrGcArgs),
    /// Manage the managed identities of a container registry.
    Identity {
        #[command(subcommand)]
        command: AcrIdentityCommand,
    },
    /// Explain what a principal may do in a registry, and which role assignment allows it.
    CheckAccess(AcrCheckAccessArgs),
}

#[derive(Debug, Args)]
pub struct AcrLoginArgs {
    #[command(flatten)]
    pub registry: AcrNameArgs,
    /// Print the registry refresh token as JSON instead of storing it for the container tools.
    #[arg(short = 't', long)]
    pub expose_token: bool,
}

#[derive(Debug, Subcommand)]
pub enum AcrRepositoryCommand {
    /// List the repositories of a container registry.
    List(AcrRepositoryListArgs),
    /// Show the tags of a repository.
    ShowTags(AcrShowTagsArgs),
    /// Show the attributes of a repository.
    Show(AcrRepositoryArgs),
    /// Delete a repository with all its tags and manifests.
    Delete(AcrRepositoryDeleteArgs),
}

/// `--orderby` of the listing commands, as az spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OrderBy {
    #[value(name = "time_asc")]
    TimeAsc,
    #[value(name = "time_desc")]
    TimeDesc,
}

impl OrderBy {
    /// The registry API's `orderby` value.
    pub fn as_query(self) -> &'static str {
        match self {
            OrderBy::TimeAsc => "timeasc",
            OrderBy::TimeDesc => "timedesc",
        }
    }
}

#[derive(Debug, Args)]
pub struct AcrRepositoryListArgs {
    #[command(flatten)]
    pub registry: AcrNameArgs,
    /// Limit the number of items in the results.
    #[arg(long)]
    pub top: Option<usize>,
}

#[derive(Debug, Args)]
pub struct AcrShowTagsArgs {
    #[command(flatten)]
    pub registry: AcrNameArgs,
    /// The name of the repository.
    #[arg(long)]
    pub repository: String,
    /// Show detailed information (digest, times, attributes) for each tag.
    #[arg(long)]
    pub detail: bool,
    /// Order the items in the results.
    #[arg(long, value_enum)]
    pub orderby: Option<OrderBy>,
    /// Limit the number of items in the results.
    #[arg(long)]
    pub top: Option<usize>,
}

#[derive(Debug, Args)]
pub struct AcrRepositoryArgs {
    #[command(flatten)]
    pub registry: AcrNameArgs,
    /// The name of the repository.
    #[arg(long)]
    pub repository: String,
}

#[derive(Debug, Args)]
pub struct AcrRepositoryDeleteArgs {
    #[command(flatten)]
    pub registry: AcrNameArgs,
    /// The name of the repository.
    #[arg(long)]
    pub repository: String,
    #[command(flatten)]
    pub confirm: ConfirmArgs,
}

#[derive(Debug, Subcommand)]
pub enum AcrManifestCommand {
    /// List the metadata of the manifests in a repository.
    ListMetadata(AcrManifestListArgs),
}

/// az's manifest arguments: `-r/--registry` names the registry, `-n/--name` the repository.
#[derive(Debug, Args)]
pub struct AcrManifestListArgs {
    /// Name of the container registry.
    #[arg(short = 'r', long)]
    pub registry: String,
    /// The name of the repository.
    #[arg(short = 'n', long = "name")]
    pub repository: String,
    /// Name of the resource group (looked up when absent).
    #[arg(short = 'g', long)]
    pub resource_group: Option<String>,
    /// Order the items in the results.
    #[arg(long, value_enum)]
    pub orderby: Option<OrderBy>,
    /// Limit the number of items in the results.
    #[arg(long)]
    pub top: Option<usize>,
}

#[derive(Debug, Args)]
pub struct AcrGcArgs {
    #[command(flatten)]
    pub registry: AcrNameArgs,
    /// Report what would be deleted without deleting it.
    #[arg(long)]
    pub dry_run: bool,
    /// Also delete manifests that no tag, index or present subject refers to.
    #[arg(long)]
    pub untagged: bool,
}

/// The SKUs of a container registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Sku {
    Basic,
    Standard,
    Premium,
}

impl Sku {
    pub fn as_str(self) -> &'static str {
        match self {
            Sku::Basic => "Basic",
            Sku::Standard => "Standard",
            Sku::Premium => "Premium",
        }
    }
}

#[derive(Debug, Args)]
pub struct AcrCreateArgs {
    /// Name of the resource group.
    #[arg(short = 'g', long)]
    pub resource_group: String,
    /// Name of the container registry.
    #[arg(short = 'n', long)]
    pub name: String,
    /// The SKU of the container registry.
    #[arg(long, value_enum, ignore_case = true)]
    pub sku: Sku,
    /// Location (default: the resource group's).
    #[arg(short = 'l', long)]
    pub location: Option<String>,
    /// Enable the admin user.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", value_parser = parse_bool)]
    pub admin_enabled: Option<bool>,
    /// Allow pulls without credentials.
    #[arg(long, visible_alias = "anonymous-pull-enabled", value_name = "BOOL", num_args = 0..=1,
          default_missing_value = "true", value_parser = parse_bool)]
    pub allow_anonymous_pull: Option<bool>,
    #[command(flatten)]
    pub tags: TagsArg,
    #[command(flatten)]
    pub identity: AssignIdentityArg,
    /// Role assignment mode: `rbac` (registry permissions) or `rbac-abac` (+ ABAC repository permissions).
    #[arg(long, value_enum)]
    pub role_assignment_mode: Option<RoleAssignmentModeArg>,
}

/// az's words for a registry's `roleAssignmentMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleAssignmentModeArg {
    Rbac,
    RbacAbac,
}

impl RoleAssignmentModeArg {
    /// The ARM property value.
    pub fn as_arm(self) -> &'static str {
        match self {
            RoleAssignmentModeArg::Rbac => "LegacyRegistryPermissions",
            RoleAssignmentModeArg::RbacAbac => "AbacRepositoryPermissions",
        }
    }
}

#[derive(Debug, Args)]
pub struct AcrNameArgs {
    /// Name of the container registry.
    #[arg(short = 'n', long)]
    pub name: String,
    /// Name of the resource group (looked up when absent).
    #[arg(short = 'g', long)]
    pub resource_group: Option<String>,
}

#[derive(Debug, Args)]
pub struct AcrListArgs {
    /// Only the registries of this resource group.
    #[arg(short = 'g', long)]
    pub resource_group: Option<String>,
}

#[derive(Debug, Args)]
pub struct AcrUpdateArgs {
    #[command(flatten)]
    pub registry: AcrNameArgs,
    /// The SKU of the container registry.
    #[arg(long, value_enum, ignore_case = true)]
    pub sku: Option<Sku>,
    /// Allow pulls without credentials.
    #[arg(long, visible_alias = "allow-anonymous-pull", value_name = "BOOL", num_args = 0..=1,
          default_missing_value = "true", value_parser = parse_bool)]
    pub anonymous_pull_enabled: Option<bool>,
    /// Enable the admin user.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", value_parser = parse_bool)]
    pub admin_enabled: Option<bool>,
    #[command(flatten)]
    pub tags: TagsArg,
    #[command(flatten)]
    pub identity: AssignIdentityArg,
    /// Role assignment mode: `rbac` (registry permissions) or `rbac-abac` (+ ABAC repository permissions).
    #[arg(long, value_enum)]
    pub role_assignment_mode: Option<RoleAssignmentModeArg>,
}

#[derive(Debug, Args)]
pub struct AcrDeleteArgs {
    #[command(flatten)]
    pub registry: AcrNameArgs,
    #[command(flatten)]
    pub confirm: ConfirmArgs,
}

#[derive(Debug, Subcommand)]
pub enum AdCommand {
    /// Manage service principals.
    Sp {
        #[command(subcommand)]
        command: SpCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum SpCommand {
    /// Create an application, its service principal and a client secret.
    CreateForRbac(CreateForRbacArgs),
}

#[derive(Debug, Args)]
pub struct CreateForRbacArgs {
    /// Display name of the service principal (default: `berth-cli-<timestamp>`).
    #[arg(short = 'n', long, visible_alias = "display-name")]
    pub name: Option<String>,
}

/// az's three-state flags take `true`/`false` (any case); `yes`/`no` and `1`/`0` are accepted too.
fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        _ => Err(format!("'{text}' is not one of 'true', 'false'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("berth").chain(args.iter().copied()))
    }

    #[test]
    fn command_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_work_after_the_command() {
        let cli = parse(&["acr", "show", "-g", "g", "-n", "r", "--query", "id", "-o", "TSV"])
            .expect("valid");
        assert_eq!(cli.global.query.as_deref(), Some("id"));
        assert_eq!(cli.global.output, OutputFormat::Tsv);
        let Command::Acr { command: AcrCommand::Show(show) } = cli.command else {
            panic!("acr show expected")
        };
        assert_eq!((show.name.as_str(), show.resource_group.as_deref()), ("r", Some("g")));
    }

    #[test]
    fn output_defaults_to_json() {
        let cli = parse(&["group", "list"]).expect("valid");
        assert_eq!(cli.global.output, OutputFormat::Json);
        assert!(cli.global.query.is_none());
    }

    #[test]
    fn invalid_query_is_a_usage_error() {
        let error = parse(&["group", "list", "--query", "[?"]).expect_err("bad JMESPath");
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn unknown_output_format_is_a_usage_error() {
        let error = parse(&["group", "list", "-o", "xml"]).expect_err("bad format");
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn group_create_accepts_resource_group_alias_and_tags() {
        let cli =
            parse(&["group", "create", "-g", "rg1", "-l", "westeurope", "--tags", "a=b", "c"])
                .expect("valid");
        let Command::Group { command: GroupCommand::Create(create) } = cli.command else {
            panic!("group create")
        };
        assert_eq!(create.name, "rg1");
        assert_eq!(create.tags.to_json(), Some(serde_json::json!({"a": "b", "c": ""})));
    }

    #[test]
    fn empty_tags_clear_and_absent_tags_leave_alone() {
        let cli = parse(&["group", "create", "-n", "g", "-l", "x", "--tags", ""]).expect("valid");
        let Command::Group { command: GroupCommand::Create(create) } = cli.command else {
            panic!("group create")
        };
        assert_eq!(create.tags.to_json(), Some(serde_json::json!({})));
        let cli = parse(&["group", "create", "-n", "g", "-l", "x"]).expect("valid");
        let Command::Group { command: GroupCommand::Create(create) } = cli.command else {
            panic!("group create")
        };
        assert_eq!(create.tags.to_json(), None);
    }

    #[test]
    fn acr_create_parses_sku_case_insensitively_and_three_state_flags() {
        let cli = parse(&[
            "acr",
            "create",
            "-g",
            "g",
            "-n",
            "myacr",
            "--sku",
            "premium",
            "--admin-enabled",
            "false",
            "--allow-anonymous-pull",
        ])
        .expect("valid");
        let Command::Acr { command: AcrCommand::Create(create) } = cli.command else {
            panic!("acr create")
        };
        assert_eq!(create.sku, Sku::Premium);
        assert_eq!(create.admin_enabled, Some(false));
        assert_eq!(create.allow_anonymous_pull, Some(true));
    }

    #[test]
    fn acr_create_requires_a_known_sku() {
        assert_eq!(
            parse(&["acr", "create", "-g", "g", "-n", "r", "--sku", "Gold"])
                .map(|_| ())
                .unwrap_err()
                .exit_code(),
            2
        );
        assert_eq!(
            parse(&["acr", "create", "-g", "g", "-n", "r"]).map(|_| ()).unwrap_err().exit_code(),
            2
        );
    }

    #[test]
    fn acr_data_commands_take_az_arguments() {
        let cli = parse(&[
            "acr",
            "repository",
            "show-tags",
            "-n",
            "r",
            "--repository",
            "team/app",
            "--detail",
            "--orderby",
            "time_desc",
            "--top",
            "5",
        ])
        .expect("valid");
        let Command::Acr {
            command: AcrCommand::Repository { command: AcrRepositoryCommand::ShowTags(tags) },
        } = cli.command
        else {
            panic!("acr repository show-tags")
        };
        assert_eq!(
            (
                tags.registry.name.as_str(),
                tags.repository.as_str(),
                tags.detail,
                tags.orderby,
                tags.top
            ),
            ("r", "team/app", true, Some(OrderBy::TimeDesc), Some(5))
        );
        for args in [
            &["acr", "manifest", "list-metadata", "-r", "r", "-n", "app"][..],
            &["acr", "manifest", "list-metadata", "--registry", "r", "--name", "app"],
        ] {
            let cli = parse(args).expect("valid");
            let Command::Acr {
                command: AcrCommand::Manifest { command: AcrManifestCommand::ListMetadata(list) },
            } = cli.command
            else {
                panic!("acr manifest list-metadata")
            };
            assert_eq!((list.registry.as_str(), list.repository.as_str()), ("r", "app"));
        }
        let cli = parse(&["acr", "login", "-n", "r", "--expose-token"]).expect("valid");
        let Command::Acr { command: AcrCommand::Login(login) } = cli.command else {
            panic!("acr login")
        };
        assert!(login.expose_token);
        assert!(
            parse(&["acr", "repository", "show-tags", "-n", "r"]).is_err(),
            "--repository is required"
        );
        assert!(parse(&[
            "acr",
            "repository",
            "show-tags",
            "-n",
            "r",
            "--repository",
            "a",
            "--orderby",
            "name"
        ])
        .is_err());
        let cli = parse(&["acr", "gc", "-n", "r", "--dry-run"]).expect("valid");
        let Command::Acr { command: AcrCommand::Gc(gc) } = cli.command else { panic!("acr gc") };
        assert!(gc.dry_run);
    }

    #[test]
    fn bool_values_are_validated() {
        assert_eq!(parse_bool("TRUE"), Ok(true));
        assert_eq!(parse_bool("no"), Ok(false));
        assert!(parse_bool("maybe").is_err());
    }

    #[test]
    fn login_needs_the_service_principal_flag() {
        let base = [
            "login",
            "--server",
            "https://127.0.0.1:8443",
            "-u",
            "id",
            "-p",
            "pw",
            "--tenant",
            "t",
        ];
        assert_eq!(parse(&base).map(|_| ()).unwrap_err().exit_code(), 2);
        let with_flag: Vec<&str> = base.iter().copied().chain(["--service-principal"]).collect();
        let cli = parse(&with_flag).expect("valid");
        let Command::Login(login) = cli.command else { panic!("login") };
        assert_eq!(
            (login.username.as_str(), login.password.as_str(), login.tenant.as_str()),
            ("id", "pw", "t")
        );
    }

    #[test]
    fn account_set_takes_the_global_subscription_flag() {
        let cli = parse(&["account", "set", "--subscription", "sub-1"]).expect("valid");
        assert_eq!(cli.global.subscription.as_deref(), Some("sub-1"));
        let cli = parse(&["account", "set", "-s", "sub-2"]).expect("valid");
        assert_eq!(cli.global.subscription.as_deref(), Some("sub-2"));
    }

    #[test]
    fn serve_defaults() {
        let cli = parse(&["serve"]).expect("valid");
        let Command::Serve(serve) = cli.command else { panic!("serve") };
        // The environment may set BERTH_* for the developer; only check what flags cannot override.
        if std::env::var_os("BERTH_LISTEN").is_none() {
            assert_eq!(serve.listen, SocketAddr::from(([127, 0, 0, 1], 8443)));
        }
        if std::env::var_os("BERTH_DATA_DIR").is_none() {
            assert_eq!(serve.data_dir, PathBuf::from("./berth-data"));
        }
    }

    #[test]
    fn serve_tls_flags_come_in_pairs() {
        assert!(parse(&["serve", "--tls-cert", "c.pem"]).is_err());
        assert!(parse(&["serve", "--tls-cert", "c.pem", "--tls-key", "k.pem"]).is_ok());
        assert!(parse(&["serve", "--insecure-http", "--tls-cert", "c.pem", "--tls-key", "k.pem"])
            .is_err());
    }
}
