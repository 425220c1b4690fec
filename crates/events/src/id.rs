//! Typed ids. Each kind of id is its own type, so a tenant id can never be passed where a
//! conversation id is expected, and each is validated once, where it enters the system.
//!
//! String ids are 1 to 64 bytes of ASCII letters, digits, `-`, `_`, `.` and `:` (client message
//! ids may be up to 128): safe in URLs, Kafka keys, file names and log lines. Event ids are
//! UUIDv7, so they sort by creation time.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::avro::wire::{Datum, Reader, write_bytes};
use crate::error::{DecodeError, IdError};

fn validate(kind: &'static str, value: &str, max: usize) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if value.len() > max {
        return Err(IdError::TooLong {
            kind,
            len: value.len(),
            max,
        });
    }
    if let Some((at, found)) = value
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
    {
        return Err(IdError::BadChar { kind, found, at });
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The most bytes this id may have.
            pub const MAX_LEN: usize = $max;

            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                validate($kind, &value, $max)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let value = String::deserialize(d)?;
                Self::new(value).map_err(serde::de::Error::custom)
            }
        }

        impl Datum for $name {
            fn write(&self, out: &mut Vec<u8>) {
                write_bytes(out, self.0.as_bytes());
            }
            fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                let value = r.read_str()?;
                validate($kind, value, $max)?;
                Ok(Self(value.to_owned()))
            }
        }
    };
}

string_id!(
    /// A business using switchboard. Every read and write is scoped to one.
    TenantId, "tenant", 64
);
string_id!(
    /// A conversation; the key of the conversation topic, so its events stay in order.
    ConversationId, "conversation", 64
);
string_id!(
    /// A customer (visitor) of a tenant; owner of the data key that seals their personal data.
    CustomerId, "customer", 64
);
string_id!(
    /// A support agent of a tenant.
    AgentId, "agent", 64
);
string_id!(
    /// A team (queue) of agents that conversations can be routed or transferred to.
    TeamId, "team", 64
);
string_id!(
    /// A message within a conversation, assigned by the server.
    MessageId, "message", 64
);
string_id!(
    /// The client's id for a send: a retry with the same id is the same message.
    ClientMsgId, "client message", 128
);
string_id!(
    /// A skill or a tag: routing matches agents' skills against a conversation's required
    /// skills; supervisors tag conversations for reports.
    Label, "label", 64
);
string_id!(
    /// An actor that is neither a customer nor an agent: a supervisor, an auditor, a service.
    PrincipalId, "principal", 64
);

/// The id of an event: a UUIDv7, unique across the system and ordered by creation time.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(Uuid);

impl EventId {
    /// A fresh UUIDv7 for the current time.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn from_uuid(uuid: Uuid) -> Result<Self, IdError> {
        match uuid.get_version_num() {
            7 => Ok(Self(uuid)),
            version => Err(IdError::WrongUuidVersion {
                kind: "event",
                value: uuid.to_string(),
                version,
            }),
        }
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl FromStr for EventId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        parse_uuid("event", s.as_bytes()).and_then(Self::from_uuid)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.0.hyphenated())
    }
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0.hyphenated())
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

fn parse_uuid(kind: &'static str, bytes: &[u8]) -> Result<Uuid, IdError> {
    Uuid::try_parse_ascii(bytes).map_err(|_| IdError::NotUuid {
        kind,
        value: String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).into_owned(),
    })
}

/// Avro `{"type": "string", "logicalType": "uuid"}`: the 36-character hyphenated form.
pub(crate) fn write_uuid(out: &mut Vec<u8>, uuid: &Uuid) {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    write_bytes(out, uuid.hyphenated().encode_lower(&mut buf).as_bytes());
}

pub(crate) fn read_uuid(kind: &'static str, r: &mut Reader<'_>) -> Result<Uuid, DecodeError> {
    Ok(parse_uuid(kind, r.read_byte_slice()?)?)
}

impl Datum for EventId {
    fn write(&self, out: &mut Vec<u8>) {
        write_uuid(out, &self.0);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self::from_uuid(read_uuid("event", r)?)?)
    }
}

/// Ties together every event caused, directly or not, by one request. Any UUID version:
/// clients and upstream systems supply their own.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CorrelationId(pub Uuid);

impl fmt::Debug for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CorrelationId({})", self.0.hyphenated())
    }
}

impl Datum for CorrelationId {
    fn write(&self, out: &mut Vec<u8>) {
        write_uuid(out, &self.0);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        read_uuid("correlation", r).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_ids_accept_the_safe_charset() {
        for ok in ["t1", "acme-corp", "c_01J9Z.x:y", &"a".repeat(64)] {
            TenantId::new(ok).unwrap();
        }
        ClientMsgId::new("m".repeat(128)).unwrap();
    }

    #[test]
    fn string_ids_refuse_bad_input_with_a_clear_reason() {
        assert_eq!(TenantId::new(""), Err(IdError::Empty { kind: "tenant" }));
        assert_eq!(
            ConversationId::new("a".repeat(65)),
            Err(IdError::TooLong {
                kind: "conversation",
                len: 65,
                max: 64
            })
        );
        assert_eq!(
            AgentId::new("bob smith"),
            Err(IdError::BadChar {
                kind: "agent",
                found: ' ',
                at: 3
            })
        );
        assert_eq!(
            CustomerId::new("jé"),
            Err(IdError::BadChar {
                kind: "customer",
                found: 'é',
                at: 1
            })
        );
        let err = TenantId::new("a/b").unwrap_err().to_string();
        assert_eq!(
            err,
            "tenant id contains '/' at byte 1; allowed are ASCII letters, digits and - _ . :"
        );
    }

    #[test]
    fn event_ids_are_uuid_v7_and_refuse_other_versions() {
        let id = EventId::generate();
        assert_eq!(id.as_uuid().get_version_num(), 7);
        assert_eq!(id.to_string().parse::<EventId>().unwrap(), id);
        let v4 = "f47ac10b-58cc-4372-a567-0e02b2c3d479";
        assert!(matches!(
            v4.parse::<EventId>(),
            Err(IdError::WrongUuidVersion { version: 4, .. })
        ));
        assert!(matches!(
            "nope".parse::<EventId>(),
            Err(IdError::NotUuid { .. })
        ));
    }

    #[test]
    fn later_event_ids_sort_after_earlier_ones() {
        let a = EventId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = EventId::generate();
        assert!(a < b);
    }

    #[test]
    fn ids_decoded_from_the_wire_are_validated() {
        let mut bytes = Vec::new();
        write_bytes(&mut bytes, b"bad id");
        let err = TenantId::read(&mut Reader::new(&bytes)).unwrap_err();
        assert!(
            matches!(err, DecodeError::InvalidId(IdError::BadChar { .. })),
            "{err:?}"
        );
    }
}
