//! The hash chain: proof that a stream's history was not altered, dropped, duplicated or
//! reordered.
//!
//! Each event's `hash` is SHA-256 over the domain tag `switchboard.chain.v1`, the frame's
//! 4-byte schema id, and the datum after the hash itself (the hash is the datum's first 32
//! bytes, so everything else, `prev_hash` included, is covered). `prev_hash` is the previous
//! event's hash, all zeros before seq 1. The hash covers the bytes as written: sealed personal
//! data is covered as ciphertext, so an erased customer's history still verifies, and an event
//! must be verified from its original frame (the log, the archive, the stored row), never from
//! a re-encoding.
//!
//! A chain proves the order and integrity of what it links; a forger who rewrites a whole tail
//! and recomputes every hash is caught by comparing the head with one recorded elsewhere
//! ([`Verifier::expect_head`]).

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::avro::wire::Reader;
use crate::codec::{Frame, HEADER_LEN};
use crate::envelope::Envelope;
use crate::envelope::{ChainHash, EnvelopeHead, Seq};
use crate::error::{DecodeError, EncodeError};
use crate::event::{Event, Payload};

const DOMAIN: &[u8] = b"switchboard.chain.v1";
const HASH_LEN: usize = 32;

/// The hash a frame should carry, computed from everything in it but the hash itself.
pub fn frame_hash(frame: &[u8]) -> Result<ChainHash, DecodeError> {
    let parsed = Frame::parse(frame)?;
    let rest = parsed.datum.get(HASH_LEN..).ok_or(DecodeError::Truncated)?;
    Ok(link_hash(parsed.schema_id, rest))
}

fn link_hash(schema_id: u32, after_hash: &[u8]) -> ChainHash {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    hasher.update(schema_id.to_be_bytes());
    hasher.update(after_hash);
    ChainHash(hasher.finalize().into())
}

impl<P: Payload> Event<P::Envelope, P>
where
    P::Envelope: ChainLinks,
{
    /// Links the event after `prev` and frames it: sets `prev_hash`, computes `hash`, and
    /// returns the frame with the hash in place. The event is updated to match the frame.
    pub fn encode_chained(&mut self, prev: ChainHash) -> Result<Vec<u8>, EncodeError> {
        self.envelope.set_links(prev, ChainHash::GENESIS);
        let mut frame = self.encode()?;
        let schema_id = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]);
        let hash = link_hash(schema_id, &frame[HEADER_LEN + HASH_LEN..]);
        frame[HEADER_LEN..HEADER_LEN + HASH_LEN].copy_from_slice(&hash.0);
        self.envelope.set_links(prev, hash);
        Ok(frame)
    }
}

/// Envelopes whose chain links can be set.
pub trait ChainLinks: Envelope {
    fn set_links(&mut self, prev_hash: ChainHash, hash: ChainHash);
}

impl ChainLinks for crate::envelope::ConversationEnvelope {
    fn set_links(&mut self, prev_hash: ChainHash, hash: ChainHash) {
        self.prev_hash = prev_hash;
        self.hash = hash;
    }
}

impl ChainLinks for crate::envelope::AgentEnvelope {
    fn set_links(&mut self, prev_hash: ChainHash, hash: ChainHash) {
        self.prev_hash = prev_hash;
        self.hash = hash;
    }
}

/// What is wrong at the first bad seq.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// The event's content does not match its hash.
    Altered,
    /// The event does not link to the hash of the event before it: that one was rewritten
    /// (hash recomputed) or this one was forged.
    BrokenLink,
    /// The seq is missing from the history.
    Dropped,
    /// The seq appears more than once.
    Duplicated,
    /// The seq appears, but later than its place.
    Reordered,
    /// An event of another stream is mixed in.
    ForeignStream { stream_id: String },
    /// The bytes are not an event.
    Undecodable { reason: String },
    /// The history ends, or ends differently, from the head recorded elsewhere.
    HeadMismatch,
}

/// The outcome of a verification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Intact {
        events: u64,
        head: Option<(Seq, ChainHash)>,
    },
    Broken {
        seq: Seq,
        #[serde(flatten)]
        problem: Problem,
    },
}

/// Verifies one stream's frames as they come, in constant memory.
#[derive(Debug)]
pub struct Verifier {
    stream: Option<(String, String)>,
    expected: Seq,
    prev: ChainHash,
    events: u64,
    /// A seq that did not come in its place; it is dropped unless it shows up later.
    missing: Option<Seq>,
    broken: Option<(Seq, Problem)>,
    expected_head: Option<(Seq, ChainHash)>,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Verifier {
    /// Verifies a stream from its first event.
    pub fn new() -> Self {
        Self::resume(Seq(0), ChainHash::GENESIS)
    }

    /// Verifies the part of a stream that follows `after`, whose hash is known to be `hash`.
    pub fn resume(after: Seq, hash: ChainHash) -> Self {
        Self {
            stream: None,
            expected: after.next(),
            prev: hash,
            events: 0,
            missing: None,
            broken: None,
            expected_head: None,
        }
    }

    /// Also require the stream to end at this seq with this hash (recorded elsewhere).
    pub fn expect_head(mut self, seq: Seq, hash: ChainHash) -> Self {
        self.expected_head = Some((seq, hash));
        self
    }

    fn fail(&mut self, seq: Seq, problem: Problem) {
        if self.broken.is_none() {
            self.broken = Some((seq, problem));
        }
    }

    /// Takes the next frame of the stream.
    pub fn push(&mut self, frame: &[u8]) {
        if self.broken.is_some() {
            return;
        }
        let head = match read_head(frame) {
            Ok(head) => head,
            Err(e) => {
                let seq = self.missing.unwrap_or(self.expected);
                return self.fail(
                    seq,
                    Problem::Undecodable {
                        reason: e.to_string(),
                    },
                );
            }
        };
        let stream = (head.tenant_id.to_string(), head.stream_id.clone());
        match &self.stream {
            None => self.stream = Some(stream),
            Some(known) if *known != stream => {
                return self.fail(
                    head.seq,
                    Problem::ForeignStream {
                        stream_id: head.stream_id,
                    },
                );
            }
            Some(_) => {}
        }
        if let Some(missing) = self.missing {
            if head.seq == missing {
                self.fail(missing, Problem::Reordered);
            }
            return;
        }
        if head.seq < self.expected {
            return self.fail(head.seq, Problem::Duplicated);
        }
        if head.seq > self.expected {
            self.missing = Some(self.expected);
            return;
        }
        if head.prev_hash != self.prev {
            return self.fail(head.seq, Problem::BrokenLink);
        }
        match frame_hash(frame) {
            Ok(hash) if hash == head.hash => {}
            _ => return self.fail(head.seq, Problem::Altered),
        }
        self.prev = head.hash;
        self.expected = head.seq.next();
        self.events += 1;
    }

    pub fn finish(mut self) -> Verdict {
        if let Some(missing) = self.missing {
            self.fail(missing, Problem::Dropped);
        }
        if let Some((seq, problem)) = self.broken {
            return Verdict::Broken { seq, problem };
        }
        let last = Seq(self.expected.0 - 1);
        let head = (last.0 > 0).then_some((last, self.prev));
        if let Some((seq, hash)) = self.expected_head {
            if last < seq {
                return Verdict::Broken {
                    seq: last.next(),
                    problem: Problem::Dropped,
                };
            }
            if head != Some((seq, hash)) {
                return Verdict::Broken {
                    seq,
                    problem: Problem::HeadMismatch,
                };
            }
        }
        Verdict::Intact {
            events: self.events,
            head,
        }
    }
}

/// Verifies a whole stream.
pub fn verify<'a>(frames: impl IntoIterator<Item = &'a [u8]>) -> Verdict {
    let mut verifier = Verifier::new();
    for frame in frames {
        verifier.push(frame);
    }
    verifier.finish()
}

/// The envelope's leading fields of a frame, for any topic and schema version.
pub fn read_head(frame: &[u8]) -> Result<EnvelopeHead, DecodeError> {
    let parsed = Frame::parse(frame)?;
    EnvelopeHead::read(&mut Reader::new(parsed.datum))
}
