//! An issuer's signing keys: private keys named by `kid`, the newest signing, every one still
//! verifying until it is retired, and the public half of all of them as a JWKS document.
//!
//! A `kid` is `<created>-<suffix>`: the second the key was made (Unix epoch) and a random
//! suffix. The creation time orders the keys, so the newest key is the active one and a key
//! may be retired once its successor has signed for longer than any token may live. The
//! private halves travel as PKCS#8 PEM (what `openssl genpkey` writes); storing them is the
//! caller's business, this module does no I/O.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::pkcs8::DecodePrivateKey;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, EncodingKey};

/// Why a key, a key set or a JWKS document cannot be used: configuration errors, met at
/// start-up or at rotation, never a caller's token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "the key id {0:?} is not of the form <created>-<suffix> (digits, a dash, 1 to 32 letters or digits)"
    )]
    InvalidKid(String),
    #[error("key {kid}: {reason}")]
    Unusable { kid: String, reason: String },
    #[error("key {0} appears twice")]
    DuplicateKid(String),
    #[error("the issuer has no signing key")]
    NoSigningKey,
    #[error("no randomness for a new key: {0}")]
    Randomness(String),
    #[error("the JWKS document is not valid: {0}")]
    Jwks(String),
    #[error("signing a token failed: {0}")]
    Signing(String),
}

/// PKCS#8 v1 of an Ed25519 private key is this prefix and the 32-byte seed (RFC 8410).
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// The creation second a well-formed `kid` names.
pub(crate) fn kid_created(kid: &str) -> Result<u64, KeyError> {
    let invalid = || KeyError::InvalidKid(kid.to_owned());
    let (created, suffix) = kid.split_once('-').ok_or_else(invalid)?;
    let suffix_ok =
        (1..=32).contains(&suffix.len()) && suffix.bytes().all(|b| b.is_ascii_alphanumeric());
    if created.is_empty() || !created.bytes().all(|b| b.is_ascii_digit()) || !suffix_ok {
        return Err(invalid());
    }
    created.parse().map_err(|_| invalid())
}

/// One private key of an issuer (Ed25519 for EdDSA, or P-256 for ES256), with its public JWK.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    created: u64,
    algorithm: Algorithm,
    key: EncodingKey,
    public: Jwk,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

fn ed25519_jwk(kid: &str, public: &[u8; 32]) -> Jwk {
    Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(KeyAlgorithm::EdDSA),
            key_id: Some(kid.to_owned()),
            ..CommonParameters::default()
        },
        algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x: URL_SAFE_NO_PAD.encode(public),
        }),
    }
}

impl SigningKey {
    /// A new Ed25519 key made at `created` (seconds since the Unix epoch), with a fresh `kid`.
    pub fn generate(created: u64) -> Result<Self, KeyError> {
        let mut random = [0u8; 36];
        getrandom::fill(&mut random).map_err(|e| KeyError::Randomness(e.to_string()))?;
        let (seed, suffix) = random.split_at(32);
        let kid = format!("{created}-{}", crate::hex::encode(suffix));
        let mut pkcs8 = ED25519_PKCS8_PREFIX.to_vec();
        pkcs8.extend_from_slice(seed);
        let key = Self::ed25519(&kid, created, EncodingKey::from_ed_der(&pkcs8));
        pkcs8.fill(0);
        random.fill(0);
        key
    }

    fn ed25519(kid: &str, created: u64, key: EncodingKey) -> Result<Self, KeyError> {
        let private = ed25519_dalek::SigningKey::from_pkcs8_der(key.inner()).map_err(|e| {
            KeyError::Unusable {
                kid: kid.to_owned(),
                reason: format!("not an Ed25519 PKCS#8 key: {e}"),
            }
        })?;
        let public = ed25519_jwk(kid, private.verifying_key().as_bytes());
        Ok(Self {
            kid: kid.to_owned(),
            created,
            algorithm: Algorithm::EdDSA,
            key,
            public,
        })
    }

    /// A key from its PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`): Ed25519 signs with EdDSA,
    /// P-256 with ES256; any other key is refused.
    pub fn from_pem(kid: &str, pem: &[u8]) -> Result<Self, KeyError> {
        let created = kid_created(kid)?;
        if let Ok(key) = EncodingKey::from_ed_pem(pem) {
            return Self::ed25519(kid, created, key);
        }
        let unusable = |reason: String| KeyError::Unusable {
            kid: kid.to_owned(),
            reason,
        };
        let key = EncodingKey::from_ec_pem(pem)
            .map_err(|e| unusable(format!("neither an Ed25519 nor a P-256 PKCS#8 key: {e}")))?;
        let mut public = Jwk::from_encoding_key(&key, Algorithm::ES256)
            .map_err(|e| unusable(format!("not a P-256 key: {e}")))?;
        public.common.key_id = Some(kid.to_owned());
        public.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(Self {
            kid: kid.to_owned(),
            created,
            algorithm: Algorithm::ES256,
            key,
            public,
        })
    }

    /// The private key as PKCS#8 PEM: a secret, for a file only its owner may read.
    pub fn to_pem(&self) -> String {
        let body = STANDARD.encode(self.key.inner());
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for line in body.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        pem
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// When the key was made, seconds since the Unix epoch.
    pub fn created(&self) -> u64 {
        self.created
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The public half, as a JWK with `kid`, `alg` and `use: sig`.
    pub fn public_jwk(&self) -> &Jwk {
        &self.public
    }

    pub(crate) fn encoding_key(&self) -> &EncodingKey {
        &self.key
    }
}

/// The keys of one issuer, oldest first: the newest signs, every one verifies until retired.
#[derive(Clone, Debug)]
pub struct IssuerKeys {
    keys: Vec<SigningKey>,
}

impl IssuerKeys {
    /// At least one key; `kid`s must be unique.
    pub fn new(keys: impl IntoIterator<Item = SigningKey>) -> Result<Self, KeyError> {
        let mut keys: Vec<SigningKey> = keys.into_iter().collect();
        keys.sort_by(|a, b| (a.created, &a.kid).cmp(&(b.created, &b.kid)));
        if let Some(twice) = keys.windows(2).find(|w| w[0].kid == w[1].kid) {
            return Err(KeyError::DuplicateKid(twice[0].kid.clone()));
        }
        if keys.is_empty() {
            return Err(KeyError::NoSigningKey);
        }
        Ok(Self { keys })
    }

    /// One new key, made now.
    pub fn generate(now: u64) -> Result<Self, KeyError> {
        Self::new([SigningKey::generate(now)?])
    }

    /// The key that signs new tokens: the newest.
    pub fn active(&self) -> &SigningKey {
        // `new` refuses an empty set and `retire` always keeps the newest key.
        &self.keys[self.keys.len() - 1]
    }

    /// Every key, oldest first.
    pub fn keys(&self) -> &[SigningKey] {
        &self.keys
    }

    /// Adds a new Ed25519 key made at `now` and makes it the active one; the others keep
    /// verifying. Returns the new key, for the caller to store.
    pub fn rotate(&mut self, now: u64) -> Result<&SigningKey, KeyError> {
        // Strictly after the active key, so that the new key sorts last even within a second.
        let created = now.max(self.active().created + 1);
        self.keys.push(SigningKey::generate(created)?);
        Ok(self.active())
    }

    /// Drops every key whose successor was made more than `keep_for` seconds before `now`:
    /// every token such a key signed has expired (keep `keep_for` at the longest lifetime
    /// plus the leeway). The active key always stays. Returns the `kid`s dropped, for the
    /// caller to delete.
    pub fn retire(&mut self, now: u64, keep_for: u64) -> Vec<String> {
        let cutoff = now.saturating_sub(keep_for);
        let done = self
            .keys
            .windows(2)
            .take_while(|pair| pair[1].created < cutoff)
            .count();
        self.keys.drain(..done).map(|key| key.kid).collect()
    }

    /// The public JWKS of these keys, what `/.well-known/jwks.json` serves.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.keys.iter().map(|k| k.public.clone()).collect(),
        }
    }
}

/// A JWKS document from its JSON.
pub fn parse_jwks(json: &[u8]) -> Result<JwkSet, KeyError> {
    serde_json::from_slice(json).map_err(|e| KeyError::Jwks(e.to_string()))
}
