//! Events into read models: pure functions, so that what the projector writes follows from the
//! events alone and a rebuild writes the same rows.

use switchboard_events::agent::AgentPayload;
use switchboard_events::conversation::{ConversationPayload, TransferTarget};
use switchboard_events::envelope::ActorKind;
use switchboard_events::{AgentEvent, ConversationEvent, Seq, Timestamp};
use switchboard_store::agent::AgentRecord;
use switchboard_store::conversation::{ConversationStatus, ConversationSummary};
use switchboard_store::report::{Day, ReportCounters, ReportKey, ReportScope};

/// Why an event cannot be folded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FoldError {
    #[error("seq {seq} of conversation {conversation} arrived before the conversation was opened")]
    NotOpened { conversation: String, seq: Seq },
    #[error("conversation {conversation} is opened again at seq {seq}")]
    OpenedTwice { conversation: String, seq: Seq },
}

/// The summary a conversation starts with.
pub fn opened(event: &ConversationEvent) -> Result<ConversationSummary, FoldError> {
    let e = &event.envelope;
    let ConversationPayload::Opened(o) = &event.payload else {
        return Err(FoldError::NotOpened {
            conversation: e.conversation_id.to_string(),
            seq: e.seq,
        });
    };
    Ok(ConversationSummary {
        tenant: e.tenant_id.clone(),
        conversation: e.conversation_id.clone(),
        customer: o.customer_id.clone(),
        channel: o.channel,
        status: ConversationStatus::Open,
        priority: o.priority,
        vip: o.vip,
        team: o.team_id.clone(),
        agent: None,
        required_skills: o.required_skills.clone(),
        tags: Vec::new(),
        opened_at: e.occurred_at,
        last_activity_at: e.occurred_at,
        queued_at: None,
        first_response_at: None,
        resolved_at: None,
        snoozed_until: None,
        rating: None,
        messages: 0,
        customer_read_seq: Seq(0),
        agent_read_seq: Seq(0),
        erased: false,
        last_seq: e.seq,
        last_hash: e.hash,
    })
}

fn is_staff(kind: ActorKind) -> bool {
    matches!(kind, ActorKind::Agent | ActorKind::Supervisor)
}

/// Folds the next event into a summary. Events at or below `last_seq` were folded already.
pub fn apply(
    summary: &mut ConversationSummary,
    event: &ConversationEvent,
) -> Result<(), FoldError> {
    let e = &event.envelope;
    if e.seq <= summary.last_seq {
        return Ok(());
    }
    let at = e.occurred_at;
    match &event.payload {
        ConversationPayload::Opened(_) => {
            return Err(FoldError::OpenedTwice {
                conversation: e.conversation_id.to_string(),
                seq: e.seq,
            });
        }
        ConversationPayload::MessagePosted(m) => {
            if !m.private_note {
                summary.messages += 1;
                if is_staff(e.actor.kind) && summary.first_response_at.is_none() {
                    summary.first_response_at = Some(at);
                }
            }
            if e.actor.kind == ActorKind::Customer && summary.status == ConversationStatus::Snoozed
            {
                wake(summary);
            }
        }
        ConversationPayload::MessageEdited(_) | ConversationPayload::MessageRedacted(_) => {}
        ConversationPayload::AgentAssigned(a) => {
            summary.agent = Some(a.agent_id.clone());
            summary.status = ConversationStatus::Assigned;
            summary.queued_at = None;
        }
        ConversationPayload::Transferred(t) => match &t.to {
            TransferTarget::Agent { agent_id } => {
                summary.agent = Some(agent_id.clone());
                summary.status = ConversationStatus::Assigned;
                summary.queued_at = None;
            }
            TransferTarget::Team { team_id } => {
                summary.agent = None;
                summary.team = Some(team_id.clone());
                summary.status = ConversationStatus::Queued;
                summary.queued_at = Some(at);
            }
        },
        ConversationPayload::Queued(q) => {
            summary.agent = None;
            if q.team_id.is_some() {
                summary.team = q.team_id.clone();
            }
            if summary.status != ConversationStatus::Queued {
                summary.queued_at = Some(at);
            }
            summary.status = ConversationStatus::Queued;
        }
        ConversationPayload::ParticipantRead(r) => {
            if e.actor.kind == ActorKind::Customer {
                summary.customer_read_seq = summary.customer_read_seq.max(r.up_to_seq);
            } else if is_staff(e.actor.kind) {
                summary.agent_read_seq = summary.agent_read_seq.max(r.up_to_seq);
            }
        }
        ConversationPayload::Tagged(t) => {
            if let Err(i) = summary.tags.binary_search(&t.tag) {
                summary.tags.insert(i, t.tag.clone());
            }
        }
        ConversationPayload::Untagged(t) => {
            if let Ok(i) = summary.tags.binary_search(&t.tag) {
                summary.tags.remove(i);
            }
        }
        ConversationPayload::PriorityChanged(p) => summary.priority = p.priority,
        ConversationPayload::Snoozed(s) => {
            summary.status = ConversationStatus::Snoozed;
            summary.snoozed_until = Some(s.until);
        }
        ConversationPayload::Resolved(_) => {
            summary.status = ConversationStatus::Resolved;
            summary.resolved_at = Some(at);
            summary.snoozed_until = None;
            summary.queued_at = None;
        }
        ConversationPayload::Reopened(_) => {
            summary.resolved_at = None;
            wake(summary);
        }
        ConversationPayload::Rated(r) => summary.rating = Some(r.score),
        ConversationPayload::CustomerDataErased(_) => summary.erased = true,
    }
    summary.last_activity_at = summary.last_activity_at.max(at);
    summary.last_seq = e.seq;
    summary.last_hash = e.hash;
    Ok(())
}

fn wake(summary: &mut ConversationSummary) {
    summary.snoozed_until = None;
    summary.status = if summary.agent.is_some() {
        ConversationStatus::Assigned
    } else {
        ConversationStatus::Open
    };
}

/// What an event adds to the reports: `(key, counters)` pairs, given the summary before it.
///
/// First response time runs from the opening to the first public staff message; resolution
/// time from the opening to each resolution. A rating counts once, when first given; a changed
/// rating updates the summary, not the counters.
pub fn report_contributions(
    before: Option<&ConversationSummary>,
    event: &ConversationEvent,
) -> Vec<(ReportKey, ReportCounters)> {
    let e = &event.envelope;
    let day = Day::of(e.occurred_at);
    let key = |scope: ReportScope| ReportKey {
        tenant: e.tenant_id.clone(),
        day,
        scope,
    };
    let since_open = |at: Timestamp| {
        before.map_or(0, |s| {
            u64::try_from(at.as_micros() - s.opened_at.as_micros()).unwrap_or(0)
        })
    };
    let agent_scope = || before.and_then(|s| s.agent.clone()).map(ReportScope::Agent);
    let mut out = Vec::new();
    let mut both = |counters: ReportCounters, agent: Option<ReportScope>| {
        out.push((key(ReportScope::Tenant), counters));
        if let Some(scope) = agent {
            out.push((key(scope), counters));
        }
    };
    match &event.payload {
        ConversationPayload::Opened(_) => {
            both(
                ReportCounters {
                    conversations_opened: 1,
                    ..Default::default()
                },
                None,
            );
        }
        ConversationPayload::MessagePosted(m) if !m.private_note => {
            if e.actor.kind == ActorKind::Customer {
                both(
                    ReportCounters {
                        messages_from_customers: 1,
                        ..Default::default()
                    },
                    None,
                );
            } else if is_staff(e.actor.kind) {
                let mut counters = ReportCounters {
                    messages_from_agents: 1,
                    ..Default::default()
                };
                if before.is_some_and(|s| s.first_response_at.is_none()) {
                    counters.first_responses = 1;
                    counters.first_response_micros = since_open(e.occurred_at);
                }
                let author = switchboard_events::id::AgentId::new(e.actor.id.as_str()).ok();
                let scope = if e.actor.kind == ActorKind::Agent {
                    author.map(ReportScope::Agent)
                } else {
                    None
                };
                both(counters, scope);
            }
        }
        ConversationPayload::Resolved(_)
            if before.is_some_and(|s| s.status != ConversationStatus::Resolved) =>
        {
            let counters = ReportCounters {
                conversations_resolved: 1,
                resolutions: 1,
                resolution_micros: since_open(e.occurred_at),
                ..Default::default()
            };
            both(counters, agent_scope());
        }
        ConversationPayload::Rated(r) if before.is_some_and(|s| s.rating.is_none()) => {
            let score = u64::try_from(r.score).unwrap_or(0);
            let counters = ReportCounters {
                ratings: 1,
                rating_sum: score,
                satisfied: u64::from(score >= 4),
                ..Default::default()
            };
            both(counters, agent_scope());
        }
        _ => {}
    }
    out
}

/// Folds an agent event into the agent's record (`None` before its first event).
pub fn apply_agent(record: Option<AgentRecord>, event: &AgentEvent) -> AgentRecord {
    let e = &event.envelope;
    let mut record = record.unwrap_or_else(|| AgentRecord {
        tenant: e.tenant_id.clone(),
        agent: e.agent_id.clone(),
        status: switchboard_events::agent::AgentStatus::Offline,
        max_conversations: 0,
        skills: Vec::new(),
        updated_at: e.occurred_at,
        last_seq: Seq(0),
    });
    if e.seq <= record.last_seq {
        return record;
    }
    match &event.payload {
        AgentPayload::StatusChanged(s) => record.status = s.status,
        AgentPayload::CapacityChanged(c) => {
            record.max_conversations = u32::try_from(c.max_conversations).unwrap_or(0)
        }
        AgentPayload::SkillsChanged(s) => record.skills = s.skills.clone(),
        AgentPayload::TenantSettingsChanged(_) => {}
    }
    record.updated_at = e.occurred_at;
    record.last_seq = e.seq;
    record
}
