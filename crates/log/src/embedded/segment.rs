//! Segment files: the on-disk record format and reads of it.
//!
//! A segment is `<base offset, 20 digits>.log`: an 8-byte file header (magic
//! `SBLG` + format version, u32 LE) and then frames, one per record:
//!
//! ```text
//! u32 body length | u32 crc32c(body) | body
//! body = u64 offset | i64 timestamp ms | u32 key len | key | u32 value len | value
//!      | u16 header count | (u16 name len | name | u32 value len | value)*
//! ```
//! All integers little-endian. Only version 1 exists.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::error::{LogError, Result};
use crate::record::{Header, NewRecord, Record};

pub(crate) const MAGIC: &[u8; 4] = b"SBLG";
pub(crate) const VERSION: u32 = 1;
pub(crate) const FILE_HEADER_LEN: u64 = 8;
pub(crate) const FRAME_HEADER_LEN: usize = 8;
/// The smallest body: offset, timestamp, two lengths and a header count.
const MIN_BODY_LEN: usize = 8 + 8 + 4 + 4 + 2;

pub(crate) fn file_header() -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..4].copy_from_slice(MAGIC);
    h[4..].copy_from_slice(&VERSION.to_le_bytes());
    h
}

pub(crate) fn segment_name(base: u64) -> String {
    format!("{base:020}.log")
}

/// Appends one frame to `buf`.
pub(crate) fn encode(buf: &mut Vec<u8>, offset: u64, timestamp_ms: i64, record: &NewRecord) {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    buf.extend_from_slice(&offset.to_le_bytes());
    buf.extend_from_slice(&timestamp_ms.to_le_bytes());
    buf.extend_from_slice(&(record.key.len() as u32).to_le_bytes());
    buf.extend_from_slice(&record.key);
    buf.extend_from_slice(&(record.value.len() as u32).to_le_bytes());
    buf.extend_from_slice(&record.value);
    buf.extend_from_slice(&(record.headers.len() as u16).to_le_bytes());
    for h in &record.headers {
        buf.extend_from_slice(&(h.name.len() as u16).to_le_bytes());
        buf.extend_from_slice(h.name.as_bytes());
        buf.extend_from_slice(&(h.value.len() as u32).to_le_bytes());
        buf.extend_from_slice(&h.value);
    }
    let body = &buf[start + FRAME_HEADER_LEN..];
    let len = body.len() as u32;
    let crc = crc32c::crc32c(body);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// What sits at a position of a segment.
#[derive(Debug)]
pub(crate) enum Frame {
    /// A whole, checksummed record of `len` bytes on disk.
    Valid { record: Record, len: usize },
    /// The bytes end before the frame does.
    Incomplete,
    /// The frame is there but does not check out.
    Bad(&'static str),
}

/// Decodes the frame at the start of `bytes`, verifying its checksum.
pub(crate) fn decode(bytes: &[u8], partition: u32) -> Frame {
    if bytes.len() < FRAME_HEADER_LEN {
        return Frame::Incomplete;
    }
    let len = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    if len < MIN_BODY_LEN {
        return Frame::Bad("frame length too small");
    }
    if bytes.len() - FRAME_HEADER_LEN < len {
        return Frame::Incomplete;
    }
    let body = &bytes[FRAME_HEADER_LEN..FRAME_HEADER_LEN + len];
    if crc32c::crc32c(body) != crc {
        return Frame::Bad("checksum mismatch");
    }
    match parse_body(body, partition) {
        Some(record) => Frame::Valid {
            record,
            len: FRAME_HEADER_LEN + len,
        },
        None => Frame::Bad("malformed record body"),
    }
}

fn parse_body(body: &[u8], partition: u32) -> Option<Record> {
    let mut r = Cursor(body);
    let offset = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
    let timestamp_ms = i64::from_le_bytes(r.take(8)?.try_into().ok()?);
    let key_len = r.u32()? as usize;
    let key = r.take(key_len)?.to_vec();
    let value_len = r.u32()? as usize;
    let value = r.take(value_len)?.to_vec();
    let count = u16::from_le_bytes(r.take(2)?.try_into().ok()?);
    let mut headers = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let name_len = u16::from_le_bytes(r.take(2)?.try_into().ok()?) as usize;
        let name = String::from_utf8(r.take(name_len)?.to_vec()).ok()?;
        let value_len = r.u32()? as usize;
        headers.push(Header {
            name,
            value: r.take(value_len)?.to_vec(),
        });
    }
    if !r.0.is_empty() {
        return None;
    }
    Some(Record {
        partition,
        offset,
        key,
        value,
        headers,
        timestamp_ms,
    })
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
}

/// Where each record of a segment starts, and how far the file is written.
#[derive(Debug, Default)]
pub(crate) struct SegmentIndex {
    pub positions: Vec<u32>,
    pub len: u64,
    pub max_timestamp_ms: i64,
}

/// One segment file, shared by the writer (which extends its index) and
/// readers (which never read past the partition's durable end).
#[derive(Debug)]
pub(crate) struct Segment {
    pub base: u64,
    pub path: PathBuf,
    file: File,
    pub index: Mutex<SegmentIndex>,
}

impl Segment {
    pub fn new(base: u64, path: PathBuf, index: SegmentIndex) -> Result<Self> {
        let file = File::open(&path).map_err(|e| LogError::io("open segment", &path, e))?;
        Ok(Segment {
            base,
            path,
            file,
            index: Mutex::new(index),
        })
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, SegmentIndex> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The offset after the last record written to this segment.
    pub fn end(&self) -> u64 {
        self.base + self.lock().positions.len() as u64
    }

    /// Reads up to `count` records from `offset`, which this segment holds,
    /// appending them to `out`. Checksums are verified: damaged bytes are
    /// reported, never served.
    /// Reads at most about `max_bytes` (always at least one record) and
    /// returns the bytes read.
    pub fn read(
        &self,
        partition: u32,
        offset: u64,
        count: usize,
        max_bytes: u64,
        out: &mut Vec<Record>,
    ) -> Result<u64> {
        let (start, end) = {
            let index = self.lock();
            let i = (offset - self.base) as usize;
            let mut count = count.min(index.positions.len() - i);
            if count == 0 {
                return Ok(0);
            }
            let start = index.positions[i] as u64;
            let end_of = |k: usize| index.positions.get(i + k).map_or(index.len, |&p| p as u64);
            while count > 1 && end_of(count) - start > max_bytes {
                count /= 2;
            }
            (start, end_of(count))
        };
        let mut bytes = vec![0u8; (end - start) as usize];
        self.file
            .read_exact_at(&mut bytes, start)
            .map_err(|e| LogError::io("read segment", &self.path, e))?;
        let mut pos = 0usize;
        let mut expected = offset;
        while pos < bytes.len() {
            match decode(&bytes[pos..], partition) {
                Frame::Valid { record, len } if record.offset == expected => {
                    out.push(record);
                    pos += len;
                    expected += 1;
                }
                Frame::Valid { .. } => {
                    return Err(self.corrupt(start + pos as u64, "offset out of sequence"));
                }
                Frame::Incomplete => {
                    return Err(self.corrupt(start + pos as u64, "truncated frame"));
                }
                Frame::Bad(reason) => return Err(self.corrupt(start + pos as u64, reason)),
            }
        }
        Ok(end - start)
    }

    fn corrupt(&self, position: u64, reason: &str) -> LogError {
        LogError::Corrupt {
            file: self.path.clone(),
            position,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_detect_damage() {
        let record = NewRecord::new("conv-1", "hello").with_header("traceparent", "00-abc");
        let mut buf = Vec::new();
        encode(&mut buf, 42, 1_700_000_000_000, &record);
        let Frame::Valid { record: back, len } = decode(&buf, 3) else {
            panic!("frame should decode");
        };
        assert_eq!(len, buf.len());
        assert_eq!(
            (back.partition, back.offset, back.timestamp_ms),
            (3, 42, 1_700_000_000_000)
        );
        assert_eq!(
            (back.key.as_slice(), back.value.as_slice()),
            (&b"conv-1"[..], &b"hello"[..])
        );
        assert_eq!(back.header("traceparent"), Some(&b"00-abc"[..]));

        assert!(matches!(
            decode(&buf[..buf.len() - 1], 3),
            Frame::Incomplete
        ));
        let mut flipped = buf.clone();
        flipped[20] ^= 0x01;
        assert!(matches!(
            decode(&flipped, 3),
            Frame::Bad("checksum mismatch")
        ));
        assert!(matches!(decode(&[0u8; 16], 3), Frame::Bad(_)));
    }

    fn arb_record() -> impl proptest::strategy::Strategy<Value = NewRecord> {
        use proptest::prelude::*;
        (
            proptest::collection::vec(any::<u8>(), 0..64),
            proptest::collection::vec(any::<u8>(), 0..512),
            proptest::collection::vec(
                (
                    "[a-z-]{0,12}",
                    proptest::collection::vec(any::<u8>(), 0..32),
                ),
                0..4,
            ),
            any::<i64>(),
        )
            .prop_map(|(key, value, headers, ts)| {
                let mut record = NewRecord::new(key, value).with_timestamp_ms(ts);
                for (name, value) in headers {
                    record = record.with_header(name, value);
                }
                record
            })
    }

    proptest::proptest! {
        #[test]
        fn any_record_round_trips(record in arb_record(), offset in proptest::prelude::any::<u64>()) {
            let mut buf = Vec::new();
            encode(&mut buf, offset, record.timestamp_ms.unwrap(), &record);
            let Frame::Valid { record: back, len } = decode(&buf, 0) else {
                panic!("a fresh frame decodes");
            };
            proptest::prop_assert_eq!(len, buf.len());
            proptest::prop_assert_eq!(back.offset, offset);
            proptest::prop_assert_eq!(back.key, record.key);
            proptest::prop_assert_eq!(back.value, record.value);
            proptest::prop_assert_eq!(back.headers, record.headers);
        }

        #[test]
        fn any_damaged_byte_is_caught(record in arb_record(), at in proptest::prelude::any::<proptest::sample::Index>(), flip in 1u8..=255) {
            let mut buf = Vec::new();
            encode(&mut buf, 7, 0, &record);
            let at = at.index(buf.len());
            buf[at] ^= flip;
            proptest::prop_assert!(!matches!(decode(&buf, 0), Frame::Valid { .. }), "damage at byte {} went unnoticed", at);
        }
    }
}
