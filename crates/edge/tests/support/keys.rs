//! The writer's data keys, kept in the read-model store: what the edge opens bodies with.

use std::sync::Arc;

use switchboard_events::id::{CustomerId, TenantId};
use switchboard_events::personal::DataKey;
use switchboard_ingest::CommandError;
use switchboard_ingest::writer::keys::{BoxFuture, DataKeys};
use switchboard_store::{ReadModels, StoreError};

#[derive(Debug)]
pub struct StoreKeys(pub Arc<dyn ReadModels>);

impl DataKeys for StoreKeys {
    fn key<'a>(
        &'a self,
        tenant: &'a TenantId,
        customer: &'a CustomerId,
    ) -> BoxFuture<'a, Result<Option<DataKey>, CommandError>> {
        Box::pin(async move {
            match self.0.create_data_key(tenant, customer).await {
                Ok(key) => Ok(Some(key)),
                Err(StoreError::KeyErased { .. }) => Ok(None),
                Err(error) => Err(CommandError::Unavailable(error.to_string())),
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
                .map_err(|e| CommandError::Unavailable(e.to_string()))
        })
    }
}
