//! `switchboard`: one binary for every role.

mod backends;
mod cli;
mod config;
mod roles;
mod secrets;
mod serving;
mod telemetry;
mod tls;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use switchboard_events::principal::{Principal, Role as PrincipalRole};
use switchboard_events::registry::registry;

use crate::roles::Role;

/// Event-sourced customer-service messaging: chat widget, agent console, audit replay.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, disable_help_subcommand = true)]
#[command(
    after_help = "Run `switchboard <command> --help` for a command's options and an example.\n\
Configuration precedence: defaults < --config file < SWITCHBOARD_* environment < --set/--data-dir.\n\
Exit codes: 0 done, 1 usage or refused, 2 a check failed (verify: a broken chain), 3 I/O or \
connection error, 4 data directory in use by `serve`."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every role in one process (on the embedded log and store by default).
    #[command(after_help = "Example:\n  switchboard serve --data-dir ./switchboard-data")]
    Serve(ConfigArgs),
    /// Run some of the roles in this process, for a distributed deployment.
    #[command(
        after_help = "Roles: edge, ingest, router, projector, archiver, query.\n\
The router and, for now, the edge run in a process with the ingest role.\n\n\
Example:\n  switchboard run --roles ingest,router,edge --config switchboard.toml\n  \
switchboard run --roles projector,query --config switchboard.toml"
    )]
    Run {
        /// The roles to run, separated by commas.
        #[arg(long, value_delimiter = ',', required = true)]
        roles: Vec<Role>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Print the effective configuration (defaults, file, environment, flags), secrets masked.
    #[command(
        after_help = "Examples:\n  switchboard config --config switchboard.toml --set log.backend=kafka\n  switchboard config --config switchboard.toml --roles edge   # would an edge start?"
    )]
    Config {
        /// Also check that these roles (separated by commas) can run together in one process
        /// with this configuration, as `run --roles` would at start.
        #[arg(long, value_delimiter = ',')]
        roles: Vec<Role>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Sign a development token with this instance's secret.
    #[command(
        after_help = "Example:\n  switchboard token --tenant acme --role agent --subject agent-1"
    )]
    Token {
        #[arg(long)]
        tenant: String,
        /// customer, agent, supervisor, auditor or service.
        #[arg(long, default_value = "customer")]
        role: String,
        #[arg(long)]
        subject: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// List every event schema: id, subject, version, fingerprint.
    Schemas,
    /// Print the self-contained Avro schema with this id.
    #[command(after_help = "Example:\n  switchboard schema 2")]
    Schema {
        /// A schema id, as `switchboard schemas` lists them.
        id: String,
    },
    #[command(flatten)]
    Operate(cli::Command),
    /// Print the version.
    Version,
    /// Print this help.
    Help,
}

/// Where the configuration comes from.
#[derive(Debug, Args)]
struct ConfigArgs {
    /// A TOML configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where the data lives (default ./switchboard-data).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Override one configuration key, e.g. --set listen.ingest_http=0.0.0.0:7102.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

impl ConfigArgs {
    fn load(&self) -> anyhow::Result<config::Config> {
        let mut overrides = self.overrides.clone();
        if let Some(dir) = &self.data_dir {
            overrides.push(format!("data_dir={}", dir.display()));
        }
        config::load(self.config.as_deref(), &config::ProcessEnv, &overrides)
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                cli::Exit::Usage
            } else {
                cli::Exit::Ok
            };
            let _ = e.print();
            return code.into();
        }
    };
    let result = match cli.command {
        Command::Serve(args) => serve(&args, Role::ALL.into_iter().collect()),
        Command::Run { roles, config } => serve(&config, roles.into_iter().collect()),
        Command::Config { roles, config } => print_config(&config, roles),
        Command::Token {
            tenant,
            role,
            subject,
            ttl,
            config,
        } => token(&config, &tenant, &role, &subject, ttl),
        Command::Operate(command) => return cli::run(command),
        Command::Schemas => list_schemas(&mut std::io::stdout().lock()),
        Command::Schema { id } => print_schema(&mut std::io::stdout().lock(), &id),
        Command::Version => writeln!(
            std::io::stdout(),
            "switchboard {}",
            env!("CARGO_PKG_VERSION")
        )
        .map_err(Into::into),
        Command::Help => {
            use clap::CommandFactory;
            Cli::command().print_help().map_err(Into::into)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard: {e:#}");
            cli::Exit::Usage.into()
        }
    }
}

fn serve(args: &ConfigArgs, roles: BTreeSet<Role>) -> anyhow::Result<()> {
    let config = args.load()?;
    roles::check(&roles, &config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let names: Vec<&str> = roles.iter().map(|r| r.name()).collect();
    let telemetry =
        runtime.block_on(async { telemetry::init(&config.telemetry, &names.join(",")) })?;
    let served =
        runtime.block_on(async { roles::run(config, roles, serving::stop_requested()?).await });
    // The runtime still runs the exporter's connection: the last spans go out now.
    telemetry.shutdown();
    served
}

fn print_config(args: &ConfigArgs, roles: Vec<Role>) -> anyhow::Result<()> {
    let config = args.load()?;
    if !roles.is_empty() {
        roles::check(&roles.into_iter().collect(), &config)?;
    }
    write!(std::io::stdout(), "{}", config.masked_toml()?)?;
    Ok(())
}

fn token(
    args: &ConfigArgs,
    tenant: &str,
    role: &str,
    subject: &str,
    ttl: u64,
) -> anyhow::Result<()> {
    let role: PrincipalRole = serde_json::from_value(serde_json::Value::String(role.to_owned()))
        .map_err(|_| {
            anyhow::anyhow!("--role must be customer, agent, supervisor, auditor or service")
        })?;
    let principal = Principal::new(tenant.parse()?, role, subject.parse()?);
    let token = secrets::issue_token(&args.load()?, &principal, ttl)?;
    writeln!(std::io::stdout(), "{token}")?;
    Ok(())
}

fn list_schemas(out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "{:>4}  {:<3}  {:<16}  subject",
        "id", "ver", "fingerprint"
    )?;
    for v in registry().versions() {
        writeln!(
            out,
            "{:>4}  v{:<2}  {:<16}  {}",
            v.id,
            v.version,
            &v.fingerprint[..16],
            v.subject
        )?;
    }
    Ok(())
}

fn print_schema(out: &mut impl Write, id: &str) -> anyhow::Result<()> {
    let id: u32 = id
        .parse()
        .map_err(|_| anyhow::anyhow!("schema id {id:?} is not a number"))?;
    let version = registry().by_id(id).ok_or_else(|| {
        anyhow::anyhow!("no schema has id {id}; `switchboard schemas` lists them")
    })?;
    writeln!(out, "{}", version.schema_json)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn roles_parse_from_a_comma_list() {
        let cli =
            Cli::try_parse_from(["switchboard", "run", "--roles", "projector,query"]).unwrap();
        let Command::Run { roles, .. } = cli.command else {
            panic!("run parses as run");
        };
        assert_eq!(roles, vec![Role::Projector, Role::Query]);
        let error =
            Cli::try_parse_from(["switchboard", "run", "--roles", "edge,nope"]).unwrap_err();
        assert!(error.to_string().contains("nope"), "{error}");
    }
}
