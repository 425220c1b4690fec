//! The gRPC face: the `switchboard.query.v1.Query` service, a thin layer over
//! [`QueryService`]; errors carry the gRPC code of their [`StatusKind`] and the stable code in
//! the `switchboard-code` metadata.
//!
//! [`StatusKind`]: switchboard_events::status::StatusKind

use std::sync::Arc;

use switchboard_events::chain::Verdict;
use switchboard_events::id::{AgentId, CustomerId, Label};
use switchboard_events::principal::Principal;
use switchboard_events::{ConversationEvent, Payload, Seq, Timestamp};
use switchboard_store::conversation::{ConversationStatus, ConversationSummary};
use switchboard_store::report::Day;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Request, Response, Status};

use crate::audit::{Purpose, Scope};
use crate::error::QueryError;
use crate::lists::{ListParams, parse_cursor};
use crate::service::{HistoryFrom, QueryService};

pub mod proto {
    tonic::include_proto!("switchboard.query.v1");
}

use proto::query_server::{Query, QueryServer};

/// The response metadata key that carries an error's stable code.
pub const CODE_METADATA: &str = "switchboard-code";

/// The tonic service to add to a server.
pub fn service(query: Arc<QueryService>) -> crate::metrics::Measured<QueryServer<GrpcQuery>> {
    crate::metrics::Measured(QueryServer::new(GrpcQuery { query }))
}

#[derive(Debug)]
pub struct GrpcQuery {
    query: Arc<QueryService>,
}

impl From<QueryError> for Status {
    fn from(e: QueryError) -> Self {
        let mut status = Status::new(tonic::Code::from(e.kind().grpc()), e.to_string());
        status
            .metadata_mut()
            .insert(CODE_METADATA, MetadataValue::from_static(e.code()));
        if let Some(wait) = e.retry_after() {
            status.metadata_mut().insert(
                "retry-after-ms",
                MetadataValue::from(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)),
            );
        }
        status
    }
}

impl GrpcQuery {
    fn principal(&self, metadata: &MetadataMap) -> Result<Principal, Status> {
        Ok(self
            .query
            .authenticate(metadata.get("authorization").map(|v| v.as_bytes()))?)
    }
}

fn text<T: ToString>(value: Option<&T>) -> String {
    value.map(ToString::to_string).unwrap_or_default()
}

fn conversation(s: &ConversationSummary) -> proto::Conversation {
    proto::Conversation {
        conversation_id: s.conversation.to_string(),
        customer_id: s.customer.to_string(),
        status: s.status.as_str().to_owned(),
        priority: format!("{:?}", s.priority).to_lowercase(),
        vip: s.vip,
        agent_id: text(s.agent.as_ref()),
        tags: s.tags.iter().map(ToString::to_string).collect(),
        opened_at_micros: s.opened_at.as_micros(),
        last_activity_at_micros: s.last_activity_at.as_micros(),
        messages: s.messages,
        rating: s.rating.unwrap_or(0),
        last_seq: s.last_seq.0,
        erased: s.erased,
    }
}

fn invalid(field: &str, e: impl std::fmt::Display) -> Status {
    QueryError::invalid(format!("{field}: {e}")).into()
}

fn nonempty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

#[tonic::async_trait]
impl Query for GrpcQuery {
    async fn history(
        &self,
        request: Request<proto::HistoryRequest>,
    ) -> Result<Response<proto::HistoryPage>, Status> {
        let who = self.principal(request.metadata())?;
        let r = request.into_inner();
        use proto::history_request::From as F;
        let from = match r.from {
            None | Some(F::Newest(_)) => HistoryFrom::Newest,
            Some(F::Oldest(_)) => HistoryFrom::Oldest,
            Some(F::After(s)) => HistoryFrom::After(Seq(s)),
            Some(F::Before(s)) => HistoryFrom::Before(Seq(s)),
            Some(F::Around(s)) => HistoryFrom::Around(Seq(s)),
        };
        let limit = if r.limit == 0 { 50 } else { r.limit };
        let cached = self
            .query
            .history(&who, &r.conversation_id, from, limit)
            .await?;
        let page = &cached.page;
        let events = page
            .events
            .iter()
            .map(|e| proto::Event {
                seq: e.seq.0,
                conversation_id: page.conversation_id.to_string(),
                occurred_at_micros: e.occurred_at.as_micros(),
                kind: e.kind.to_owned(),
                frame: e.frame.clone(),
                event_json: e.event.to_string(),
            })
            .collect();
        Ok(Response::new(proto::HistoryPage {
            events,
            before: page.before.map_or(0, |s| s.0),
            after: page.after.map_or(0, |s| s.0),
        }))
    }

    async fn list_conversations(
        &self,
        request: Request<proto::ListRequest>,
    ) -> Result<Response<proto::ListPage>, Status> {
        let who = self.principal(request.metadata())?;
        let r = request.into_inner();
        let status = nonempty(&r.status)
            .map(|s| ConversationStatus::from_name(s).ok_or_else(|| invalid("status", s)))
            .transpose()?;
        let params = ListParams {
            status,
            agent: nonempty(&r.agent_id)
                .map(|a| AgentId::new(a).map_err(|e| invalid("agent_id", e)))
                .transpose()?,
            customer: nonempty(&r.customer_id)
                .map(|c| CustomerId::new(c).map_err(|e| invalid("customer_id", e)))
                .transpose()?,
            tag: nonempty(&r.tag)
                .map(|t| Label::new(t).map_err(|e| invalid("tag", e)))
                .transpose()?,
            updated_since: (r.updated_since_micros != 0)
                .then_some(Timestamp(r.updated_since_micros)),
            limit: if r.limit == 0 { 50 } else { r.limit },
            cursor: nonempty(&r.cursor).map(parse_cursor).transpose()?,
        };
        let result = self.query.list(&who, params).await?;
        Ok(Response::new(proto::ListPage {
            conversations: result.conversations.iter().map(conversation).collect(),
            next: result.next.unwrap_or_default(),
        }))
    }

    async fn summary(
        &self,
        request: Request<proto::SummaryRequest>,
    ) -> Result<Response<proto::Conversation>, Status> {
        let who = self.principal(request.metadata())?;
        let id = request.into_inner().conversation_id;
        let summary = self.query.summary(&who, &id).await?;
        Ok(Response::new(conversation(&summary)))
    }

    async fn report(
        &self,
        request: Request<proto::ReportRequest>,
    ) -> Result<Response<proto::ReportReply>, Status> {
        let who = self.principal(request.metadata())?;
        let r = request.into_inner();
        let agent = nonempty(&r.agent_id)
            .map(|a| AgentId::new(a).map_err(|e| invalid("agent_id", e)))
            .transpose()?;
        let days = self
            .query
            .report(&who, agent, Day(r.from_day), Day(r.to_day))
            .await?;
        let days = days
            .into_iter()
            .map(|d| {
                let c = d.counters;
                proto::DailyReport {
                    day: d.day.0,
                    conversations_opened: c.conversations_opened,
                    conversations_resolved: c.conversations_resolved,
                    messages_from_customers: c.messages_from_customers,
                    messages_from_agents: c.messages_from_agents,
                    first_responses: c.first_responses,
                    first_response_micros: c.first_response_micros,
                    resolutions: c.resolutions,
                    resolution_micros: c.resolution_micros,
                    ratings: c.ratings,
                    rating_sum: c.rating_sum,
                    satisfied: c.satisfied,
                }
            })
            .collect();
        Ok(Response::new(proto::ReportReply { days }))
    }

    type ReplayStream = ReceiverStream<Result<proto::Event, Status>>;

    async fn replay(
        &self,
        request: Request<proto::ReplayRequest>,
    ) -> Result<Response<Self::ReplayStream>, Status> {
        let who = self.principal(request.metadata())?;
        let r = request.into_inner();
        let scope = match nonempty(&r.conversation_id) {
            Some(id) => Scope::Conversation(id.to_owned()),
            None => Scope::Tenant {
                from: Timestamp(r.from_micros),
                to: Timestamp(r.to_micros),
            },
        };
        let mut replay = self.query.replay(&who, scope, Purpose::Audit).await?;
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(async move {
            while let Some(chunk) = replay.recv().await {
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                };
                for frame in chunk.frames {
                    // As recorded: sealed fields stay ciphertext, as in every audit format.
                    let (kind, event_json, occurred_at) =
                        match ConversationEvent::decode(&frame.bytes) {
                            Ok(event) => (
                                event.payload.record_name().to_owned(),
                                serde_json::to_string(&event).unwrap_or_default(),
                                event.envelope.occurred_at.as_micros(),
                            ),
                            Err(e) => (
                                String::new(),
                                format!("{{\"undecodable\":{:?}}}", e.to_string()),
                                0,
                            ),
                        };
                    let event = proto::Event {
                        seq: frame.seq.0,
                        conversation_id: chunk.conversation.to_string(),
                        occurred_at_micros: occurred_at,
                        kind,
                        frame: frame.bytes,
                        event_json,
                    };
                    if tx.send(Ok(event)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn verify(
        &self,
        request: Request<proto::VerifyRequest>,
    ) -> Result<Response<proto::Verdict>, Status> {
        let who = self.principal(request.metadata())?;
        let id = request.into_inner().conversation_id;
        let verdict = self.query.verify(&who, &id).await?;
        Ok(Response::new(match verdict {
            Verdict::Intact { events, .. } => proto::Verdict {
                intact: true,
                events,
                seq: 0,
                problem: String::new(),
            },
            Verdict::Broken { seq, problem } => {
                let problem = serde_json::to_value(&problem)
                    .ok()
                    .and_then(|v| v.get("problem").and_then(|p| p.as_str()).map(str::to_owned))
                    .unwrap_or_default();
                proto::Verdict {
                    intact: false,
                    events: 0,
                    seq: seq.0,
                    problem,
                }
            }
        }))
    }
}
