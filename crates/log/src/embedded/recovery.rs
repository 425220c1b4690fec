//! Opening the data directory: scanning segments and applying the recovery
//! rules of DESIGN.md (torn tail truncated, damage in the middle refused).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::config::{EmbeddedConfig, Recovery};
use super::partition::{PartitionState, TopicState};
use super::segment::{self, FILE_HEADER_LEN, Frame, Segment, SegmentIndex};
use crate::error::{LogError, Result};

const TOPIC_META: &str = "topic.meta";

pub(crate) fn topics_dir(config: &EmbeddedConfig) -> PathBuf {
    config.dir.join("topics")
}

/// Loads every topic under the data directory.
pub(crate) fn load_topics(config: &EmbeddedConfig) -> Result<HashMap<String, Arc<TopicState>>> {
    let root = topics_dir(config);
    fs::create_dir_all(&root).map_err(|e| LogError::io("create directory", &root, e))?;
    let mut topics = HashMap::new();
    for entry in fs::read_dir(&root).map_err(|e| LogError::io("list directory", &root, e))? {
        let entry = entry.map_err(|e| LogError::io("list directory", &root, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let dir = entry.path();
        let meta = dir.join(TOPIC_META);
        if !meta.exists() {
            // A topic whose creation crashed before its metadata landed.
            continue;
        }
        let text = fs::read_to_string(&meta).map_err(|e| LogError::io("read", &meta, e))?;
        let count: u32 = text
            .trim()
            .strip_prefix("partitions=")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| LogError::Corrupt {
                file: meta.clone(),
                position: 0,
                reason: "expected partitions=<n>".into(),
            })?;
        let mut partitions = Vec::with_capacity(count as usize);
        for id in 0..count {
            partitions.push(Arc::new(load_partition(
                config,
                &name,
                id,
                &dir.join(id.to_string()),
            )?));
        }
        topics.insert(name.clone(), Arc::new(TopicState::new(&name, partitions)));
    }
    Ok(topics)
}

/// Creates a topic's directories, first segments and metadata (last, so a
/// crash part-way leaves no half topic behind).
pub(crate) fn create_topic(config: &EmbeddedConfig, name: &str, count: u32) -> Result<TopicState> {
    let dir = topics_dir(config).join(name);
    let mut partitions = Vec::with_capacity(count as usize);
    for id in 0..count {
        let pdir = dir.join(id.to_string());
        fs::create_dir_all(&pdir).map_err(|e| LogError::io("create directory", &pdir, e))?;
        for old in segment_files(&pdir)? {
            fs::remove_file(&old.1).map_err(|e| LogError::io("remove", &old.1, e))?;
        }
        let path = create_segment(&pdir, 0)?;
        let segment = Segment::new(
            0,
            path,
            SegmentIndex {
                len: FILE_HEADER_LEN,
                ..Default::default()
            },
        )?;
        partitions.push(Arc::new(PartitionState::new(
            name,
            id,
            pdir,
            vec![Arc::new(segment)],
        )));
    }
    let meta = dir.join(TOPIC_META);
    write_durably(&meta, format!("partitions={count}\n").as_bytes())?;
    Ok(TopicState::new(name, partitions))
}

/// Creates an empty segment file and makes its existence durable.
pub(crate) fn create_segment(dir: &Path, base: u64) -> Result<PathBuf> {
    let path = dir.join(segment::segment_name(base));
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(|e| LogError::io("create segment", &path, e))?;
    file.write_all(&segment::file_header())
        .and_then(|()| file.sync_all())
        .map_err(|e| LogError::io("write segment header", &path, e))?;
    sync_dir(dir)?;
    Ok(path)
}

/// Replaces a small file atomically: temporary file, fsync, rename, fsync dir.
pub(crate) fn write_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp).map_err(|e| LogError::io("create", &tmp, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| LogError::io("write", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| LogError::io("rename", path, e))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LogError::io("sync directory", dir, e))
}

fn segment_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| LogError::io("list directory", dir, e))? {
        let path = entry
            .map_err(|e| LogError::io("list directory", dir, e))?
            .path();
        let base = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(base) = base {
            files.push((base, path));
        }
    }
    files.sort();
    Ok(files)
}

fn load_partition(
    config: &EmbeddedConfig,
    topic: &str,
    id: u32,
    dir: &Path,
) -> Result<PartitionState> {
    fs::create_dir_all(dir).map_err(|e| LogError::io("create directory", dir, e))?;
    let mut files = segment_files(dir)?;
    if files.is_empty() {
        files.push((0, create_segment(dir, 0)?));
    }
    let mut segments = Vec::with_capacity(files.len());
    let mut expected = files[0].0;
    let count = files.len();
    for (i, (base, path)) in files.iter().enumerate() {
        let is_last = i + 1 == count;
        let damage = if *base != expected {
            Some((
                0,
                format!("segment starts at offset {base}, expected {expected}"),
            ))
        } else {
            None
        };
        let (index, damage) = match damage {
            Some(d) => (SegmentIndex::default(), Some(d)),
            None => scan(path, *base, is_last)?,
        };
        let Some((position, reason)) = damage else {
            expected = *base + index.positions.len() as u64;
            segments.push(Arc::new(Segment::new(*base, path.clone(), index)?));
            continue;
        };
        if config.recovery == Recovery::Refuse {
            return Err(LogError::Corrupt {
                file: path.clone(),
                position,
                reason,
            });
        }
        tracing::error!(
            file = %path.display(), position, %reason,
            "corrupt log truncated by operator choice: records from here on are dropped"
        );
        if position < FILE_HEADER_LEN || *base != expected {
            fs::remove_file(path).map_err(|e| LogError::io("remove", path, e))?;
        } else {
            truncate(path, position)?;
            expected = *base + index.positions.len() as u64;
            segments.push(Arc::new(Segment::new(*base, path.clone(), index)?));
        }
        for (_, later) in &files[i + 1..] {
            fs::remove_file(later).map_err(|e| LogError::io("remove", later, e))?;
        }
        break;
    }
    if segments.is_empty() {
        let path = create_segment(dir, expected)?;
        segments.push(Arc::new(Segment::new(
            expected,
            path,
            SegmentIndex {
                len: FILE_HEADER_LEN,
                ..Default::default()
            },
        )?));
    }
    Ok(PartitionState::new(topic, id, dir.to_path_buf(), segments))
}

/// Scans one segment. A damaged tail of the last segment with no valid record
/// after it is a torn write: it is truncated here. Any other damage is
/// returned as (byte position, reason) for the caller's recovery rule.
fn scan(path: &Path, base: u64, is_last: bool) -> Result<(SegmentIndex, Option<(u64, String)>)> {
    let bytes = fs::read(path).map_err(|e| LogError::io("read segment", path, e))?;
    let mut index = SegmentIndex {
        len: FILE_HEADER_LEN,
        ..Default::default()
    };
    if bytes.len() < FILE_HEADER_LEN as usize {
        if is_last {
            tracing::warn!(file = %path.display(), "torn segment header rewritten");
            let mut file =
                File::create(path).map_err(|e| LogError::io("rewrite segment", path, e))?;
            file.write_all(&segment::file_header())
                .and_then(|()| file.sync_all())
                .map_err(|e| LogError::io("rewrite segment", path, e))?;
            return Ok((index, None));
        }
        return Ok((index, Some((0, "segment header missing".into()))));
    }
    if &bytes[..4] != segment::MAGIC {
        return Ok((index, Some((0, "not a segment file (bad magic)".into()))));
    }
    let version = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    if version != segment::VERSION {
        return Ok((
            index,
            Some((4, format!("unsupported segment format version {version}"))),
        ));
    }
    let mut pos = FILE_HEADER_LEN as usize;
    let mut expected = base;
    while pos < bytes.len() {
        let reason = match segment::decode(&bytes[pos..], 0) {
            Frame::Valid { record, len } if record.offset == expected => {
                index.positions.push(pos as u32);
                index.max_timestamp_ms = index.max_timestamp_ms.max(record.timestamp_ms);
                pos += len;
                expected += 1;
                continue;
            }
            Frame::Valid { record, .. } => format!(
                "offset {} out of sequence, expected {expected}",
                record.offset
            ),
            Frame::Incomplete => "truncated frame".to_owned(),
            Frame::Bad(reason) => reason.to_owned(),
        };
        index.len = pos as u64;
        if is_last && !valid_frame_after(&bytes, pos, expected) {
            tracing::warn!(
                file = %path.display(), position = pos, dropped_bytes = bytes.len() - pos, %reason,
                "torn tail truncated: the last write did not complete"
            );
            truncate(path, pos as u64)?;
            return Ok((index, None));
        }
        return Ok((index, Some((pos as u64, reason))));
    }
    index.len = pos as u64;
    Ok((index, None))
}

/// Whether a whole record at or past `expected` follows the damage at `pos`:
/// then the damage is not a torn write but corruption of acknowledged data.
fn valid_frame_after(bytes: &[u8], pos: usize, expected: u64) -> bool {
    (pos + 1..bytes.len()).any(|q| {
        matches!(segment::decode(&bytes[q..], 0), Frame::Valid { record, .. } if record.offset >= expected)
    })
}

fn truncate(path: &Path, len: u64) -> Result<()> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(len).and_then(|()| f.sync_all()))
        .map_err(|e| LogError::io("truncate segment", path, e))
}
