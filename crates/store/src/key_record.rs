//! The customers' data keys as records of a shared log topic: how processes that each keep
//! their own embedded store agree on one key per customer.
//!
//! A record's key is `tenant NUL customer` (the wrapping context of [`key_context`]), so every
//! record of one customer lands on one partition, in order. Its value is a [`KeyRecord`]: a
//! data key wrapped under the deployment's KEK, or the mark that the customer was erased.
//! Every process folds the records in log order with the same rules
//! ([`crate::embedded::EmbeddedStore::fold_key_record`]): the first key of a customer wins and
//! later ones are ignored; an erasure always applies and nothing brings the key back. So two
//! writers that create a key for the same customer at once both end up with the first one.
//!
//! Erasure is a record with a value, not a Kafka tombstone (a null value): a compacted topic
//! deletes tombstones after `delete.retention.ms`, and a process folding the topic from its
//! start after that would know nothing of the erasure. The erasure mark is the newest record of
//! its key, so compaction removes the wrapped key before it and keeps the mark.

use switchboard_events::id::{CustomerId, TenantId};
use switchboard_events::personal::DataKey;

use crate::keywrap::{KeyWrapError, WrappedKey, key_context};

const VERSION: u8 = 1;
const WRAPPED: u8 = 1;
const ERASED: u8 = 2;

/// The value of one record of the keys topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRecord {
    /// A customer's data key, wrapped under the KEK with the customer as its context.
    Wrapped(WrappedKey),
    /// The customer was erased: their key is destroyed for good.
    Erased,
}

impl KeyRecord {
    /// `[version][kind][wrapped key]`.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Wrapped(wrapped) => {
                let mut out = vec![VERSION, WRAPPED];
                out.extend_from_slice(&wrapped.encode());
                out
            }
            Self::Erased => vec![VERSION, ERASED],
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, KeyWrapError> {
        match bytes {
            [VERSION, WRAPPED, wrapped @ ..] => Ok(Self::Wrapped(WrappedKey::decode(wrapped)?)),
            [VERSION, ERASED] => Ok(Self::Erased),
            [VERSION, ..] => Err(KeyWrapError::Malformed("unknown key record".to_owned())),
            _ => Err(KeyWrapError::Malformed(
                "key record of an unknown version".to_owned(),
            )),
        }
    }
}

/// The record key of a customer's key records.
pub fn record_key(tenant: &TenantId, customer: &CustomerId) -> Vec<u8> {
    key_context(tenant, customer)
}

/// The tenant and customer a record key names.
pub fn record_owner(key: &[u8]) -> Result<(TenantId, CustomerId), KeyWrapError> {
    let malformed = |reason: &str| KeyWrapError::Malformed(format!("key record key: {reason}"));
    let text = std::str::from_utf8(key).map_err(|_| malformed("not utf-8"))?;
    let (tenant, customer) = text
        .split_once('\0')
        .ok_or_else(|| malformed("no separator"))?;
    Ok((
        TenantId::new(tenant).map_err(|e| malformed(&e.to_string()))?,
        CustomerId::new(customer).map_err(|e| malformed(&e.to_string()))?,
    ))
}

/// What a store holds of one customer's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeldKey {
    /// Nothing: no key was made for the customer, or none has been folded yet.
    Unknown,
    /// The customer was erased.
    Erased,
    Key(DataKey),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_bad_bytes_are_refused() {
        let wrapped = WrappedKey {
            kek_id: "kek-1".to_owned(),
            sealed: vec![9; 60],
        };
        for record in [KeyRecord::Wrapped(wrapped), KeyRecord::Erased] {
            assert_eq!(KeyRecord::decode(&record.encode()).unwrap(), record);
        }
        for bad in [
            &[][..],
            &[2, 2][..],
            &[1, 9][..],
            &[1, 1][..],
            &[1, 2, 0][..],
        ] {
            assert!(KeyRecord::decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_record_key_names_its_tenant_and_customer() {
        let tenant = TenantId::new("acme").unwrap();
        let customer = CustomerId::new("cust-1").unwrap();
        let key = record_key(&tenant, &customer);
        assert_eq!(record_owner(&key).unwrap(), (tenant, customer));
        assert!(record_owner(b"acme").is_err());
        assert!(record_owner(b"\0cust").is_err());
        assert!(record_owner(&[0xff, 0, b'c']).is_err());
    }
}
