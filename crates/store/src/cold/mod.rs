//! Cold history: archived conversations as Avro container files in an object store, and the
//! reads that fall through to them.
//!
//! A file holds the events of some conversations of one tenant resolved on one day, at
//! `tenants/<tenant>/days/<yyyy-mm-dd>/<batch>.avro`. Its name is a digest of what it holds
//! (the tenant, the day, and each conversation's id, last seq and chain head, which fixes
//! every byte of its events): the same conversations always make a file of the same records
//! under the same name. A file that is already there is reused; one written again after a
//! crash holds the same records (not necessarily the same bytes: apache-avro orders the header
//! metadata as a hash map does), so a manifest entry never points at a file whose records
//! changed. The archiver writes the file first and records the manifest entry after
//! ([`ReadModels::archive`](crate::ReadModels::archive)), so the manifest never points at a
//! file that is not there.
//!
//! The local filesystem is the default object store; any other `object_store` backend is
//! passed to [`Archive::new`], and the `s3` cargo feature (off by default) adds
//! [`Archive::s3_from_env`].

mod format;
mod history;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use switchboard_events::id::{ConversationId, TenantId};

use crate::archive::ArchiveEntry;
use crate::error::StoreError;
use crate::report::Day;
use crate::timeline::TimelineEntry;

pub use format::{ArchivedEvent, FORMAT_KEY, FORMAT_VERSION, SCHEMA_V1};
pub use history::timeline_or_archive;

/// One conversation's events to archive: its whole timeline, seq 1 first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationEvents {
    pub conversation: ConversationId,
    pub entries: Vec<TimelineEntry>,
}

/// The object store that holds the archive files.
#[derive(Debug, Clone)]
pub struct Archive {
    objects: Arc<dyn ObjectStore>,
}

fn backend(operation: &'static str) -> impl Fn(object_store::Error) -> StoreError {
    move |e| StoreError::Backend {
        operation,
        retriable: !matches!(e, object_store::Error::NotFound { .. }),
        reason: e.to_string(),
    }
}

impl Archive {
    pub fn new(objects: Arc<dyn ObjectStore>) -> Self {
        Self { objects }
    }

    /// An archive in a local directory, created when missing.
    pub fn local(dir: &std::path::Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Backend {
            operation: "create the archive directory",
            reason: format!("{}: {e}", dir.display()),
            retriable: false,
        })?;
        let fs = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(backend("open the archive directory"))?;
        Ok(Self::new(Arc::new(fs)))
    }

    /// An archive in an S3-compatible bucket, configured from the `AWS_*` environment
    /// (endpoint, region, credentials).
    #[cfg(feature = "s3")]
    pub fn s3_from_env(bucket: &str) -> Result<Self, StoreError> {
        let s3 = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(backend("configure the s3 archive"))?;
        Ok(Self::new(Arc::new(s3)))
    }

    /// Writes the conversations of `tenant` resolved on `day` as one file, unless a file of
    /// the same name (hence the same content) is already there, and returns its path.
    pub async fn write(
        &self,
        tenant: &TenantId,
        day: Day,
        conversations: &[ConversationEvents],
    ) -> Result<String, StoreError> {
        let digest = batch_digest(tenant, day, conversations);
        let name = format!("{}.avro", hex(&digest[..16]));
        let path = Path::from_iter(["tenants", tenant.as_str(), "days", &iso_date(day), &name]);
        match self.objects.head(&path).await {
            Ok(_) => return Ok(path.to_string()),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(backend("look up an archive file")(e)),
        }
        let events: Vec<ArchivedEvent> = conversations
            .iter()
            .flat_map(|c| {
                c.entries.iter().map(|entry| ArchivedEvent {
                    tenant: tenant.clone(),
                    conversation: c.conversation.clone(),
                    entry: entry.clone(),
                })
            })
            .collect();
        let marker: [u8; 16] = digest[16..].try_into().expect("a digest has 32 bytes");
        let bytes = format::encode(&events, marker)?;
        let size = bytes.len();
        self.objects
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(backend("write an archive file"))?;
        crate::metrics::archive_written(size);
        Ok(path.to_string())
    }

    /// The archived timeline of a conversation, seq `first_seq` to `last_seq`, complete.
    pub async fn entries(&self, entry: &ArchiveEntry) -> Result<Vec<TimelineEntry>, StoreError> {
        let path =
            Path::parse(&entry.object).map_err(|e| StoreError::corrupt("archive_manifest", e))?;
        let bytes = self
            .objects
            .get(&path)
            .await
            .map_err(backend("read an archive file"))?
            .bytes()
            .await
            .map_err(backend("read an archive file"))?;
        let mut entries: Vec<TimelineEntry> = format::decode(&bytes)?
            .into_iter()
            .filter(|e| e.tenant == entry.tenant && e.conversation == entry.conversation)
            .map(|e| e.entry)
            .filter(|e| (entry.first_seq..=entry.last_seq).contains(&e.seq))
            .collect();
        entries.sort_by_key(|e| e.seq);
        entries.dedup_by_key(|e| e.seq);
        let expected = entry.last_seq.0 - entry.first_seq.0 + 1;
        if entries.len() as u64 != expected
            || entries.first().map(|e| e.seq) != Some(entry.first_seq)
        {
            return Err(StoreError::corrupt(
                "archive",
                format!(
                    "{} holds {} of the {expected} events of conversation {}",
                    entry.object,
                    entries.len(),
                    entry.conversation
                ),
            ));
        }
        Ok(entries)
    }

    /// The archived events of a conversation as their original frames, in seq order: what
    /// replay verifies against `entry.last_hash`.
    pub async fn read_conversation(
        &self,
        entry: &ArchiveEntry,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(self
            .entries(entry)
            .await?
            .into_iter()
            .map(|e| e.frame)
            .collect())
    }
}

/// What names a file: the format, the tenant, the day, and each conversation's id, number of
/// events, and first and last seq with the start of their frames, where the chain head is
/// (and the chain ties the head to every byte before it).
fn batch_digest(tenant: &TenantId, day: Day, conversations: &[ConversationEvents]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([FORMAT_VERSION]);
    hasher.update(tenant.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(day.0.to_be_bytes());
    for c in conversations {
        hasher.update(c.conversation.as_str().as_bytes());
        hasher.update([0]);
        hasher.update((c.entries.len() as u64).to_be_bytes());
        for e in [c.entries.first(), c.entries.last()].into_iter().flatten() {
            hasher.update(e.seq.0.to_be_bytes());
            hasher.update(&e.frame[..e.frame.len().min(64)]);
        }
    }
    hasher.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `yyyy-mm-dd` of a day (proleptic Gregorian calendar).
pub fn iso_date(day: Day) -> String {
    // Days to civil date, after Howard Hinnant's `civil_from_days`.
    let z = i64::from(day.0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
