//! The ScyllaDB backend, for the distributed deployment.
//!
//! Same shape as the embedded backend: `schema` (every table and statement), `read`, `write`,
//! `tests`. Statements are prepared once at connection, run at LOCAL_QUORUM, paged, and marked
//! idempotent so the driver may retry them; rows carry version-derived write timestamps (see
//! `schema`), which makes every projected write an idempotent upsert without lightweight
//! transactions.

mod read;
pub mod schema;
#[cfg(test)]
mod tests;
mod write;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
pub use scylla::statement::Consistency;
use scylla::statement::SerialConsistency;
use scylla::statement::prepared::PreparedStatement;
use switchboard_events::id::{AgentId, ConversationId, CustomerId, TenantId};
use switchboard_events::personal::{DataKey, KeyProvider, PersonalDataError};
use tokio::runtime::{Handle, RuntimeFlavor};

use crate::agent::AgentState;
use crate::archive::{ArchiveEntry, ResolvedRef};
use crate::checkpoint::{CheckpointKey, LogPartition};
use crate::conversation::{ConversationSummary, ListPage, ListQuery, QueueEntry};
use crate::keywrap::{KeyWrap, LocalKek};
use crate::report::{DailyReport, Day, ReportKey, ReportPartial, ReportScope};
use crate::timeline::{TimelinePage, TimelineQuery};
use crate::writer_cache::{ParkedConversation, WriterSnapshot};
use crate::{Batch, ReadModels, StoreError};

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ScyllaOptions {
    /// `host:port` of one or more nodes; the driver discovers the rest.
    pub nodes: Vec<String>,
    pub keyspace: String,
    /// Create the keyspace (SimpleStrategy, replication 1) and tables when missing: for tests
    /// and single-node setups. Production creates them with ops/'s replication settings.
    pub create_schema: bool,
    /// Replication factor of the keyspace when `create_schema` creates it.
    pub replication_factor: u32,
    /// Consistency of every statement (lightweight transactions use LOCAL_SERIAL).
    pub consistency: Consistency,
    /// Rows per page fetched from the cluster.
    pub page_size: i32,
    /// Concurrent requests of one batch.
    pub concurrency: usize,
    /// The key-encryption key the customers' data keys are wrapped under (by default
    /// [`LocalKek::ephemeral`], which lives only as long as the process).
    pub kek: Arc<dyn KeyWrap>,
}

impl ScyllaOptions {
    pub fn new(nodes: Vec<String>, keyspace: impl Into<String>) -> Self {
        Self {
            nodes,
            keyspace: keyspace.into(),
            create_schema: false,
            replication_factor: 1,
            consistency: Consistency::LocalQuorum,
            page_size: 500,
            concurrency: 256,
            kek: LocalKek::ephemeral(),
        }
    }
}

/// The read-model store on ScyllaDB. Cheap to clone.
#[derive(Clone)]
pub struct ScyllaStore {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    session: Session,
    statements: HashMap<&'static str, PreparedStatement>,
    concurrency: usize,
    /// The runtime the store was connected on: the synchronous key provider blocks on it.
    runtime: Handle,
    kek: Arc<dyn KeyWrap>,
}

impl Inner {
    /// The prepared form of one of `schema::cql`'s statements.
    fn statement(&self, cql: &'static str) -> &PreparedStatement {
        self.statements
            .get(cql)
            .expect("every statement of schema::STATEMENTS is prepared at connection")
    }

    /// The statement with a write timestamp for one execution.
    fn at(&self, cql: &'static str, timestamp: i64) -> PreparedStatement {
        let mut statement = self.statement(cql).clone();
        statement.set_timestamp(Some(timestamp));
        statement
    }
}

impl fmt::Debug for ScyllaStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScyllaStore")
            .field("statements", &self.inner.statements.len())
            .finish_non_exhaustive()
    }
}

pub(crate) fn driver_error<E: fmt::Display>(operation: &'static str) -> impl Fn(E) -> StoreError {
    move |e| StoreError::Backend {
        operation,
        reason: e.to_string(),
        retriable: true,
    }
}

impl ScyllaStore {
    /// Connects, optionally creates the schema, prepares every statement and checks the KEK
    /// against the one the store's keys were wrapped under.
    pub async fn connect(options: &ScyllaOptions) -> Result<Self, StoreError> {
        let session = SessionBuilder::new()
            .known_nodes(&options.nodes)
            .build()
            .await
            .map_err(driver_error("connect to scylla"))?;
        let ks = &options.keyspace;
        if options.create_schema {
            let keyspace = schema::create_keyspace(options.replication_factor);
            for ddl in std::iter::once(&keyspace.as_str()).chain(schema::TABLES) {
                session
                    .query_unpaged(schema::in_keyspace(ddl, ks), ())
                    .await
                    .map_err(driver_error("create the schema"))?;
            }
            session
                .await_schema_agreement()
                .await
                .map_err(driver_error("agree on the schema"))?;
        }
        let mut statements = HashMap::new();
        for cql in schema::STATEMENTS {
            let mut prepared = session
                .prepare(schema::in_keyspace(cql, ks))
                .await
                .map_err(driver_error("prepare a statement"))?;
            prepared.set_consistency(options.consistency);
            prepared.set_page_size(options.page_size);
            if schema::is_lwt(cql) {
                prepared.set_serial_consistency(Some(SerialConsistency::LocalSerial));
            } else {
                prepared.set_is_idempotent(true);
            }
            statements.insert(*cql, prepared);
        }
        let inner = Arc::new(Inner {
            session,
            statements,
            concurrency: options.concurrency.max(1),
            runtime: Handle::current(),
            kek: options.kek.clone(),
        });
        write::check_kek(&inner).await?;
        Ok(Self { inner })
    }
}

/// The port's key provider is synchronous (sealing code is not async); this one blocks on the
/// cluster. Call it from a multi-thread runtime or from outside any runtime: on a
/// current-thread runtime, blocking would stop the very runtime the request needs.
impl KeyProvider for ScyllaStore {
    fn data_key(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
    ) -> Result<Option<DataKey>, PersonalDataError> {
        let read = read::data_key(&self.inner, tenant, customer);
        let result = match Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| handle.block_on(read))
            }
            Ok(_) => {
                return Err(PersonalDataError::Provider(
                    "the scylla key provider blocks and cannot run on a current-thread runtime"
                        .to_owned(),
                ));
            }
            Err(_) => self.inner.runtime.block_on(read),
        };
        result.map_err(|e| PersonalDataError::Provider(e.to_string()))
    }
}

#[async_trait]
impl ReadModels for ScyllaStore {
    async fn apply(&self, batch: &Batch) -> Result<(), StoreError> {
        write::apply(&self.inner, batch).await
    }

    async fn checkpoint(&self, key: &CheckpointKey) -> Result<Option<u64>, StoreError> {
        read::checkpoint(&self.inner, key).await
    }

    async fn timeline(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        query: TimelineQuery,
    ) -> Result<TimelinePage, StoreError> {
        read::timeline(&self.inner, tenant, conversation, query).await
    }

    async fn conversation(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> Result<Option<ConversationSummary>, StoreError> {
        let row = read::summary_row(&self.inner, tenant.as_str(), conversation.as_str()).await?;
        Ok(row.and_then(|(summary, _)| summary))
    }

    async fn conversations(
        &self,
        tenant: &TenantId,
        query: &ListQuery,
    ) -> Result<ListPage, StoreError> {
        read::list(&self.inner, tenant, query).await
    }

    async fn queue(&self, tenant: &TenantId) -> Result<Vec<QueueEntry>, StoreError> {
        read::queue(&self.inner, tenant).await
    }

    async fn agent(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> Result<Option<AgentState>, StoreError> {
        read::agent(&self.inner, tenant, agent).await
    }

    async fn agents(&self, tenant: &TenantId) -> Result<Vec<AgentState>, StoreError> {
        read::agents(&self.inner, tenant).await
    }

    async fn report(
        &self,
        tenant: &TenantId,
        scope: &ReportScope,
        from: Day,
        to: Day,
    ) -> Result<Vec<DailyReport>, StoreError> {
        read::report(&self.inner, tenant, scope, from, to).await
    }

    async fn report_partial(
        &self,
        key: &ReportKey,
        source: LogPartition,
    ) -> Result<Option<ReportPartial>, StoreError> {
        read::report_partial(&self.inner, key, source).await
    }

    async fn create_data_key(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
    ) -> Result<DataKey, StoreError> {
        write::create_data_key(&self.inner, tenant, customer).await
    }

    async fn destroy_data_key(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
    ) -> Result<(), StoreError> {
        write::destroy_data_key(&self.inner, tenant, customer).await
    }

    async fn resolved_on(
        &self,
        day: Day,
        after: Option<&ResolvedRef>,
        limit: u32,
    ) -> Result<Vec<ResolvedRef>, StoreError> {
        read::resolved_on(&self.inner, day, after, limit).await
    }

    async fn archive(&self, entry: &ArchiveEntry) -> Result<(), StoreError> {
        write::archive(&self.inner, entry).await
    }

    async fn archived(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> Result<Option<ArchiveEntry>, StoreError> {
        read::archived(&self.inner, tenant, conversation).await
    }

    async fn archive_manifest(
        &self,
        tenant: &TenantId,
        day: Day,
    ) -> Result<Vec<ArchiveEntry>, StoreError> {
        read::archive_manifest(&self.inner, tenant, day).await
    }

    async fn writer_snapshot(
        &self,
        source: LogPartition,
    ) -> Result<Option<WriterSnapshot>, StoreError> {
        read::writer_snapshot(&self.inner, source).await
    }

    async fn put_writer_snapshot(&self, snapshot: &WriterSnapshot) -> Result<(), StoreError> {
        write::put_writer_snapshot(&self.inner, snapshot).await
    }

    async fn parked_conversation(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> Result<Option<ParkedConversation>, StoreError> {
        read::parked_conversation(&self.inner, tenant, conversation).await
    }

    async fn park_conversation(&self, parked: &ParkedConversation) -> Result<(), StoreError> {
        write::park_conversation(&self.inner, parked).await
    }
}
