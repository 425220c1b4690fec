//! The commands on a data directory: the backends `serve` writes, opened by this process (the
//! embedded log's lock refuses while `serve` holds it), and the query service's own operations
//! called on them as an auditor of the tenant.

use std::io::Write;
use std::sync::Arc;

use switchboard_events::chain::Verdict;
use switchboard_events::id::ConversationId;
use switchboard_events::principal::{Principal, Role};
use switchboard_query::export;
use switchboard_query::source::{ArchiveSource, HotStore};
use switchboard_query::{LogSource, Purpose, QueryService, Sources};

use super::progress::{Progress, Summary};
use super::{Exit, Failure, Job, ScopeArgs, Target, Verdicts};
use crate::backends::Backends;
use crate::config::{Config, LogBackend};
use crate::{ConfigArgs, roles};

/// A data directory, open.
pub struct Offline {
    backends: Backends,
    /// The query service as `serve` runs it: read models, then archive, then log.
    service: Arc<QueryService>,
    /// The same operations on the log's copy first (the read models fill in only what the log
    /// no longer retains): what verify checks besides what is served.
    log_first: Arc<QueryService>,
    auditor: Option<Principal>,
}

impl Drop for Offline {
    fn drop(&mut self) {
        self.backends.shutdown();
    }
}

/// The backends of a data directory, refusing a directory `serve` never wrote and one a
/// running `serve` holds.
pub async fn open_backends(args: &ConfigArgs) -> Result<(Config, Backends), Failure> {
    let config = args.load().map_err(Failure::usage)?;
    let log = config.data_dir.join("log");
    if config.log.backend == LogBackend::Embedded && !log.is_dir() {
        return Err(Failure::io(anyhow::anyhow!(
            "{} holds no event log: give the data directory `switchboard serve` writes (--data-dir)",
            config.data_dir.display()
        )));
    }
    match Backends::open(&config).await {
        Ok(backends) => Ok((config, backends)),
        Err(error) => {
            let failure = Failure::from(error);
            if failure.exit != Exit::Busy {
                return Err(failure);
            }
            Err(Failure {
                exit: Exit::Busy,
                error: anyhow::anyhow!(
                    "the data directory {} is in use by a running `switchboard serve`: stop it, \
                     or ask it with --url and --token",
                    config.data_dir.display()
                ),
            })
        }
    }
}

impl Offline {
    pub async fn open(target: &Target) -> Result<Self, Failure> {
        let (config, backends) = open_backends(&target.data).await?;
        let service = Arc::new(roles::query_service(&config, &backends)?);
        let log_first = Sources::new(vec![
            Arc::new(LogSource::new(backends.log.clone())),
            Arc::new(ArchiveSource {
                store: backends.store.clone(),
                archive: backends.archive.clone(),
            }),
            Arc::new(HotStore(backends.store.clone())),
        ]);
        let log_first = Arc::new(roles::query_service(&config, &backends)?.with_sources(log_first));
        let auditor = match &target.tenant {
            Some(tenant) => Some(Principal::new(
                tenant.parse().map_err(Failure::usage)?,
                Role::Auditor,
                "switchboard-cli".parse().map_err(Failure::usage)?,
            )),
            None => None,
        };
        Ok(Self {
            backends,
            service,
            log_first,
            auditor,
        })
    }

    fn auditor(&self) -> Result<&Principal, Failure> {
        self.auditor.as_ref().ok_or_else(|| {
            Failure::usage(anyhow::anyhow!(
                "give --tenant to read a data directory (or --url and --token to ask a running \
                 query service)"
            ))
        })
    }

    /// Replays or exports the scope into `out`, with the query service's encoder.
    pub async fn stream(
        &self,
        scope: &ScopeArgs,
        job: Job,
        out: &mut dyn Write,
    ) -> Result<Summary, Failure> {
        let (purpose, format) = match job {
            Job::Replay => (Purpose::Audit, export::Format::Ndjson),
            Job::Export(format) => (Purpose::Export, format),
        };
        let replay = self
            .service
            .replay(self.auditor()?, scope.scope(), purpose)
            .await?;
        let mut progress = Progress::spinner(match job {
            Job::Replay => "replaying",
            Job::Export(_) => "exporting",
        });
        let mut written = Ok(());
        export::encode(replay, format, |piece| {
            written = out.write_all(&piece.bytes);
            progress.add(
                piece.conversation.as_ref().map(ConversationId::as_str),
                piece.events as u64,
                piece.bytes.len() as u64,
            );
            std::future::ready(written.is_ok())
        })
        .await?;
        written.map_err(|e| Failure::io(anyhow::anyhow!("writing the output: {e}")))?;
        Ok(progress.finish())
    }

    /// The conversations of the scope, in replay order.
    async fn conversations(&self, scope: &ScopeArgs) -> Result<Vec<ConversationId>, Failure> {
        let mut replay = self
            .service
            .replay(self.auditor()?, scope.scope(), Purpose::Audit)
            .await?;
        let mut found: Vec<ConversationId> = Vec::new();
        while let Some(chunk) = replay.recv().await {
            let chunk = chunk?;
            if found.last() != Some(&chunk.conversation) {
                found.push(chunk.conversation);
            }
        }
        Ok(found)
    }

    /// Verifies each conversation of the scope as served and as the log holds it; prints one
    /// verdict line per conversation (the first broken copy's, else the served one).
    pub async fn verify(&self, scope: &ScopeArgs) -> Result<Exit, Failure> {
        let who = self.auditor()?;
        let conversations = self.conversations(scope).await?;
        let mut progress = Progress::spinner("verifying");
        let mut verdicts = Verdicts::default();
        for id in &conversations {
            let served = self.service.verify(who, id.as_str()).await?;
            let logged = self.log_first.verify(who, id.as_str()).await?;
            let (verdict, copy) = match (&served, &logged) {
                (Verdict::Intact { .. }, Verdict::Broken { .. }) => (logged, Some("log")),
                _ => (served, None),
            };
            let events = match verdict {
                Verdict::Intact { events, .. } => events,
                Verdict::Broken { .. } => 0,
            };
            let value = serde_json::to_value(&verdict)
                .map_err(|e| Failure::io(anyhow::anyhow!("rendering a verdict: {e}")))?;
            verdicts.push(who.tenant.as_str(), id.as_str(), value, copy)?;
            progress.add(Some(id.as_str()), events, 0);
        }
        Ok(verdicts.finish(progress.finish()))
    }
}
