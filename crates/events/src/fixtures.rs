//! Deterministic sample events of every kind, for tests, golden files and benchmarks here and
//! in the services. Same input, same bytes: ids, times and nonces are fixed.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::agent::{
    AgentCapacityChanged, AgentEvent, AgentPayload, AgentSkillsChanged, AgentStatus,
    AgentStatusChanged,
};
use crate::conversation::*;
use crate::envelope::{
    Actor, ActorKind, AgentEnvelope, ChainHash, ConversationEnvelope, Seq, Timestamp,
};
use crate::id::*;
use crate::personal::{DataKey, Sealed};

/// 2026-01-01T00:00:00Z in microseconds.
pub const EPOCH_MICROS: i64 = 1_767_225_600_000_000;

pub fn tenant() -> TenantId {
    TenantId::new("acme").expect("valid id")
}

pub fn customer() -> CustomerId {
    CustomerId::new("cust-1").expect("valid id")
}

pub fn conversation() -> ConversationId {
    ConversationId::new("conv-1").expect("valid id")
}

pub fn agent() -> AgentId {
    AgentId::new("agent-7").expect("valid id")
}

/// The customer's data key in the samples.
pub fn data_key() -> DataKey {
    DataKey::from_bytes([7; 32])
}

/// A UUIDv7 for the `n`th sample: its time is `n` milliseconds after [`EPOCH_MICROS`].
pub fn event_id(n: u64) -> EventId {
    let millis = (EPOCH_MICROS / 1000) as u64 + n;
    let mut random = [0u8; 10];
    random[2..].copy_from_slice(&n.to_be_bytes());
    let uuid = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
    EventId::from_uuid(uuid).expect("a v7 uuid")
}

/// `text` sealed for the sample customer with a nonce derived from `n`.
pub fn sealed(n: u8, text: &str) -> Sealed {
    Sealed::seal_with_nonce(&data_key(), &tenant(), &customer(), text, [n; 12])
        .expect("sample text fits")
}

fn customer_actor() -> Actor {
    Actor {
        kind: ActorKind::Customer,
        id: PrincipalId::new("cust-1").expect("valid id"),
    }
}

fn agent_actor() -> Actor {
    Actor {
        kind: ActorKind::Agent,
        id: PrincipalId::new("agent-7").expect("valid id"),
    }
}

/// The envelope of the sample conversation's event at `seq`, not yet linked.
pub fn conversation_envelope(seq: u64, actor: Actor) -> ConversationEnvelope {
    ConversationEnvelope {
        hash: ChainHash::GENESIS,
        prev_hash: ChainHash::GENESIS,
        seq: Seq(seq),
        event_id: event_id(seq),
        tenant_id: tenant(),
        conversation_id: conversation(),
        occurred_at: Timestamp(EPOCH_MICROS + seq as i64 * 1_000_000),
        actor,
        correlation_id: CorrelationId(Uuid::from_u128(0x5eed_0000 + u128::from(seq))),
        causation_id: (seq > 1).then(|| CorrelationId(event_id(seq - 1).as_uuid())),
    }
}

/// A message of `body_len` bytes from the customer.
pub fn message_posted(seq: u64, body_len: usize) -> MessagePosted {
    let body: String = "hello, I need help with my order. "
        .chars()
        .cycle()
        .take(body_len)
        .collect();
    MessagePosted {
        message_id: MessageId::new(format!("msg-{seq}")).expect("valid id"),
        client_msg_id: ClientMsgId::new(format!("client-{seq}")).expect("valid id"),
        body: sealed(seq as u8, &body),
        attachments: Vec::new(),
        private_note: false,
    }
}

/// One payload of every conversation kind, in a plausible order, each with its actor.
pub fn conversation_payloads() -> Vec<(Actor, ConversationPayload)> {
    let label = |s: &str| Label::new(s).expect("valid label");
    let team = TeamId::new("billing").expect("valid id");
    vec![
        (
            customer_actor(),
            ConversationOpened {
                customer_id: customer(),
                channel: Channel::Web,
                priority: Priority::Normal,
                team_id: Some(team.clone()),
                required_skills: vec![label("billing"), label("german")],
                vip: true,
                attributes: BTreeMap::from([
                    ("locale".to_owned(), "de-DE".to_owned()),
                    ("plan".to_owned(), "enterprise".to_owned()),
                ]),
                customer_name: Some(sealed(1, "Ada Lovelace")),
                customer_email: Some(sealed(2, "ada@example.com")),
            }
            .into(),
        ),
        (
            Actor::system(),
            ConversationQueued {
                team_id: Some(team.clone()),
                reason: None,
            }
            .into(),
        ),
        (
            Actor::system(),
            AgentAssigned {
                agent_id: agent(),
                policy: AssignmentPolicy::VipFirst,
                previous_agent_id: None,
            }
            .into(),
        ),
        (customer_actor(), message_posted(4, 200).into()),
        (
            agent_actor(),
            MessagePosted {
                message_id: MessageId::new("msg-5").expect("valid id"),
                client_msg_id: ClientMsgId::new("console-5").expect("valid id"),
                body: sealed(5, "Checking the invoice; customer seems upset."),
                attachments: vec![Attachment {
                    attachment_id: "att-1".to_owned(),
                    file_name: "invoice.pdf".to_owned(),
                    content_type: "application/pdf".to_owned(),
                    size_bytes: 48_213,
                    url: "s3://acme-attachments/att-1".to_owned(),
                }],
                private_note: true,
            }
            .into(),
        ),
        (
            customer_actor(),
            MessageEdited {
                message_id: MessageId::new("msg-4").expect("valid id"),
                body: sealed(6, "edited"),
            }
            .into(),
        ),
        (
            agent_actor(),
            MessageRedacted {
                message_id: MessageId::new("msg-5").expect("valid id"),
                reason: Some("posted in the wrong conversation".to_owned()),
            }
            .into(),
        ),
        (agent_actor(), ParticipantRead { up_to_seq: Seq(6) }.into()),
        (
            agent_actor(),
            ConversationTagged {
                tag: label("refund"),
            }
            .into(),
        ),
        (
            agent_actor(),
            ConversationUntagged {
                tag: label("refund"),
            }
            .into(),
        ),
        (
            agent_actor(),
            PriorityChanged {
                priority: Priority::High,
                previous: Priority::Normal,
            }
            .into(),
        ),
        (
            agent_actor(),
            ConversationTransferred {
                from_agent_id: Some(agent()),
                to: TransferTarget::Team { team_id: team },
                reason: Some("needs a refund approval".to_owned()),
            }
            .into(),
        ),
        (
            agent_actor(),
            ConversationTransferred {
                from_agent_id: None,
                to: TransferTarget::Agent { agent_id: agent() },
                reason: None,
            }
            .into(),
        ),
        (
            agent_actor(),
            ConversationSnoozed {
                until: Timestamp(EPOCH_MICROS + 86_400_000_000),
            }
            .into(),
        ),
        (agent_actor(), ConversationResolved {}.into()),
        (
            customer_actor(),
            ConversationReopened {
                reason: Some("still broken".to_owned()),
            }
            .into(),
        ),
        (
            customer_actor(),
            ConversationRated {
                score: 4,
                comment: Some(sealed(17, "quick, thanks")),
            }
            .into(),
        ),
        (
            Actor::new(ActorKind::Supervisor, "sup-1").expect("valid id"),
            CustomerDataErased {
                customer_id: customer(),
                reason: Some("gdpr request 42".to_owned()),
            }
            .into(),
        ),
    ]
}

/// The sample conversation: every kind of event, linked into a chain, with its frames.
pub fn conversation_history() -> Vec<(ConversationEvent, Vec<u8>)> {
    let mut prev = ChainHash::GENESIS;
    conversation_payloads()
        .into_iter()
        .enumerate()
        .map(|(i, (actor, payload))| {
            let mut event = ConversationEvent {
                envelope: conversation_envelope(i as u64 + 1, actor),
                payload,
            };
            let frame = event.encode_chained(prev).expect("sample events encode");
            prev = event.envelope.hash;
            (event, frame)
        })
        .collect()
}

/// One agent event of every kind, linked along the sample agent.
pub fn agent_history() -> Vec<(AgentEvent, Vec<u8>)> {
    let payloads: Vec<AgentPayload> = vec![
        AgentStatusChanged {
            status: AgentStatus::Online,
        }
        .into(),
        AgentCapacityChanged {
            max_conversations: 5,
        }
        .into(),
        AgentSkillsChanged {
            skills: vec![Label::new("billing").expect("valid label")],
        }
        .into(),
    ];
    agent_chain(agent(), agent_actor(), (100, 0xa9e0_0000), payloads)
}

/// `payloads` linked along the agent stream `stream` of the sample tenant, by `actor`; event
/// and correlation ids count up from `bases`.
fn agent_chain(
    stream: AgentId,
    actor: Actor,
    (event_base, correlation_base): (u64, u128),
    payloads: Vec<AgentPayload>,
) -> Vec<(AgentEvent, Vec<u8>)> {
    let mut prev = ChainHash::GENESIS;
    payloads
        .into_iter()
        .enumerate()
        .map(|(i, payload)| {
            let seq = i as u64 + 1;
            let mut event = AgentEvent {
                envelope: AgentEnvelope {
                    hash: ChainHash::GENESIS,
                    prev_hash: ChainHash::GENESIS,
                    seq: Seq(seq),
                    event_id: event_id(event_base + seq),
                    tenant_id: tenant(),
                    agent_id: stream.clone(),
                    occurred_at: Timestamp(EPOCH_MICROS + seq as i64),
                    actor: actor.clone(),
                    correlation_id: CorrelationId(Uuid::from_u128(
                        correlation_base + u128::from(seq),
                    )),
                    causation_id: None,
                },
                payload,
            };
            let frame = event.encode_chained(prev).expect("sample events encode");
            prev = event.envelope.hash;
            (event, frame)
        })
        .collect()
}

/// A tenant created and its business hours changed: two events of the tenant's settings chain.
pub fn tenant_history() -> Vec<(AgentEvent, Vec<u8>)> {
    use crate::tenant::{
        BusinessHoursSettings, Day, OpeningHours, TenantSettings, TenantSettingsChanged,
        tenant_stream,
    };
    let created = TenantSettings {
        name: "Acme".to_owned(),
        widget_key: "wk_0123456789abcdef".to_owned(),
        allowed_origins: vec!["https://acme.example".to_owned()],
        ..TenantSettings::default()
    };
    let mut open_weekdays = created.clone();
    open_weekdays.business_hours = Some(BusinessHoursSettings {
        time_zone: "Europe/Berlin".to_owned(),
        utc_offset_minutes: 60,
        openings: vec![OpeningHours {
            day: Day::Monday,
            open: "09:00".to_owned(),
            close: "17:00".to_owned(),
        }],
        holidays: vec!["2026-12-25".to_owned()],
    });
    let operator = Actor {
        kind: ActorKind::System,
        id: PrincipalId::new("operator").expect("valid id"),
    };
    let changes = [
        (created.changes_from(&TenantSettings::default()), created),
        (
            open_weekdays.changes_from(&TenantSettings::default()),
            open_weekdays,
        ),
    ];
    let payloads = changes
        .into_iter()
        .map(|(changed, settings)| {
            TenantSettingsChanged {
                changed,
                settings: serde_json::to_string(&settings).expect("settings serialize"),
            }
            .into()
        })
        .collect();
    agent_chain(tenant_stream(), operator, (200, 0x7e40_0000), payloads)
}
