//! Personal data and crypto-shredding.
//!
//! Fields that hold personal data (a customer's name and email, message bodies, CSAT comments)
//! are never written in clear. They are [`Sealed`]: AES-256-GCM under a data key that belongs
//! to one customer of one tenant, with the tenant and customer bound in as associated data so a
//! ciphertext cannot be moved to another customer. The keys live outside the log, behind a
//! [`KeyProvider`]. Erasing a customer destroys their key: every sealed field of theirs, in the
//! log, the read models and the archive, becomes unreadable at once, while the hash chain over
//! the sealed bytes still verifies.
//!
//! A whole conversation's bodies, agents' replies and private notes included, are sealed with
//! its customer's key: replies quote customers, and an erasure should leave no readable trace
//! of the conversation's content.
//!
//! In the Avro schemas these fields have the type `switchboard.Sealed` and the attribute
//! `"pii": true`.

use std::collections::HashMap;
use std::fmt;
use std::sync::RwLock;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::avro::wire::{Datum, Reader, write_bytes};
use crate::error::DecodeError;
use crate::id::{CustomerId, TenantId};

/// The most plaintext bytes one sealed field may hold.
pub const MAX_PLAINTEXT: usize = 256 * 1024;

/// A customer's 256-bit data key. Its bytes never appear in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct DataKey([u8; 32]);

impl DataKey {
    /// A fresh random key from the operating system's generator.
    pub fn generate() -> Result<Self, PersonalDataError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| PersonalDataError::Random(e.to_string()))?;
        Ok(Self(key))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// Errors of sealing and opening.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PersonalDataError {
    #[error("personal data field is {len} bytes, the limit is {max}")]
    TooLarge { len: usize, max: usize },
    #[error(
        "sealed value of customer {customer} does not authenticate: it was altered or sealed under another key"
    )]
    Forged { customer: String },
    #[error("sealed value opened to bytes that are not utf-8")]
    NotUtf8,
    #[error("the random generator failed: {0}")]
    Random(String),
    #[error("the key provider failed: {0}")]
    Provider(String),
    #[error("no data key for customer {customer} of tenant {tenant}: it was erased")]
    Erased { tenant: String, customer: String },
}

/// Where data keys come from. The store holds them in production; [`MemoryKeys`] in tests.
pub trait KeyProvider: Send + Sync {
    /// The customer's key, or `None` when it has been erased (or never existed).
    fn data_key(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
    ) -> Result<Option<DataKey>, PersonalDataError>;
}

/// A personal-data field as it travels in events: the key's owner, a random 96-bit nonce and
/// the AES-256-GCM ciphertext with its tag.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub key_id: CustomerId,
    #[serde(with = "crate::hex::array")]
    pub nonce: [u8; 12],
    #[serde(with = "crate::hex::vec")]
    pub ciphertext: Vec<u8>,
}

impl Datum for Sealed {
    fn write(&self, out: &mut Vec<u8>) {
        self.key_id.write(out);
        self.nonce.write(out);
        write_bytes(out, &self.ciphertext);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            key_id: CustomerId::read(r)?,
            nonce: r.read_fixed()?,
            ciphertext: r.read_byte_slice()?.to_vec(),
        })
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Sealed({}, {} bytes)",
            self.key_id,
            self.ciphertext.len()
        )
    }
}

/// What a sealed field holds, once its key has been asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Revealed {
    Text(String),
    /// The customer's key was destroyed: the content is gone for good.
    Erased,
}

impl Revealed {
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text),
            Self::Erased => None,
        }
    }
}

fn associated_data(tenant: &TenantId, customer: &CustomerId) -> Vec<u8> {
    let mut aad = Vec::with_capacity(24 + tenant.as_str().len() + customer.as_str().len());
    aad.extend_from_slice(b"switchboard.sealed.v1\0");
    aad.extend_from_slice(tenant.as_str().as_bytes());
    aad.push(0);
    aad.extend_from_slice(customer.as_str().as_bytes());
    aad
}

impl Sealed {
    /// Seals `plaintext` for `customer` of `tenant` under `key`, with a fresh random nonce.
    pub fn seal(
        key: &DataKey,
        tenant: &TenantId,
        customer: &CustomerId,
        plaintext: &str,
    ) -> Result<Self, PersonalDataError> {
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(PersonalDataError::TooLarge {
                len: plaintext.len(),
                max: MAX_PLAINTEXT,
            });
        }
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|e| PersonalDataError::Random(e.to_string()))?;
        Self::seal_with_nonce(key, tenant, customer, plaintext, nonce)
    }

    /// Seals with a given nonce: only for fixtures, whose bytes must not change between runs.
    /// A nonce must never repeat under one key.
    pub(crate) fn seal_with_nonce(
        key: &DataKey,
        tenant: &TenantId,
        customer: &CustomerId,
        plaintext: &str,
        nonce: [u8; 12],
    ) -> Result<Self, PersonalDataError> {
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(PersonalDataError::TooLarge {
                len: plaintext.len(),
                max: MAX_PLAINTEXT,
            });
        }
        let cipher = Aes256Gcm::new(key.as_bytes().into());
        let aad = associated_data(tenant, customer);
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| PersonalDataError::TooLarge {
                len: plaintext.len(),
                max: MAX_PLAINTEXT,
            })?;
        Ok(Self {
            key_id: customer.clone(),
            nonce,
            ciphertext,
        })
    }

    /// Opens the value with its customer's key.
    pub fn open(&self, key: &DataKey, tenant: &TenantId) -> Result<String, PersonalDataError> {
        let cipher = Aes256Gcm::new(key.as_bytes().into());
        let aad = associated_data(tenant, &self.key_id);
        let clear = cipher
            .decrypt(
                Nonce::from_slice(&self.nonce),
                Payload {
                    msg: &self.ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| PersonalDataError::Forged {
                customer: self.key_id.to_string(),
            })?;
        String::from_utf8(clear).map_err(|_| PersonalDataError::NotUtf8)
    }

    /// Asks `keys` for the key and opens the value; an erased key gives [`Revealed::Erased`],
    /// never an error, so that a replay of an erased customer's conversation goes on.
    pub fn reveal(
        &self,
        tenant: &TenantId,
        keys: &dyn KeyProvider,
    ) -> Result<Revealed, PersonalDataError> {
        match keys.data_key(tenant, &self.key_id)? {
            Some(key) => self.open(&key, tenant).map(Revealed::Text),
            None => Ok(Revealed::Erased),
        }
    }
}

/// Data keys in memory: for tests and tools, and the reference behaviour for real providers.
#[derive(Debug, Default)]
pub struct MemoryKeys {
    keys: RwLock<HashMap<(TenantId, CustomerId), DataKey>>,
}

impl MemoryKeys {
    /// The customer's key, made on first use.
    pub fn key_for(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
    ) -> Result<DataKey, PersonalDataError> {
        let mut keys = self
            .keys
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(key) = keys.get(&(tenant.clone(), customer.clone())) {
            return Ok(key.clone());
        }
        let key = DataKey::generate()?;
        keys.insert((tenant.clone(), customer.clone()), key.clone());
        Ok(key)
    }

    /// Holds a key made elsewhere.
    pub fn insert(&self, tenant: &TenantId, customer: &CustomerId, key: DataKey) {
        let mut keys = self
            .keys
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        keys.insert((tenant.clone(), customer.clone()), key);
    }

    /// Destroys the customer's key (crypto-shredding).
    pub fn erase(&self, tenant: &TenantId, customer: &CustomerId) {
        let mut keys = self
            .keys
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        keys.remove(&(tenant.clone(), customer.clone()));
    }
}

impl KeyProvider for MemoryKeys {
    fn data_key(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
    ) -> Result<Option<DataKey>, PersonalDataError> {
        let keys = self
            .keys
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        Ok(keys.get(&(tenant.clone(), customer.clone())).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (TenantId, CustomerId) {
        (
            TenantId::new("acme").unwrap(),
            CustomerId::new("cust-1").unwrap(),
        )
    }

    #[test]
    fn sealed_text_opens_with_the_customers_key_only() {
        let (tenant, customer) = ids();
        let keys = MemoryKeys::default();
        let key = keys.key_for(&tenant, &customer).unwrap();
        let sealed = Sealed::seal(&key, &tenant, &customer, "my card ends in 4242").unwrap();
        assert!(!sealed.ciphertext.windows(4).any(|w| w == b"4242"));
        assert_eq!(sealed.open(&key, &tenant).unwrap(), "my card ends in 4242");

        let other = DataKey::generate().unwrap();
        assert!(matches!(
            sealed.open(&other, &tenant),
            Err(PersonalDataError::Forged { .. })
        ));
    }

    #[test]
    fn a_ciphertext_moved_to_another_tenant_or_customer_does_not_open() {
        let (tenant, customer) = ids();
        let key = DataKey::generate().unwrap();
        let sealed = Sealed::seal(&key, &tenant, &customer, "hello").unwrap();
        let other_tenant = TenantId::new("globex").unwrap();
        assert!(sealed.open(&key, &other_tenant).is_err());
        let mut moved = sealed.clone();
        moved.key_id = CustomerId::new("cust-2").unwrap();
        assert!(moved.open(&key, &tenant).is_err());
    }

    #[test]
    fn a_flipped_ciphertext_bit_is_detected() {
        let (tenant, customer) = ids();
        let key = DataKey::generate().unwrap();
        let mut sealed = Sealed::seal(&key, &tenant, &customer, "hello").unwrap();
        sealed.ciphertext[0] ^= 1;
        assert!(matches!(
            sealed.open(&key, &tenant),
            Err(PersonalDataError::Forged { .. })
        ));
    }

    #[test]
    fn an_erased_customer_reveals_as_erased_not_as_an_error() {
        let (tenant, customer) = ids();
        let keys = MemoryKeys::default();
        let key = keys.key_for(&tenant, &customer).unwrap();
        let sealed = Sealed::seal(&key, &tenant, &customer, "hello").unwrap();
        assert_eq!(
            sealed.reveal(&tenant, &keys).unwrap(),
            Revealed::Text("hello".into())
        );
        keys.erase(&tenant, &customer);
        assert_eq!(sealed.reveal(&tenant, &keys).unwrap(), Revealed::Erased);
    }

    #[test]
    fn nonces_are_fresh_for_each_seal() {
        let (tenant, customer) = ids();
        let key = DataKey::generate().unwrap();
        let a = Sealed::seal(&key, &tenant, &customer, "same").unwrap();
        let b = Sealed::seal(&key, &tenant, &customer, "same").unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
    }

    #[test]
    fn oversized_plaintext_is_refused() {
        let (tenant, customer) = ids();
        let key = DataKey::generate().unwrap();
        let big = "x".repeat(MAX_PLAINTEXT + 1);
        assert!(matches!(
            Sealed::seal(&key, &tenant, &customer, &big),
            Err(PersonalDataError::TooLarge { .. })
        ));
    }
}
