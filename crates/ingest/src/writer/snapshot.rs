//! The format of the writer's cache (see `state.md`): a partition's snapshot and a parked
//! conversation, each a version byte and a postcard body.
//!
//! Read every past version, write only [`VERSION`]. The types here are the format, not the
//! domain: [`ConversationState`] may change freely as long as its conversion below keeps
//! reading what was written. A body that does not decode, or of an unknown version, is
//! `None`: the writer then folds the log instead. Golden files per version are under
//! `testdata/`.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use switchboard_events::conversation::{Attachment, Priority};
use switchboard_events::envelope::ActorKind;
use switchboard_events::id::{
    AgentId, ClientMsgId, ConversationId, CustomerId, Label, MessageId, PrincipalId, TeamId,
    TenantId,
};
use switchboard_events::personal::Sealed;
use switchboard_events::{ChainHash, Seq, Timestamp};

use crate::conversation::state::{AcceptedSend, MessageInfo};
use crate::conversation::{ConversationState, Status};

/// The version this build writes.
pub const VERSION: u8 = 1;

/// A record of the log, named by what the writer can check against it: the event at
/// `offset` is the conversation's event with this hash.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Proof {
    pub offset: u64,
    pub hash: [u8; 32],
}

/// A conversation in the writer's memory, with the record of its last event.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Held {
    pub state: ConversationState,
    pub last: Proof,
}

/// The writer's state of one partition after folding every record before `next_offset`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct PartitionImage {
    pub next_offset: u64,
    /// The record at `next_offset - 1`; `None` for an empty partition.
    pub last: Option<Proof>,
    pub conversations: Vec<Held>,
    /// Conversations whose events do not fold, and why.
    pub poisoned: Vec<(TenantId, ConversationId, String)>,
    /// Ids with a record that does not decode, and why.
    pub undecodable: Vec<(ConversationId, String)>,
}

pub fn encode_partition(image: &PartitionImage) -> Vec<u8> {
    let v1 = PartitionV1 {
        next_offset: image.next_offset,
        last: image.last,
        conversations: image.conversations.iter().map(HeldV1::from).collect(),
        poisoned: image.poisoned.clone(),
        undecodable: image.undecodable.clone(),
    };
    postcard::to_extend(&v1, vec![VERSION]).expect("the snapshot serializes")
}

pub fn decode_partition(bytes: &[u8]) -> Option<PartitionImage> {
    match bytes.split_first()? {
        (1, body) => {
            let v1: PartitionV1 = postcard::from_bytes(body).ok()?;
            Some(PartitionImage {
                next_offset: v1.next_offset,
                last: v1.last,
                conversations: v1.conversations.into_iter().map(Held::from).collect(),
                poisoned: v1.poisoned,
                undecodable: v1.undecodable,
            })
        }
        _ => None,
    }
}

pub fn encode_parked(held: &Held) -> Vec<u8> {
    postcard::to_extend(&HeldV1::from(held), vec![VERSION]).expect("the state serializes")
}

pub fn decode_parked(bytes: &[u8]) -> Option<Held> {
    match bytes.split_first()? {
        (1, body) => postcard::from_bytes::<HeldV1>(body).ok().map(Held::from),
        _ => None,
    }
}

#[derive(Serialize, Deserialize)]
struct PartitionV1 {
    next_offset: u64,
    last: Option<Proof>,
    conversations: Vec<HeldV1>,
    poisoned: Vec<(TenantId, ConversationId, String)>,
    undecodable: Vec<(ConversationId, String)>,
}

#[derive(Serialize, Deserialize)]
struct HeldV1 {
    last: Proof,
    tenant: TenantId,
    id: ConversationId,
    customer: CustomerId,
    status: u8,
    assignee: Option<AgentId>,
    team: Option<TeamId>,
    priority: Priority,
    vip: bool,
    required_skills: Vec<Label>,
    tags: Vec<Label>,
    snoozed_until: Option<i64>,
    rating: Option<i32>,
    erased: bool,
    last_seq: u64,
    last_hash: [u8; 32],
    last_activity: i64,
    messages: Vec<(MessageId, MessageV1)>,
    sends: Vec<(ClientMsgId, SendV1)>,
    read_marks: Vec<(ActorKind, PrincipalId, u64)>,
}

#[derive(Serialize, Deserialize)]
struct MessageV1 {
    seq: u64,
    author: (ActorKind, PrincipalId),
    private_note: bool,
    redacted: bool,
}

#[derive(Serialize, Deserialize)]
struct SendV1 {
    seq: u64,
    message_id: MessageId,
    body_key: CustomerId,
    body_nonce: [u8; 12],
    body: Vec<u8>,
    private_note: bool,
    attachments: Vec<Attachment>,
}

fn status_code(status: Status) -> u8 {
    match status {
        Status::Open => 0,
        Status::Queued => 1,
        Status::Assigned => 2,
        Status::Snoozed => 3,
        Status::Resolved => 4,
    }
}

fn status_of(code: u8) -> Status {
    match code {
        1 => Status::Queued,
        2 => Status::Assigned,
        3 => Status::Snoozed,
        4 => Status::Resolved,
        _ => Status::Open,
    }
}

impl From<&Held> for HeldV1 {
    fn from(held: &Held) -> Self {
        let s = &held.state;
        Self {
            last: held.last,
            tenant: s.tenant.clone(),
            id: s.id.clone(),
            customer: s.customer.clone(),
            status: status_code(s.status),
            assignee: s.assignee.clone(),
            team: s.team.clone(),
            priority: s.priority,
            vip: s.vip,
            required_skills: s.required_skills.clone(),
            tags: s.tags.iter().cloned().collect(),
            snoozed_until: s.snoozed_until.map(|t| t.0),
            rating: s.rating,
            erased: s.erased,
            last_seq: s.last_seq.0,
            last_hash: s.last_hash.0,
            last_activity: s.last_activity.0,
            messages: s
                .messages
                .iter()
                .map(|(id, m)| {
                    let message = MessageV1 {
                        seq: m.seq.0,
                        author: m.author.clone(),
                        private_note: m.private_note,
                        redacted: m.redacted,
                    };
                    (id.clone(), message)
                })
                .collect(),
            sends: s
                .sends
                .iter()
                .map(|(id, a)| {
                    let send = SendV1 {
                        seq: a.seq.0,
                        message_id: a.message_id.clone(),
                        body_key: a.body.key_id.clone(),
                        body_nonce: a.body.nonce,
                        body: a.body.ciphertext.clone(),
                        private_note: a.private_note,
                        attachments: a.attachments.clone(),
                    };
                    (id.clone(), send)
                })
                .collect(),
            read_marks: s
                .read_marks
                .iter()
                .map(|((kind, who), seq)| (*kind, who.clone(), seq.0))
                .collect(),
        }
    }
}

impl From<HeldV1> for Held {
    fn from(v: HeldV1) -> Self {
        let messages: HashMap<_, _> = v
            .messages
            .into_iter()
            .map(|(id, m)| {
                let info = MessageInfo {
                    seq: Seq(m.seq),
                    author: m.author,
                    private_note: m.private_note,
                    redacted: m.redacted,
                };
                (id, info)
            })
            .collect();
        let sends: HashMap<_, _> = v
            .sends
            .into_iter()
            .map(|(id, a)| {
                let send = AcceptedSend {
                    seq: Seq(a.seq),
                    message_id: a.message_id,
                    body: Sealed {
                        key_id: a.body_key,
                        nonce: a.body_nonce,
                        ciphertext: a.body,
                    },
                    private_note: a.private_note,
                    attachments: a.attachments,
                };
                (id, send)
            })
            .collect();
        let state = ConversationState {
            tenant: v.tenant,
            id: v.id,
            customer: v.customer,
            status: status_of(v.status),
            assignee: v.assignee,
            team: v.team,
            priority: v.priority,
            vip: v.vip,
            required_skills: v.required_skills,
            tags: v.tags.into_iter().collect::<BTreeSet<_>>(),
            snoozed_until: v.snoozed_until.map(Timestamp),
            rating: v.rating,
            erased: v.erased,
            last_seq: Seq(v.last_seq),
            last_hash: ChainHash(v.last_hash),
            last_activity: Timestamp(v.last_activity),
            messages,
            sends,
            read_marks: v
                .read_marks
                .into_iter()
                .map(|(kind, who, seq)| ((kind, who), Seq(seq)))
                .collect(),
        };
        Held {
            state,
            last: v.last,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state with one of everything, fixed, so that its encoding is the golden file's.
    fn fixture() -> PartitionImage {
        let id = |s: &str| ConversationId::new(s).unwrap();
        let tenant = TenantId::new("acme").unwrap();
        let mut state = ConversationState {
            tenant: tenant.clone(),
            id: id("c-1"),
            customer: CustomerId::new("cust-1").unwrap(),
            status: Status::Snoozed,
            assignee: Some(AgentId::new("ag-1").unwrap()),
            team: Some(TeamId::new("billing").unwrap()),
            priority: Priority::High,
            vip: true,
            required_skills: vec![Label::new("fr").unwrap()],
            tags: [Label::new("refund").unwrap()].into_iter().collect(),
            snoozed_until: Some(Timestamp(1_700_000_000_000_000)),
            rating: Some(4),
            erased: false,
            last_seq: Seq(3),
            last_hash: ChainHash([7; 32]),
            last_activity: Timestamp(1_699_999_999_000_000),
            messages: HashMap::new(),
            sends: HashMap::new(),
            read_marks: HashMap::new(),
        };
        let message = MessageId::new("m-1").unwrap();
        state.messages.insert(
            message.clone(),
            MessageInfo {
                seq: Seq(2),
                author: (ActorKind::Customer, PrincipalId::new("cust-1").unwrap()),
                private_note: false,
                redacted: true,
            },
        );
        state.sends.insert(
            ClientMsgId::new("k-1").unwrap(),
            AcceptedSend {
                seq: Seq(2),
                message_id: message,
                body: Sealed {
                    key_id: CustomerId::new("cust-1").unwrap(),
                    nonce: [1; 12],
                    ciphertext: vec![9, 8, 7],
                },
                private_note: false,
                attachments: vec![Attachment {
                    attachment_id: "a-1".to_owned(),
                    file_name: "invoice.pdf".to_owned(),
                    content_type: "application/pdf".to_owned(),
                    size_bytes: 1234,
                    url: "s3://bucket/a-1".to_owned(),
                }],
            },
        );
        state.read_marks.insert(
            (ActorKind::Agent, PrincipalId::new("ag-1").unwrap()),
            Seq(3),
        );
        PartitionImage {
            next_offset: 42,
            last: Some(Proof {
                offset: 41,
                hash: [5; 32],
            }),
            conversations: vec![Held {
                state,
                last: Proof {
                    offset: 40,
                    hash: [7; 32],
                },
            }],
            poisoned: vec![(tenant, id("c-2"), "seq 3 follows seq 1".to_owned())],
            undecodable: vec![(id("c-3"), "truncated".to_owned())],
        }
    }

    const GOLDEN_V1: &[u8] = include_bytes!("testdata/partition_v1.bin");

    #[test]
    fn version_1_reads_and_is_what_this_build_writes() {
        assert_eq!(decode_partition(GOLDEN_V1), Some(fixture()));
        assert_eq!(encode_partition(&fixture()), GOLDEN_V1);
    }

    #[test]
    fn a_parked_conversation_round_trips() {
        let held = fixture().conversations.remove(0);
        assert_eq!(decode_parked(&encode_parked(&held)), Some(held));
    }

    #[test]
    fn unknown_versions_and_damage_are_ignored() {
        let mut newer = GOLDEN_V1.to_vec();
        newer[0] = VERSION + 1;
        assert_eq!(decode_partition(&newer), None);
        assert_eq!(decode_partition(&GOLDEN_V1[..GOLDEN_V1.len() / 2]), None);
        assert_eq!(decode_partition(&[]), None);
        assert_eq!(decode_parked(&[VERSION, 0xff]), None);
    }
}
