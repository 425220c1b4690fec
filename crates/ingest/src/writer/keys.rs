//! The per-customer data keys the writer seals personal data with.

use std::future::Future;
use std::pin::Pin;

use switchboard_events::id::{CustomerId, TenantId};
use switchboard_events::personal::{DataKey, MemoryKeys, Revealed, Sealed};

use crate::conversation::Sealer;
use crate::error::CommandError;
use crate::writer::cache::{MemoryCache, StateCache};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where data keys live (the read-model store in production).
pub trait DataKeys: Send + Sync + std::fmt::Debug {
    /// The customer's key, created on first use; `None` once erased.
    fn key<'a>(
        &'a self,
        tenant: &'a TenantId,
        customer: &'a CustomerId,
    ) -> BoxFuture<'a, Result<Option<DataKey>, CommandError>>;

    /// Destroys the customer's key for good. Idempotent.
    fn destroy<'a>(
        &'a self,
        tenant: &'a TenantId,
        customer: &'a CustomerId,
    ) -> BoxFuture<'a, Result<(), CommandError>>;

    /// Where the writer keeps its snapshots and parked conversations, when the same place
    /// keeps the keys (the store). Without one, a writer folds its partitions from their
    /// start and keeps every conversation in memory.
    fn state_cache(&self) -> Option<&dyn StateCache> {
        None
    }
}

/// Keys in memory, for tests and tools: nothing survives the process.
#[derive(Debug, Default)]
pub struct InMemoryKeys {
    keys: MemoryKeys,
    cache: MemoryCache,
    erased: std::sync::Mutex<std::collections::HashSet<(TenantId, CustomerId)>>,
}

impl DataKeys for InMemoryKeys {
    fn key<'a>(
        &'a self,
        tenant: &'a TenantId,
        customer: &'a CustomerId,
    ) -> BoxFuture<'a, Result<Option<DataKey>, CommandError>> {
        Box::pin(async move {
            let erased = self.erased.lock().unwrap_or_else(|p| p.into_inner());
            if erased.contains(&(tenant.clone(), customer.clone())) {
                return Ok(None);
            }
            self.keys
                .key_for(tenant, customer)
                .map(Some)
                .map_err(|e| CommandError::Internal(e.to_string()))
        })
    }

    fn destroy<'a>(
        &'a self,
        tenant: &'a TenantId,
        customer: &'a CustomerId,
    ) -> BoxFuture<'a, Result<(), CommandError>> {
        Box::pin(async move {
            self.erased
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert((tenant.clone(), customer.clone()));
            self.keys.erase(tenant, customer);
            Ok(())
        })
    }

    fn state_cache(&self) -> Option<&dyn StateCache> {
        Some(&self.cache)
    }
}

/// Seals with one customer's key, as the rules ask.
pub(crate) struct KeySealer<'a> {
    pub tenant: &'a TenantId,
    pub customer: &'a CustomerId,
    pub key: Option<&'a DataKey>,
}

impl Sealer for KeySealer<'_> {
    fn seal(&self, text: &str) -> Result<Sealed, CommandError> {
        let key = self.key.ok_or(CommandError::CustomerErased)?;
        Sealed::seal(key, self.tenant, self.customer, text)
            .map_err(|e| CommandError::Internal(e.to_string()))
    }

    fn reveal(&self, sealed: &Sealed) -> Result<Revealed, CommandError> {
        match self.key {
            Some(key) if sealed.key_id == *self.customer => sealed
                .open(key, self.tenant)
                .map(Revealed::Text)
                .map_err(|e| CommandError::Internal(e.to_string())),
            Some(_) => Err(CommandError::Internal(
                "a sealed value of another customer".to_owned(),
            )),
            None => Ok(Revealed::Erased),
        }
    }
}

/// The data keys of the read-model store: created on first use, destroyed for good.
#[derive(Debug, Clone)]
pub struct StoreKeys(pub std::sync::Arc<dyn switchboard_store::ReadModels>);

impl DataKeys for StoreKeys {
    fn key<'a>(
        &'a self,
        tenant: &'a TenantId,
        customer: &'a CustomerId,
    ) -> BoxFuture<'a, Result<Option<DataKey>, CommandError>> {
        Box::pin(async move {
            match self.0.create_data_key(tenant, customer).await {
                Ok(key) => Ok(Some(key)),
                Err(switchboard_store::StoreError::KeyErased { .. }) => Ok(None),
                Err(e) => Err(CommandError::Unavailable(format!(
                    "the key store failed: {e}"
                ))),
            }
        })
    }

    fn destroy<'a>(
        &'a self,
        tenant: &'a TenantId,
        customer: &'a CustomerId,
    ) -> BoxFuture<'a, Result<(), CommandError>> {
        Box::pin(async move {
            self.0
                .destroy_data_key(tenant, customer)
                .await
                .map_err(|e| CommandError::Unavailable(format!("the key store failed: {e}")))
        })
    }

    fn state_cache(&self) -> Option<&dyn StateCache> {
        Some(self)
    }
}
