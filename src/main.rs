//! `switchboard`: one binary for every role.
//!
//! The services arrive with their issues; today the binary answers questions about the event
//! contract that operators and analytics teams ask first.

use std::io::Write;
use std::process::ExitCode;

use switchboard_events::registry::registry;

const USAGE: &str = "\
usage: switchboard <command>

commands:
  schemas           list every event schema: id, subject, version, fingerprint
  schema <id>       print the self-contained Avro schema with that id
  version           print the version
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut out = std::io::stdout().lock();
    let result = match args.as_slice() {
        ["schemas"] => list_schemas(&mut out),
        ["schema", id] => print_schema(&mut out, id),
        ["version" | "--version" | "-V"] => {
            writeln!(out, "switchboard {}", env!("CARGO_PKG_VERSION")).map_err(Into::into)
        }
        ["help" | "--help" | "-h"] => write!(out, "{USAGE}").map_err(Into::into),
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
