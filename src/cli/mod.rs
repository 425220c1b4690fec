//! The operator's and auditor's commands: `replay`, `verify`, `export`, `rebuild`, `archive`,
//! and `tenant` (the admin API's tenants and settings).
//!
//! A thin layer. Offline (`--data-dir`) it opens the backends `serve` writes and calls the very
//! operations the services run: the query service's replay, verification and export encoder
//! (`switchboard_query::audit`, `export::encode`), the projector's rebuild, the archiver's run.
//! Online (`--url`) it asks a running query service's HTTP API for the same operations and
//! writes what it answers, so both give the same bytes. Exit codes are [`Exit`].

mod offline;
mod online;
mod progress;
mod rebuild;
mod tenant;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;
use switchboard_events::Timestamp;
use switchboard_query::export::Format;
use switchboard_query::{QueryError, Scope};

use crate::ConfigArgs;

/// `after_help` text followed by the exit codes every command shares.
macro_rules! concat_help {
    ($text:expr) => {
        concat!(
            $text,
            "\n\nExit codes:\n  \
0  done (verify: every chain intact; rebuild: digests equal)\n  \
1  usage: bad flags or configuration, or a request the query service refused (token, unknown id)\n  \
2  a check failed: verify found a broken chain (naming the first bad tenant, conversation and \
seq), rebuild's read models differ from the data directory's, or archive left a conversation \
hot because its chain does not verify\n  \
3  I/O or connection error: the data directory or the query service cannot be read, or a \
stream ended early\n  \
4  the data directory is in use by a running `switchboard serve` (ask it with --url instead)"
        )
    };
}

/// How a command ended: its process exit status, what scripts rely on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Usage = 1,
    CheckFailed = 2,
    Io = 3,
    Busy = 4,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// Why a command stopped, with the exit code that says so.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn usage(error: impl Into<anyhow::Error>) -> Self {
        Self {
            exit: Exit::Usage,
            error: error.into(),
        }
    }

    pub fn io(error: impl Into<anyhow::Error>) -> Self {
        Self {
            exit: Exit::Io,
            error: error.into(),
        }
    }
}

/// Classifies an error by its cause: a lock held by `serve`, a request the query service
/// refuses (the caller's to fix), or anything else (I/O).
impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        let exit = error
            .chain()
            .find_map(|cause| {
                if let Some(switchboard_log::LogError::Locked { .. }) = cause.downcast_ref() {
                    return Some(Exit::Busy);
                }
                let query: &QueryError = cause.downcast_ref()?;
                Some(if (400..500).contains(&query.kind().http()) {
                    Exit::Usage
                } else {
                    Exit::Io
                })
            })
            .unwrap_or(Exit::Io);
        Self { exit, error }
    }
}

impl From<QueryError> for Failure {
    fn from(error: QueryError) -> Self {
        anyhow::Error::from(error).into()
    }
}

/// The operator's and auditor's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay conversations for an audit: one NDJSON line per event, decoded, with its original
    /// frame in hex, in chain order. Offline from a data directory, or online from a query service.
    #[command(after_help = concat_help!(
        "Examples:\n  \
switchboard replay --data-dir ./switchboard-data --tenant acme --conversation c-42\n  \
switchboard replay --data-dir ./switchboard-data --tenant acme --from 1764547200000000 -o acme.ndjson\n  \
switchboard replay --url http://127.0.0.1:7103 --token \"$AUDITOR\" --conversation c-42"
    ))]
    Replay {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        scope: ScopeArgs,
        #[command(flatten)]
        output: Output,
    },
    /// Verify the hash chain of conversations and their head against the one the projector
    /// recorded. Prints one JSON verdict per conversation; exits 2 naming the first broken one.
    /// Offline it checks both copies: the history the query service serves (read models,
    /// archive, log) and the log's own frames.
    #[command(after_help = concat_help!(
        "Examples:\n  \
switchboard verify --data-dir ./switchboard-data --tenant acme\n  \
switchboard verify --data-dir ./switchboard-data --tenant acme --conversation c-42\n  \
switchboard verify --url http://127.0.0.1:7103 --token \"$AUDITOR\" || echo \"chain broken: $?\""
    ))]
    Verify {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Export conversations as NDJSON audit lines or an Avro object container file whose
    /// records hold each event's original frame, byte for byte what the query API exports.
    #[command(after_help = concat_help!(
        "Examples:\n  \
switchboard export --data-dir ./switchboard-data --tenant acme --format avro -o acme.avro\n  \
switchboard export --url http://127.0.0.1:7103 --token \"$SUPERVISOR\" --conversation c-42"
    ))]
    Export {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        scope: ScopeArgs,
        /// The file format.
        #[arg(long, value_enum, default_value = "ndjson")]
        format: ExportFormat,
        #[command(flatten)]
        output: Output,
    },
    /// Rebuild the read models from the event log with the projector's own fold, into a fresh
    /// directory (compared with the data directory's by digest) or, with --force, in place.
    /// Prints the rebuilt read models' digest. Offline only: stop `serve` first.
    #[command(after_help = concat_help!(
        "In place, every event is folded again into the data directory's store under a fresh \
consumer name: rows the log implies are rewritten; data keys, the archive manifest and \
checkpoints stay. Conversations archived from the data directory come back hot in a fresh \
directory (its manifest is empty), so their digests differ after an archive run.\n\n\
Examples:\n  \
switchboard rebuild --data-dir ./switchboard-data --into /tmp/rebuilt\n  \
switchboard rebuild --data-dir ./switchboard-data --force"
    ))]
    Rebuild {
        #[command(flatten)]
        data: ConfigArgs,
        /// Build the read models in DIR/store, which must not hold a store yet (unless --force),
        /// and compare them with the data directory's.
        #[arg(long, value_name = "DIR")]
        into: Option<PathBuf>,
        /// Without --into: rebuild in the data directory's own store. With it: replace the
        /// store DIR holds.
        #[arg(long)]
        force: bool,
    },
    /// Run the archiver once: move conversations resolved longer than `archive.after_days`
    /// from the hot store to the cold archive, verifying each chain first. Offline only.
    #[command(after_help = concat_help!(
        "Examples:\n  \
switchboard archive --data-dir ./switchboard-data\n  \
switchboard archive --data-dir ./switchboard-data --set archive.after_days=7"
    ))]
    Archive {
        #[command(flatten)]
        data: ConfigArgs,
    },
    /// Create tenants and change their settings, through a running ingest instance's admin
    /// API. Every change is an event of record: who changed what, when.
    #[command(
        subcommand,
        after_help = concat_help!(
            "Examples:\n  \
switchboard tenant create acme --name \"Acme\" --origin https://acme.example --token \"$OPERATOR\"\n  \
switchboard tenant set acme --set csat=false --token \"$OPERATOR\"\n  \
switchboard tenant show acme --identity-secret --token \"$OPERATOR\"\n  \
switchboard tenant list --url http://127.0.0.1:7102 --token \"$OPERATOR\""
        )
    )]
    Tenant(tenant::TenantCommand),
}

/// Where the data comes from: a data directory (offline) or a running query service (online).
#[derive(Debug, Args)]
pub struct Target {
    /// Ask the query service at this HTTP address (e.g. http://127.0.0.1:7103) instead of reading
    /// a data directory.
    #[arg(long, value_name = "URL", conflicts_with_all = ["config", "data_dir", "overrides", "tenant"])]
    url: Option<String>,
    /// The bearer token for --url: an auditor's, or a supervisor's to export. The tenant is the
    /// token's.
    #[arg(
        long,
        value_name = "TOKEN",
        requires = "url",
        conflicts_with = "token_file"
    )]
    token: Option<String>,
    /// Read the bearer token for --url from this file.
    #[arg(long, value_name = "FILE", requires = "url")]
    token_file: Option<PathBuf>,
    /// The tenant to read, offline.
    #[arg(long, value_name = "TENANT")]
    tenant: Option<String>,
    #[command(flatten)]
    data: ConfigArgs,
}

/// Which events: one conversation, or the tenant's in a time range.
#[derive(Debug, Args)]
pub struct ScopeArgs {
    /// Only this conversation, every event of it.
    #[arg(long, value_name = "ID")]
    conversation: Option<String>,
    /// The tenant's events that occurred at or after this instant, in microseconds since the Unix
    /// epoch (default: the beginning).
    #[arg(long, value_name = "MICROS", conflicts_with = "conversation")]
    from: Option<i64>,
    /// The tenant's events that occurred before this instant, in microseconds since the Unix
    /// epoch (default: no end).
    #[arg(long, value_name = "MICROS", conflicts_with = "conversation")]
    to: Option<i64>,
}

impl ScopeArgs {
    fn scope(&self) -> Scope {
        match &self.conversation {
            Some(id) => Scope::Conversation(id.clone()),
            None => Scope::Tenant {
                from: Timestamp(self.from.unwrap_or(0)),
                to: Timestamp(self.to.unwrap_or(i64::MAX)),
            },
        }
    }
}

/// Where the output goes.
#[derive(Debug, Args)]
pub struct Output {
    /// Write to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
}

impl Output {
    fn open(&self) -> Result<Box<dyn Write>, Failure> {
        Ok(match &self.output {
            None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            Some(path) => Box::new(std::io::BufWriter::new(
                std::fs::File::create(path).map_err(|e| {
                    Failure::io(anyhow::anyhow!("creating {}: {e}", path.display()))
                })?,
            )),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Ndjson,
    Avro,
}

impl From<ExportFormat> for Format {
    fn from(format: ExportFormat) -> Self {
        match format {
            ExportFormat::Ndjson => Format::Ndjson,
            ExportFormat::Avro => Format::Avro,
        }
    }
}

/// What replay and export ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    Replay,
    Export(Format),
}

/// Runs one of the commands to its end: the exit code, after the error on stderr.
pub fn run(command: Command) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return report(Failure::io(e)),
    };
    match runtime.block_on(dispatch(command)) {
        Ok(exit) => exit.into(),
        Err(failure) => report(failure),
    }
}

fn report(failure: Failure) -> ExitCode {
    eprintln!("switchboard: {:#}", failure.error);
    failure.exit.into()
}

async fn dispatch(command: Command) -> Result<Exit, Failure> {
    match command {
        Command::Replay {
            target,
            scope,
            output,
        } => stream(&target, &scope, &output, Job::Replay).await,
        Command::Export {
            target,
            scope,
            format,
            output,
        } => stream(&target, &scope, &output, Job::Export(format.into())).await,
        Command::Verify { target, scope } => match target.url.is_some() {
            true => online::Online::new(&target)?.verify(&scope).await,
            false => offline::Offline::open(&target).await?.verify(&scope).await,
        },
        Command::Rebuild { data, into, force } => rebuild::rebuild(&data, into, force).await,
        Command::Archive { data } => rebuild::archive(&data).await,
        Command::Tenant(command) => tenant::run(command).await,
    }
}

async fn stream(
    target: &Target,
    scope: &ScopeArgs,
    output: &Output,
    job: Job,
) -> Result<Exit, Failure> {
    let mut out = output.open()?;
    let summary = match target.url.is_some() {
        true => {
            online::Online::new(target)?
                .stream(scope, job, &mut out)
                .await?
        }
        false => {
            offline::Offline::open(target)
                .await?
                .stream(scope, job, &mut out)
                .await?
        }
    };
    out.flush()
        .map_err(|e| Failure::io(anyhow::anyhow!("writing the output: {e}")))?;
    let verb = match job {
        Job::Replay => "replayed",
        Job::Export(_) => "exported",
    };
    eprintln!("{verb} {summary}");
    Ok(Exit::Ok)
}

/// The first broken chain verify met.
#[derive(Debug)]
struct Broken {
    tenant: String,
    conversation: String,
    seq: Value,
    problem: Value,
    copy: Option<&'static str>,
}

/// Verify's output: one JSON verdict line per conversation on stdout, and the first broken
/// chain, which decides the exit code.
#[derive(Debug, Default)]
struct Verdicts {
    broken: Option<Broken>,
}

impl Verdicts {
    /// Prints `verdict` (the query service's JSON) with the conversation, and with the copy
    /// it concerns when that is not the served history.
    fn push(
        &mut self,
        tenant: &str,
        conversation: &str,
        verdict: Value,
        copy: Option<&'static str>,
    ) -> Result<(), Failure> {
        let Value::Object(mut line) = verdict else {
            return Err(Failure::io(anyhow::anyhow!(
                "the verdict of {conversation} is not a JSON object: {verdict}"
            )));
        };
        line.insert("conversation_id".into(), conversation.into());
        if let Some(copy) = copy {
            line.insert("copy".into(), copy.into());
        }
        if line.get("verdict").and_then(Value::as_str) == Some("broken") && self.broken.is_none() {
            self.broken = Some(Broken {
                tenant: tenant.to_owned(),
                conversation: conversation.to_owned(),
                seq: line.get("seq").cloned().unwrap_or(Value::Null),
                problem: line.get("problem").cloned().unwrap_or(Value::Null),
                copy,
            });
        }
        writeln!(std::io::stdout().lock(), "{}", Value::Object(line))
            .map_err(|e| Failure::io(anyhow::anyhow!("writing the output: {e}")))
    }

    fn finish(self, summary: progress::Summary) -> Exit {
        let checked = format!(
            "verified {} conversations ({} events intact) in {:.2} s",
            summary.conversations,
            summary.events,
            summary.took.as_secs_f64()
        );
        match self.broken {
            None => {
                eprintln!("{checked}: every chain intact");
                Exit::Ok
            }
            Some(b) => {
                let problem = b
                    .problem
                    .as_str()
                    .map_or(b.problem.to_string(), str::to_owned);
                let copy = b
                    .copy
                    .map_or(String::new(), |c| format!(", in the {c}'s copy"));
                eprintln!(
                    "{checked}: chain broken: tenant {}, conversation {}, seq {} ({problem}{copy})",
                    b.tenant, b.conversation, b.seq
                );
                Exit::CheckFailed
            }
        }
    }
}
