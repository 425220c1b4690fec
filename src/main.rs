//! `switchboard`: one binary for every role.

mod config;
mod serve;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use switchboard_events::principal::{Principal, Role};
use switchboard_events::registry::registry;

const USAGE: &str = "\
usage: switchboard <command> [options]

commands:
  serve             run every service in one process on the embedded log and store
  token             sign a development token for this instance:
                      --tenant T --role customer|agent|supervisor|auditor|service --subject S [--ttl SECONDS]
  schemas           list every event schema: id, subject, version, fingerprint
  schema <id>       print the self-contained Avro schema with that id
  version           print the version

options of serve and token:
  --config FILE     a TOML configuration file
  --data-dir DIR    where the data lives (default ./switchboard-data)
  --set KEY=VALUE   override one configuration key, e.g. --set listen.ingest_http=0.0.0.0:7102
configuration precedence: defaults < --config file < SWITCHBOARD_* environment < --set/--data-dir
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => run_serve(&args[1..]),
        Some("token") => run_token(&args[1..]),
        Some("schemas") if args.len() == 1 => list_schemas(&mut std::io::stdout().lock()),
        Some("schema") if args.len() == 2 => print_schema(&mut std::io::stdout().lock(), &args[1]),
        Some("version" | "--version" | "-V") => writeln!(
            std::io::stdout(),
            "switchboard {}",
            env!("CARGO_PKG_VERSION")
        )
        .map_err(Into::into),
        Some("help" | "--help" | "-h") => write!(std::io::stdout(), "{USAGE}").map_err(Into::into),
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Options shared by the commands that read the configuration, and the rest.
struct Options {
    config: Option<PathBuf>,
    overrides: Vec<String>,
    rest: Vec<(String, String)>,
}

fn options(args: &[String], known: &[&str]) -> anyhow::Result<Options> {
    let mut out = Options {
        config: None,
        overrides: Vec::new(),
        rest: Vec::new(),
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--config" => out.config = Some(PathBuf::from(value()?)),
            "--data-dir" => out.overrides.push(format!("data_dir={}", value()?)),
            "--set" => out.overrides.push(value()?),
            other if known.contains(&other) => out.rest.push((other.to_owned(), value()?)),
            other => anyhow::bail!("unknown option {other}; see `switchboard help`"),
        }
    }
    Ok(out)
}

fn load(options: &Options) -> anyhow::Result<config::Config> {
    config::load(
        options.config.as_deref(),
        &config::ProcessEnv,
        &options.overrides,
    )
}

fn run_serve(args: &[String]) -> anyhow::Result<()> {
    let options = options(args, &[])?;
    let config = load(&options)?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve::serve(config, async {
        let _ = tokio::signal::ctrl_c().await;
    }))
}

fn run_token(args: &[String]) -> anyhow::Result<()> {
    let options = options(args, &["--tenant", "--role", "--subject", "--ttl"])?;
    let get = |name: &str| {
        options
            .rest
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let tenant = get("--tenant")
        .ok_or_else(|| anyhow::anyhow!("--tenant is required"))?
        .parse()?;
    let subject = get("--subject")
        .ok_or_else(|| anyhow::anyhow!("--subject is required"))?
        .parse()?;
    let role: Role = serde_json::from_value(serde_json::Value::String(
        get("--role").unwrap_or("customer").to_owned(),
    ))
    .map_err(|_| {
        anyhow::anyhow!("--role must be customer, agent, supervisor, auditor or service")
    })?;
    let ttl = get("--ttl").map(str::parse).transpose()?.unwrap_or(3600);
    let token = serve::issue_token(
        &load(&options)?,
        &Principal::new(tenant, role, subject),
        ttl,
    )?;
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
