//! Visitor sessions: the secrets behind the widget's anonymous sessions and the business's
//! identity verification, all derived from the instance's one session secret, so that every
//! instance sharing that secret answers the same and nothing about a visitor is stored.
//!
//! - A visitor's **refresh secret** is `HMAC(session secret, "refresh", tenant, visitor)`: the
//!   browser keeps the visitor id and this secret, and gets a new token for the same visitor —
//!   the same customer, so the same conversations — with them.
//! - A tenant's **identity secret** is `HMAC(session secret, "identity", tenant, generation)`.
//!   The business's backend signs its own user id with it (`hex(HMAC-SHA256(identity secret,
//!   user id))`); a visitor who presents a user id with its signature becomes the customer
//!   [`verified_customer`] of that user id, the same on every device. Bumping the generation in
//!   the tenant's settings rotates the secret.
//!
//! Comparisons are constant-time. Secrets never appear in errors or logs.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::hex;
use crate::id::{CustomerId, TenantId};

type HmacSha256 = Hmac<Sha256>;

/// The longest user id a business may verify.
pub const MAX_USER_ID: usize = 256;

/// The instance's session secret: 32 bytes or more.
#[derive(Clone)]
pub struct SessionSecret(Vec<u8>);

impl fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionSecret(…)")
    }
}

/// A session secret shorter than 32 bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a session secret needs at least 32 bytes, this one has {0}")]
pub struct ShortSecret(pub usize);

impl SessionSecret {
    pub fn new(bytes: Vec<u8>) -> Result<Self, ShortSecret> {
        if bytes.len() < 32 {
            return Err(ShortSecret(bytes.len()));
        }
        Ok(Self(bytes))
    }

    /// 32 fresh random bytes.
    pub fn generate() -> Self {
        let mut bytes = vec![0; 32];
        getrandom::fill(&mut bytes).expect("the system random generator works");
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn mac(&self, parts: &[&[u8]]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        for part in parts {
            // Length-prefixed, so that no two lists of parts give the same input.
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    /// The refresh secret of `visitor` in `tenant`, hex.
    pub fn refresh_secret(&self, tenant: &TenantId, visitor: &CustomerId) -> String {
        let mac = self.mac(&[
            b"refresh",
            tenant.as_str().as_bytes(),
            visitor.as_str().as_bytes(),
        ]);
        hex::encode(&mac.finalize().into_bytes())
    }

    /// Whether `secret` is the refresh secret of `visitor` in `tenant`.
    pub fn verify_refresh(&self, tenant: &TenantId, visitor: &CustomerId, secret: &str) -> bool {
        let Some(given) = hex::decode(secret) else {
            return false;
        };
        self.mac(&[
            b"refresh",
            tenant.as_str().as_bytes(),
            visitor.as_str().as_bytes(),
        ])
        .verify_slice(&given)
        .is_ok()
    }

    /// The identity-verification secret of `tenant` at `generation`, hex: what the business's
    /// backend signs user ids with.
    pub fn identity_secret(&self, tenant: &TenantId, generation: u32) -> String {
        let mac = self.mac(&[
            b"identity",
            tenant.as_str().as_bytes(),
            &generation.to_be_bytes(),
        ]);
        hex::encode(&mac.finalize().into_bytes())
    }

    /// Whether `signature` (hex) is the HMAC-SHA256 of `user_id` under the tenant's identity
    /// secret at `generation`.
    pub fn verify_identity(
        &self,
        tenant: &TenantId,
        generation: u32,
        user_id: &str,
        signature: &str,
    ) -> bool {
        let Some(given) = hex::decode(signature) else {
            return false;
        };
        let secret = self.identity_secret(tenant, generation);
        let mut mac =
            HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
        mac.update(user_id.as_bytes());
        mac.verify_slice(&given).is_ok()
    }
}

/// A new anonymous visitor id: `v-` and 32 random hex digits.
pub fn anonymous_visitor() -> CustomerId {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the system random generator works");
    CustomerId::new(format!("v-{}", hex::encode(&bytes))).expect("a valid id")
}

/// The customer a verified user id of the business is: `u-` and 40 hex digits of its digest,
/// so any user id (whatever its characters) maps to one valid, stable customer id.
pub fn verified_customer(user_id: &str) -> CustomerId {
    let digest = Sha256::digest(user_id.as_bytes());
    CustomerId::new(format!("u-{}", hex::encode(&digest[..20]))).expect("a valid id")
}

/// The HMAC-SHA256 of `message` under `key`, hex: what a business's backend computes to sign a
/// user id (for tests and examples; any HMAC library gives the same).
pub fn sign_hex(key: &[u8], message: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    hex::encode(&mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> SessionSecret {
        SessionSecret::new(vec![7; 32]).unwrap()
    }

    fn tenant(name: &str) -> TenantId {
        TenantId::new(name).unwrap()
    }

    #[test]
    fn refresh_secrets_are_bound_to_tenant_and_visitor() {
        let s = secret();
        let visitor = anonymous_visitor();
        let refresh = s.refresh_secret(&tenant("acme"), &visitor);
        assert!(s.verify_refresh(&tenant("acme"), &visitor, &refresh));
        assert!(!s.verify_refresh(&tenant("globex"), &visitor, &refresh));
        assert!(!s.verify_refresh(&tenant("acme"), &anonymous_visitor(), &refresh));
        assert!(!s.verify_refresh(&tenant("acme"), &visitor, "zz"));
        let other = SessionSecret::new(vec![8; 32]).unwrap();
        assert!(!other.verify_refresh(&tenant("acme"), &visitor, &refresh));
    }

    #[test]
    fn identity_signatures_verify_only_with_the_tenants_current_secret() {
        let s = secret();
        let key = s.identity_secret(&tenant("acme"), 1);
        let signature = sign_hex(key.as_bytes(), b"user-42");
        assert!(s.verify_identity(&tenant("acme"), 1, "user-42", &signature));
        assert!(!s.verify_identity(&tenant("acme"), 1, "user-43", &signature));
        assert!(
            !s.verify_identity(&tenant("acme"), 2, "user-42", &signature),
            "rotated"
        );
        assert!(!s.verify_identity(&tenant("globex"), 1, "user-42", &signature));
        let mut tampered = signature.into_bytes();
        tampered[0] = if tampered[0] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(!s.verify_identity(&tenant("acme"), 1, "user-42", &tampered));
    }

    #[test]
    fn visitor_ids_are_valid_and_verified_ones_stable() {
        assert_ne!(anonymous_visitor(), anonymous_visitor());
        assert_eq!(verified_customer("a b/c"), verified_customer("a b/c"));
        assert_ne!(verified_customer("a"), verified_customer("b"));
        assert!(SessionSecret::new(vec![0; 31]).is_err());
    }
}
