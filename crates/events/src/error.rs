//! Errors of the event contract. Every one of them is about bad input: the bytes or values
//! handed to this crate, never its environment (it has none).

use thiserror::Error;

/// Why a value is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    #[error("{kind} id is empty")]
    Empty { kind: &'static str },
    #[error("{kind} id is {len} bytes long, the limit is {max}")]
    TooLong {
        kind: &'static str,
        len: usize,
        max: usize,
    },
    #[error(
        "{kind} id contains {found:?} at byte {at}; allowed are ASCII letters, digits and - _ . :"
    )]
    BadChar {
        kind: &'static str,
        found: char,
        at: usize,
    },
    #[error("{kind} id {value:?} is not a UUID")]
    NotUuid { kind: &'static str, value: String },
    #[error("{kind} id {value} is a UUID of version {version}, expected version 7")]
    WrongUuidVersion {
        kind: &'static str,
        value: String,
        version: usize,
    },
}

/// Why a byte string is not an event.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("frame is empty")]
    EmptyFrame,
    #[error("frame starts with magic byte {0:#04x}, expected 0x00 (confluent framing)")]
    BadMagic(u8),
    #[error("frame is {len} bytes, the limit is {max}")]
    FrameTooLarge { len: usize, max: usize },
    #[error("schema id {0} is not in the registry")]
    UnknownSchemaId(u32),
    #[error("schema id {id} is a {found} record, expected a {expected} event")]
    WrongTopic {
        id: u32,
        found: &'static str,
        expected: &'static str,
    },
    #[error("datum ends early")]
    Truncated,
    #[error("datum has {extra} bytes after its end")]
    TrailingBytes { extra: usize },
    #[error("varint is longer than 64 bits")]
    VarintOverflow,
    #[error("int {0} is out of 32-bit range")]
    IntOutOfRange(i64),
    #[error("length {0} is negative")]
    NegativeLength(i64),
    #[error("string is not valid utf-8")]
    InvalidUtf8,
    #[error("boolean byte is {0}, expected 0 or 1")]
    InvalidBool(u8),
    #[error("union or enum index {index} is out of range 0..{count}")]
    InvalidIndex { index: i64, count: usize },
    #[error("collection has {count} items, the limit is {max}")]
    TooManyItems { count: usize, max: usize },
    #[error("map repeats a key")]
    DuplicateMapKey,
    #[error("invalid id: {0}")]
    InvalidId(#[from] IdError),
    #[error("invalid {field}: {reason}")]
    InvalidValue { field: &'static str, reason: String },
    #[error("schema resolution from id {id} failed: {reason}")]
    Resolution { id: u32, reason: String },
}

/// Why an event cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error("{record} has no schema in the registry")]
    NoSchema { record: &'static str },
    #[error("encoded event is {len} bytes, the limit is {max}")]
    TooLarge { len: usize, max: usize },
}
