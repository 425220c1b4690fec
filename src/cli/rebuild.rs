//! `rebuild` and `archive`: the projector's rebuild and the archiver's run, once, on a data
//! directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use switchboard_events::{Timestamp, Topic};
use switchboard_log::EventLog;
use switchboard_projector::rebuild::rebuild_with_progress;
use switchboard_store::ReadModels;
use switchboard_store::embedded::EmbeddedStore;

use super::offline::open_backends;
use super::progress::Progress;
use super::{Exit, Failure};
use crate::backends::{Backends, open_embedded_store};
use crate::{ConfigArgs, roles};

/// Records the rebuild reads from the log at a time.
const CHUNK: usize = 1024;

pub async fn rebuild(
    args: &ConfigArgs,
    into: Option<PathBuf>,
    force: bool,
) -> Result<Exit, Failure> {
    if into.is_none() && !force {
        return Err(Failure::usage(anyhow::anyhow!(
            "give --into DIR to rebuild into a fresh directory, or --force to rebuild in place"
        )));
    }
    let (config, backends) = open_backends(args).await?;
    let result = match into {
        Some(dir) => rebuild_into(&backends, &dir, force).await,
        None => rebuild_in_place(&backends, &config.data_dir).await,
    };
    backends.shutdown();
    result
}

/// Rebuilds into `dir/store` and compares the digest with the data directory's store.
async fn rebuild_into(backends: &Backends, dir: &Path, force: bool) -> Result<Exit, Failure> {
    let target = dir.join("store");
    if target.exists() {
        if !force {
            return Err(Failure::usage(anyhow::anyhow!(
                "{} already holds a store: give a fresh directory, or --force to replace it",
                target.display()
            )));
        }
        std::fs::remove_dir_all(&target)
            .map_err(|e| Failure::io(anyhow::anyhow!("removing {}: {e}", target.display())))?;
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::io(anyhow::anyhow!("creating {}: {e}", dir.display())))?;
    let store = Arc::new(
        open_embedded_store(&target, fresh_kek(), Default::default()).map_err(Failure::io)?,
    );
    let took = project(backends.log.as_ref(), store.clone(), "rebuild").await?;
    let rebuilt = digest(&store)?;
    print_digest(&rebuilt)?;
    let Some(live) = &backends.embedded_store else {
        eprintln!("rebuilt into {} ({took}); digest {rebuilt}", dir.display());
        return Ok(Exit::Ok);
    };
    let live = digest(live)?;
    let equal = live == rebuilt;
    eprintln!(
        "rebuilt into {} ({took}); digest {rebuilt}; the data directory's read models have \
         digest {live}: {}",
        dir.display(),
        if equal { "equal" } else { "DIFFERENT" }
    );
    Ok(if equal { Exit::Ok } else { Exit::CheckFailed })
}

/// Folds the log again into the data directory's own store, under a fresh consumer name so
/// that every record is read.
async fn rebuild_in_place(backends: &Backends, data: &Path) -> Result<Exit, Failure> {
    let consumer = format!("rebuild-{}", Timestamp::now().as_micros());
    let took = project(backends.log.as_ref(), backends.store.clone(), &consumer).await?;
    match &backends.embedded_store {
        Some(store) => {
            let digest = digest(store)?;
            print_digest(&digest)?;
            eprintln!(
                "rebuilt in place in {} ({took}); digest {digest}",
                data.display()
            );
        }
        None => eprintln!("rebuilt in place ({took}); the store has no digest"),
    }
    Ok(Exit::Ok)
}

/// Runs the projector's rebuild with a progress bar over every record of both topics; the
/// summary of what it did.
async fn project(
    log: &dyn EventLog,
    store: Arc<dyn ReadModels>,
    consumer: &str,
) -> Result<String, Failure> {
    let mut total = 0;
    for topic in [Topic::Agents, Topic::Conversations] {
        let Ok(partitions) = log.partitions(topic.name()).await else {
            continue;
        };
        for partition in 0..partitions {
            let range = log
                .offsets(topic.name(), partition)
                .await
                .map_err(anyhow::Error::from)?;
            total += range.end - range.start;
        }
    }
    let mut progress = Progress::bar("rebuilding", total);
    let mut seen = 0;
    let report = rebuild_with_progress(log, store, consumer, CHUNK, &mut |report| {
        progress.add(None, report.records - seen, 0);
        seen = report.records;
    })
    .await
    .map_err(anyhow::Error::from)?;
    let summary = progress.finish();
    Ok(format!(
        "{} records, {} refused by the fold, in {:.2} s",
        report.records,
        report.rejected,
        summary.took.as_secs_f64()
    ))
}

/// The digest on stdout, alone on its line, for scripts.
fn print_digest(digest: &str) -> Result<(), Failure> {
    use std::io::Write;
    writeln!(std::io::stdout().lock(), "{digest}")
        .map_err(|e| Failure::io(anyhow::anyhow!("writing the output: {e}")))
}

fn digest(store: &EmbeddedStore) -> Result<String, Failure> {
    store
        .projection_digest()
        .map_err(|e| Failure::io(anyhow::anyhow!("digesting the read models: {e}")))
}

pub async fn archive(args: &ConfigArgs) -> Result<Exit, Failure> {
    let (config, backends) = open_backends(args).await?;
    let progress = Progress::spinner("archiving");
    let run = roles::archiver_of(&config, &backends)
        .run_once(Timestamp::now())
        .await;
    let summary = progress.finish();
    backends.shutdown();
    let report = run.map_err(anyhow::Error::from)?;
    eprintln!(
        "archived {} conversations into {} files in {:.2} s; {} left hot because their chain \
         does not verify",
        report.conversations,
        report.files,
        summary.took.as_secs_f64(),
        report.refused
    );
    Ok(if report.refused == 0 {
        Exit::Ok
    } else {
        Exit::CheckFailed
    })
}

/// A throwaway key-encryption key: a rebuilt store holds no customer's data key (those are not
/// in the log), so nothing is ever wrapped under it.
fn fresh_kek() -> Arc<dyn switchboard_store::keywrap::KeyWrap> {
    switchboard_store::embedded::EmbeddedOptions::default().kek
}
