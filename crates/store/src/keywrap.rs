//! Customers' data keys at rest: wrapped by a key-encryption key (KEK) held outside the store.
//!
//! A data key is never written in clear. The store keeps it wrapped (AES-256-GCM) under a KEK
//! it does not hold: the binary reads the KEK from a file or an environment variable, and a
//! KMS can stand in behind [`KeyWrap`]. Every wrapped key records the id of the KEK that
//! wrapped it, so the KEK can rotate: a new current KEK wraps new keys, the old ones stay
//! listed as previous until the store has rewrapped what they wrapped.
//!
//! The store writes one check value per KEK id it has used (a random key wrapped under that
//! KEK): at open, a configured KEK that does not open its check value is the wrong key, and
//! a check value whose KEK is not configured is a KEK the operator forgot. Either refuses to
//! open, before any data key is read.

use std::fmt;
use std::sync::{Arc, OnceLock};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use switchboard_events::id::{CustomerId, TenantId};
use switchboard_events::personal::DataKey;
use thiserror::Error;

/// The longest KEK id: it is stored with every wrapped key.
pub const MAX_KEK_ID: usize = 64;

/// What a key-encryption key does. Implementations are the local [`LocalKek`] and, plugged in
/// by an operator, a KMS client; either is shared by the store as `Arc<dyn KeyWrap>`.
pub trait KeyWrap: Send + Sync + fmt::Debug {
    /// The id of the KEK new keys are wrapped under.
    fn current_id(&self) -> &str;

    /// Wraps `key` under the current KEK, bound to `context` (who owns the key), so that a
    /// wrapped key moved to another owner does not open.
    fn wrap(&self, key: &DataKey, context: &[u8]) -> Result<WrappedKey, KeyWrapError>;

    /// Opens a key wrapped under the KEK it names, with the context it was wrapped with.
    fn unwrap(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<DataKey, KeyWrapError>;
}

/// A data key as the store keeps it: the id of its KEK and what that KEK made of it.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub kek_id: String,
    pub sealed: Vec<u8>,
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WrappedKey({}, {} bytes)",
            self.kek_id,
            self.sealed.len()
        )
    }
}

impl WrappedKey {
    /// `[id length][id][sealed]`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.kek_id.len() + self.sealed.len());
        out.push(self.kek_id.len() as u8);
        out.extend_from_slice(self.kek_id.as_bytes());
        out.extend_from_slice(&self.sealed);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, KeyWrapError> {
        let malformed = |reason: &str| KeyWrapError::Malformed(reason.to_owned());
        let (&len, rest) = bytes.split_first().ok_or_else(|| malformed("empty"))?;
        let len = usize::from(len);
        if len == 0 || len > MAX_KEK_ID || rest.len() < len {
            return Err(malformed("bad kek id length"));
        }
        let (id, sealed) = rest.split_at(len);
        let kek_id = std::str::from_utf8(id)
            .map_err(|_| malformed("kek id is not utf-8"))?
            .to_owned();
        Ok(Self {
            kek_id,
            sealed: sealed.to_vec(),
        })
    }
}

/// What can go wrong wrapping and unwrapping.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyWrapError {
    #[error(
        "data keys are wrapped under key-encryption key {id:?}, which is not configured (list it under store.kek.previous)"
    )]
    UnknownKek { id: String },
    #[error(
        "key-encryption key {id:?} does not open what this store wrapped under that id: it is the wrong key"
    )]
    WrongKek { id: String },
    #[error("key-encryption key id {id:?} must be 1 to {MAX_KEK_ID} characters of [A-Za-z0-9._-]")]
    BadId { id: String },
    #[error("key-encryption key material: {0}")]
    BadMaterial(String),
    #[error("wrapped data key is malformed: {0}")]
    Malformed(String),
    #[error("the key service failed: {0}")]
    Service(String),
}

/// What a data key is bound to: its tenant and customer.
pub fn key_context(tenant: &TenantId, customer: &CustomerId) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + tenant.as_str().len() + customer.as_str().len());
    out.extend_from_slice(tenant.as_str().as_bytes());
    out.push(0);
    out.extend_from_slice(customer.as_str().as_bytes());
    out
}

/// The context of the check value of each KEK id (no tenant id is empty, so it is no key's).
pub(crate) const CHECK_CONTEXT: &[u8] = b"\0switchboard.kek-check";

/// Wraps a fresh random key under the current KEK: the check value of that KEK.
pub(crate) fn make_check(kek: &dyn KeyWrap) -> Result<WrappedKey, KeyWrapError> {
    let key = DataKey::generate().map_err(|e| KeyWrapError::Service(e.to_string()))?;
    kek.wrap(&key, CHECK_CONTEXT)
}

/// Refuses a KEK that does not open its check value, or a check value of a missing KEK.
pub(crate) fn verify_check(kek: &dyn KeyWrap, stored: &[u8]) -> Result<String, KeyWrapError> {
    let wrapped = WrappedKey::decode(stored)?;
    kek.unwrap(&wrapped, CHECK_CONTEXT)?;
    Ok(wrapped.kek_id)
}

/// The local KEK ring: AES-256-GCM keys by id, one of them current.
pub struct LocalKek {
    current: String,
    keys: Vec<(String, Aes256Gcm)>,
}

impl fmt::Debug for LocalKek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("LocalKek")
            .field("current", &self.current)
            .field("ids", &ids)
            .finish()
    }
}

fn check_id(id: &str) -> Result<(), KeyWrapError> {
    let fine = !id.is_empty()
        && id.len() <= MAX_KEK_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if fine {
        Ok(())
    } else {
        Err(KeyWrapError::BadId { id: id.to_owned() })
    }
}

impl LocalKek {
    /// A ring whose current KEK is `key`, named `id`.
    pub fn new(id: &str, key: [u8; 32]) -> Result<Self, KeyWrapError> {
        check_id(id)?;
        Ok(Self {
            current: id.to_owned(),
            keys: vec![(id.to_owned(), Aes256Gcm::new(&key.into()))],
        })
    }

    /// Adds a previous KEK: it opens keys it wrapped, and wraps nothing new.
    pub fn with_previous(mut self, id: &str, key: [u8; 32]) -> Result<Self, KeyWrapError> {
        check_id(id)?;
        if self.keys.iter().any(|(known, _)| known == id) {
            return Err(KeyWrapError::BadId { id: id.to_owned() });
        }
        self.keys.push((id.to_owned(), Aes256Gcm::new(&key.into())));
        Ok(self)
    }

    /// A KEK made at random once per process: for tests and tools whose stores live no
    /// longer than the process. Never for data that must outlive it.
    pub fn ephemeral() -> Arc<dyn KeyWrap> {
        static EPHEMERAL: OnceLock<Arc<LocalKek>> = OnceLock::new();
        EPHEMERAL
            .get_or_init(|| {
                let key = DataKey::generate().expect("the operating system has randomness");
                Arc::new(LocalKek::new("ephemeral", *key.as_bytes()).expect("a valid constant id"))
            })
            .clone()
    }

    /// 32 bytes from 64 hex digits (surrounding whitespace ignored).
    pub fn parse_hex(text: &str) -> Result<[u8; 32], KeyWrapError> {
        let text = text.trim();
        if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(KeyWrapError::BadMaterial(format!(
                "expected 64 hex digits, got {} characters",
                text.len()
            )));
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
                .map_err(|e| KeyWrapError::BadMaterial(e.to_string()))?;
        }
        Ok(key)
    }

    fn cipher(&self, id: &str) -> Result<&Aes256Gcm, KeyWrapError> {
        self.keys
            .iter()
            .find(|(known, _)| known == id)
            .map(|(_, cipher)| cipher)
            .ok_or_else(|| KeyWrapError::UnknownKek { id: id.to_owned() })
    }
}

fn associated_data(kek_id: &str, context: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(24 + kek_id.len() + context.len());
    aad.extend_from_slice(b"switchboard.datakey.v1\0");
    aad.extend_from_slice(kek_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(context);
    aad
}

const NONCE: usize = 12;

impl KeyWrap for LocalKek {
    fn current_id(&self) -> &str {
        &self.current
    }

    /// `sealed` is a random 96-bit nonce and the ciphertext with its tag (48 bytes).
    fn wrap(&self, key: &DataKey, context: &[u8]) -> Result<WrappedKey, KeyWrapError> {
        let cipher = self.cipher(&self.current)?;
        let mut nonce = [0u8; NONCE];
        getrandom::fill(&mut nonce).map_err(|e| KeyWrapError::Service(e.to_string()))?;
        let aad = associated_data(&self.current, context);
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: key.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| KeyWrapError::Service("aes-gcm refused to encrypt".to_owned()))?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        Ok(WrappedKey {
            kek_id: self.current.clone(),
            sealed,
        })
    }

    fn unwrap(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<DataKey, KeyWrapError> {
        let cipher = self.cipher(&wrapped.kek_id)?;
        if wrapped.sealed.len() != NONCE + 32 + 16 {
            return Err(KeyWrapError::Malformed(format!(
                "{} sealed bytes",
                wrapped.sealed.len()
            )));
        }
        let (nonce, ciphertext) = wrapped.sealed.split_at(NONCE);
        let aad = associated_data(&wrapped.kek_id, context);
        let clear = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| KeyWrapError::WrongKek {
                id: wrapped.kek_id.clone(),
            })?;
        let key: [u8; 32] = clear
            .try_into()
            .map_err(|_| KeyWrapError::Malformed("unwrapped key is not 32 bytes".to_owned()))?;
        Ok(DataKey::from_bytes(key))
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
    fn a_wrapped_key_opens_with_its_kek_and_owner_only() {
        let (tenant, customer) = ids();
        let kek = LocalKek::new("kek-1", [7; 32]).unwrap();
        let key = DataKey::generate().unwrap();
        let context = key_context(&tenant, &customer);
        let wrapped = kek.wrap(&key, &context).unwrap();
        assert_eq!(wrapped.kek_id, "kek-1");
        assert!(!wrapped.sealed.windows(32).any(|w| w == key.as_bytes()));
        let decoded = WrappedKey::decode(&wrapped.encode()).unwrap();
        assert_eq!(kek.unwrap(&decoded, &context).unwrap(), key);

        let other_customer = key_context(&tenant, &CustomerId::new("cust-2").unwrap());
        assert!(matches!(
            kek.unwrap(&wrapped, &other_customer),
            Err(KeyWrapError::WrongKek { .. })
        ));
        let wrong = LocalKek::new("kek-1", [8; 32]).unwrap();
        assert!(matches!(
            wrong.unwrap(&wrapped, &context),
            Err(KeyWrapError::WrongKek { .. })
        ));
    }

    #[test]
    fn a_rotated_ring_opens_old_keys_and_wraps_under_the_new_one() {
        let key = DataKey::generate().unwrap();
        let old = LocalKek::new("kek-1", [1; 32]).unwrap();
        let wrapped = old.wrap(&key, b"ctx").unwrap();
        let rotated = LocalKek::new("kek-2", [2; 32])
            .unwrap()
            .with_previous("kek-1", [1; 32])
            .unwrap();
        assert_eq!(rotated.unwrap(&wrapped, b"ctx").unwrap(), key);
        assert_eq!(rotated.wrap(&key, b"ctx").unwrap().kek_id, "kek-2");
        let forgot = LocalKek::new("kek-2", [2; 32]).unwrap();
        let error = forgot.unwrap(&wrapped, b"ctx").unwrap_err();
        assert_eq!(
            error.to_string(),
            "data keys are wrapped under key-encryption key \"kek-1\", which is not configured (list it under store.kek.previous)"
        );
    }

    #[test]
    fn ids_material_and_encodings_are_checked() {
        assert!(LocalKek::new("", [0; 32]).is_err());
        assert!(LocalKek::new("a b", [0; 32]).is_err());
        assert!(LocalKek::new(&"k".repeat(65), [0; 32]).is_err());
        assert!(
            LocalKek::new("k", [0; 32])
                .unwrap()
                .with_previous("k", [1; 32])
                .is_err()
        );
        assert_eq!(LocalKek::parse_hex(&"ab".repeat(32)).unwrap(), [0xab; 32]);
        assert!(LocalKek::parse_hex("abc").is_err());
        assert!(LocalKek::parse_hex(&"zz".repeat(32)).is_err());
        for bad in [&[][..], &[0][..], &[5, b'a'][..], &[65][..]] {
            assert!(WrappedKey::decode(bad).is_err(), "{bad:?}");
        }
        let kek = LocalKek::new("k", [0; 32]).unwrap();
        let short = WrappedKey {
            kek_id: "k".into(),
            sealed: vec![0; 10],
        };
        assert!(matches!(
            kek.unwrap(&short, b""),
            Err(KeyWrapError::Malformed(_))
        ));
    }

    #[test]
    fn debug_output_shows_ids_never_key_material() {
        let kek = LocalKek::new("kek-1", [0x5a; 32]).unwrap();
        let printed = format!("{kek:?}");
        assert!(printed.contains("kek-1"), "{printed}");
        assert!(!printed.contains("90"), "{printed}");
    }
}
