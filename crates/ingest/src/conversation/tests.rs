//! Given events, when a command, then events or a refusal — for every command and rule of
//! `rules.md`.

use std::collections::BTreeMap;

use proptest::prelude::*;
use switchboard_events::chain::{Verdict, verify};
use switchboard_events::conversation::*;
use switchboard_events::id::*;
use switchboard_events::personal::{KeyProvider, MemoryKeys, Revealed, Sealed};
use switchboard_events::principal::{Principal, Role};
use switchboard_events::{ConversationEvent, ConversationPayload, Seq, Timestamp};

use super::stamp::{Cause, stamp};
use super::*;
use crate::command::{ConversationCommand as C, Limits, OpenConversation, PostMessage};
use crate::error::CommandError;

const NOW: Timestamp = Timestamp(1_767_225_600_000_000);

fn tenant() -> TenantId {
    TenantId::new("acme").unwrap()
}

fn who(role: Role, id: &str) -> Principal {
    Principal::new(tenant(), role, PrincipalId::new(id).unwrap())
}

fn customer() -> Principal {
    who(Role::Customer, "cust-1")
}
fn stranger() -> Principal {
    who(Role::Customer, "cust-2")
}
fn agent() -> Principal {
    who(Role::Agent, "agent-7")
}
fn other_agent() -> Principal {
    who(Role::Agent, "agent-8")
}
fn supervisor() -> Principal {
    who(Role::Supervisor, "sup-1")
}
fn service() -> Principal {
    who(Role::Service, "router")
}
fn auditor() -> Principal {
    who(Role::Auditor, "audit-1")
}
fn foreign_agent() -> Principal {
    Principal::new(
        TenantId::new("globex").unwrap(),
        Role::Agent,
        PrincipalId::new("agent-7").unwrap(),
    )
}

struct TestSealer<'a> {
    keys: &'a MemoryKeys,
    customer: CustomerId,
}

impl Sealer for TestSealer<'_> {
    fn seal(&self, text: &str) -> Result<Sealed, CommandError> {
        let key = self
            .keys
            .key_for(&tenant(), &self.customer)
            .map_err(|e| CommandError::Internal(e.to_string()))?;
        Sealed::seal(&key, &tenant(), &self.customer, text)
            .map_err(|e| CommandError::Internal(e.to_string()))
    }
    fn reveal(&self, sealed: &Sealed) -> Result<Revealed, CommandError> {
        sealed
            .reveal(&tenant(), self.keys)
            .map_err(|e| CommandError::Internal(e.to_string()))
    }
}

/// One conversation and everything appended to it.
struct Scenario {
    state: Option<ConversationState>,
    log: Vec<(ConversationEvent, Vec<u8>)>,
    keys: MemoryKeys,
    messages: u32,
    now: Timestamp,
}

impl Scenario {
    fn new() -> Self {
        Self {
            state: None,
            log: Vec::new(),
            keys: MemoryKeys::default(),
            messages: 0,
            now: NOW,
        }
    }

    /// Given: the customer opened the conversation.
    fn opened() -> Self {
        let mut s = Self::new();
        s.ok(&customer(), open("cust-1"));
        s
    }

    /// Given: opened and assigned to agent-7.
    fn assigned() -> Self {
        let mut s = Self::opened();
        s.ok(
            &service(),
            C::Assign {
                agent_id: AgentId::new("agent-7").unwrap(),
                policy: AssignmentPolicy::RoundRobin,
            },
        );
        s
    }

    fn run(&mut self, principal: &Principal, command: C) -> Result<Decision, CommandError> {
        self.messages += 1;
        let customer = match (&self.state, &command) {
            (Some(s), _) => s.customer.clone(),
            (None, C::Open(open)) => open.customer_id.clone(),
            (None, _) => CustomerId::new("nobody").unwrap(),
        };
        let sealer = TestSealer {
            keys: &self.keys,
            customer,
        };
        let limits = Limits::default();
        let ctx = Context {
            principal,
            now: self.now,
            limits: &limits,
            sealer: &sealer,
            message_id: MessageId::new(format!("m-{}", self.messages)).unwrap(),
        };
        let decision = decide(self.state.as_ref(), &command, &ctx)?;
        if let Decision::Append(payloads) = &decision {
            let cause = Cause {
                actor: principal.actor(),
                correlation_id: CorrelationId(uuid_for(self.messages)),
                causation_id: None,
                now: self.now,
            };
            let conversation = ConversationId::new("conv-1").unwrap();
            let stamped = stamp(
                self.state.as_ref(),
                &tenant(),
                &conversation,
                &cause,
                payloads.clone(),
            )?;
            for (event, frame) in stamped {
                match &mut self.state {
                    None => self.state = Some(ConversationState::opened(&event).unwrap()),
                    Some(state) => state.apply(&event).unwrap(),
                }
                self.log.push((event, frame));
            }
        }
        Ok(decision)
    }

    /// When the command succeeds: the payloads it appended.
    #[track_caller]
    fn ok(&mut self, principal: &Principal, command: C) -> Vec<ConversationPayload> {
        match self.run(principal, command) {
            Ok(Decision::Append(payloads)) => payloads,
            other => panic!("expected events, got {other:?}"),
        }
    }

    #[track_caller]
    fn refused(&mut self, principal: &Principal, command: C) -> &'static str {
        match self.run(principal, command) {
            Err(e) => e.code(),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[track_caller]
    fn unchanged(&mut self, principal: &Principal, command: C) -> Seq {
        match self.run(principal, command) {
            Ok(Decision::AlreadyDone(seq)) => seq,
            other => panic!("expected no change, got {other:?}"),
        }
    }

    fn state(&self) -> &ConversationState {
        self.state.as_ref().unwrap()
    }

    fn reveal(&self, sealed: &Sealed) -> Revealed {
        sealed.reveal(&tenant(), &self.keys).unwrap()
    }
}

fn uuid_for(n: u32) -> uuid::Uuid {
    uuid::Uuid::from_u128(u128::from(n))
}

fn open(customer: &str) -> C {
    C::Open(OpenConversation {
        customer_id: CustomerId::new(customer).unwrap(),
        channel: Channel::Web,
        priority: Priority::Normal,
        team_id: None,
        required_skills: vec![],
        vip: false,
        attributes: BTreeMap::new(),
        customer_name: Some("Ada Lovelace".into()),
        customer_email: Some("ada@example.com".into()),
    })
}

fn post(client: &str, body: &str) -> C {
    C::PostMessage(PostMessage {
        client_msg_id: ClientMsgId::new(client).unwrap(),
        body: body.into(),
        attachments: vec![],
        private_note: false,
    })
}

fn note(client: &str, body: &str) -> C {
    C::PostMessage(PostMessage {
        client_msg_id: ClientMsgId::new(client).unwrap(),
        body: body.into(),
        attachments: vec![],
        private_note: true,
    })
}

fn msg(id: &str) -> MessageId {
    MessageId::new(id).unwrap()
}

fn label(s: &str) -> Label {
    Label::new(s).unwrap()
}

#[test]
fn a_customer_opens_their_own_conversation_with_sealed_personal_data() {
    let mut s = Scenario::new();
    let events = s.ok(&customer(), open("cust-1"));
    let [ConversationPayload::Opened(opened)] = events.as_slice() else {
        panic!("{events:?}")
    };
    let name = opened.customer_name.as_ref().unwrap();
    assert_eq!(s.reveal(name), Revealed::Text("Ada Lovelace".into()));
    assert!(
        !s.log[0].1.windows(8).any(|w| w == b"Lovelace"),
        "no clear text in the frame"
    );
    assert_eq!(s.state().status, Status::Open);
}

#[test]
fn opening_is_refused_for_others_and_idempotent_for_the_same_customer() {
    assert_eq!(
        Scenario::new().refused(&customer(), open("cust-2")),
        "forbidden"
    );
    assert_eq!(
        Scenario::new().refused(&auditor(), open("cust-1")),
        "forbidden"
    );
    Scenario::new().ok(&service(), open("cust-1"));
    let mut s = Scenario::opened();
    assert_eq!(s.unchanged(&customer(), open("cust-1")), Seq(1));
    assert_eq!(
        s.refused(&supervisor(), open("cust-9")),
        "conversation_exists"
    );
}

#[test]
fn opening_validates_its_fields() {
    let mut bad_email = open("cust-1");
    if let C::Open(o) = &mut bad_email {
        o.customer_email = Some("not-an-email".into());
    }
    assert_eq!(
        Scenario::new().refused(&customer(), bad_email),
        "invalid_argument"
    );
    let mut many = open("cust-1");
    if let C::Open(o) = &mut many {
        o.attributes = (0..33).map(|i| (format!("k{i}"), "v".to_owned())).collect();
    }
    assert_eq!(
        Scenario::new().refused(&customer(), many),
        "invalid_argument"
    );
}

#[test]
fn commands_on_a_missing_or_foreign_conversation_find_nothing() {
    assert_eq!(
        Scenario::new().refused(&customer(), post("c1", "hi")),
        "not_found"
    );
    let mut s = Scenario::opened();
    assert_eq!(s.refused(&foreign_agent(), note("c1", "hi")), "not_found");
    assert_eq!(s.refused(&stranger(), post("c1", "hi")), "not_found");
    assert_eq!(s.refused(&stranger(), C::Resolve), "not_found");
}

#[test]
fn auditors_never_write() {
    let mut s = Scenario::assigned();
    for command in [
        post("a1", "hi"),
        C::Resolve,
        C::Tag { tag: label("x") },
        C::MarkRead { up_to_seq: Seq(1) },
    ] {
        assert_eq!(s.refused(&auditor(), command), "forbidden");
    }
}

#[test]
fn customers_post_and_the_body_is_sealed() {
    let mut s = Scenario::opened();
    let events = s.ok(&customer(), post("c1", "  my order is late  "));
    let [ConversationPayload::MessagePosted(m)] = events.as_slice() else {
        panic!()
    };
    assert_eq!(
        s.reveal(&m.body),
        Revealed::Text("my order is late".into()),
        "trimmed"
    );
    assert!(!m.private_note);
    assert_eq!(s.state().messages[&m.message_id].seq, Seq(2));
}

#[test]
fn bodies_must_be_present_and_within_the_limit() {
    let mut s = Scenario::opened();
    assert_eq!(
        s.refused(&customer(), post("c1", "   ")),
        "invalid_argument"
    );
    assert_eq!(
        s.refused(&customer(), post("c2", &"x".repeat(16 * 1024 + 1))),
        "too_large"
    );
    s.ok(&customer(), post("c3", &"x".repeat(16 * 1024)));
}

#[test]
fn private_notes_are_for_staff_and_replies_for_the_assignee() {
    let mut s = Scenario::assigned();
    assert_eq!(s.refused(&customer(), note("c1", "psst")), "forbidden");
    assert_eq!(s.refused(&other_agent(), post("a1", "hello")), "forbidden");
    s.ok(&other_agent(), note("a2", "I know this customer"));
    s.ok(&agent(), post("a3", "hello, how can I help?"));
    s.ok(&supervisor(), post("s1", "supervisor here"));
}

#[test]
fn a_retried_send_answers_with_the_original_seq() {
    let mut s = Scenario::opened();
    s.ok(&customer(), post("c1", "hello"));
    s.ok(&customer(), post("c2", "anyone?"));
    assert_eq!(s.unchanged(&customer(), post("c1", "hello")), Seq(2));
    assert_eq!(
        s.unchanged(&customer(), post("c1", " hello ")),
        Seq(2),
        "the same after trimming"
    );
    assert_eq!(s.log.len(), 3, "nothing new");
}

#[test]
fn a_reused_client_msg_id_with_other_content_is_a_conflict() {
    let mut s = Scenario::assigned();
    s.ok(&customer(), post("c1", "hello"));
    assert_eq!(
        s.refused(&customer(), post("c1", "goodbye")),
        "idempotency_conflict"
    );
    s.ok(&agent(), note("a1", "note"));
    assert_eq!(
        s.refused(&agent(), post("a1", "note")),
        "idempotency_conflict",
        "private flag differs"
    );
}

#[test]
fn a_customer_message_reopens_a_resolved_conversation() {
    let mut s = Scenario::assigned();
    s.ok(&agent(), C::Resolve);
    let events = s.ok(&customer(), post("c1", "one more thing"));
    assert!(matches!(
        events.as_slice(),
        [
            ConversationPayload::Reopened(_),
            ConversationPayload::MessagePosted(_)
        ]
    ));
    assert_eq!(s.state().status, Status::Assigned);
}

#[test]
fn staff_cannot_reply_on_a_resolved_conversation() {
    let mut s = Scenario::assigned();
    s.ok(&agent(), C::Resolve);
    assert_eq!(
        s.refused(&agent(), post("a1", "hello?")),
        "conversation_resolved"
    );
    s.ok(&agent(), note("a2", "for the record"));
}

#[test]
fn attachments_are_checked() {
    let mut s = Scenario::opened();
    let attachment = Attachment {
        attachment_id: "att-1".into(),
        file_name: "invoice.pdf".into(),
        content_type: "application/pdf".into(),
        size_bytes: 1000,
        url: "https://files.example/att-1".into(),
    };
    let with = |a: Attachment| {
        C::PostMessage(PostMessage {
            client_msg_id: ClientMsgId::new(format!("c-{}", a.size_bytes)).unwrap(),
            body: "see attached".into(),
            attachments: vec![a],
            private_note: false,
        })
    };
    s.ok(&customer(), with(attachment.clone()));
    let mut bad = attachment.clone();
    bad.content_type = "pdf".into();
    bad.size_bytes = 1;
    assert_eq!(s.refused(&customer(), with(bad)), "invalid_argument");
    let mut bad = attachment.clone();
    bad.url = "file:///etc/passwd".into();
    bad.size_bytes = 2;
    assert_eq!(s.refused(&customer(), with(bad)), "invalid_argument");
    let mut bad = attachment;
    bad.size_bytes = 0;
    assert_eq!(s.refused(&customer(), with(bad)), "invalid_argument");
}

#[test]
fn authors_edit_their_own_messages_only() {
    let mut s = Scenario::assigned();
    s.ok(&customer(), post("c1", "helo"));
    let events = s.ok(
        &customer(),
        C::EditMessage {
            message_id: msg("m-3"),
            body: "hello".into(),
        },
    );
    let [ConversationPayload::MessageEdited(e)] = events.as_slice() else {
        panic!()
    };
    assert_eq!(s.reveal(&e.body), Revealed::Text("hello".into()));
    assert_eq!(
        s.refused(
            &agent(),
            C::EditMessage {
                message_id: msg("m-3"),
                body: "x".into()
            }
        ),
        "forbidden"
    );
    assert_eq!(
        s.refused(
            &customer(),
            C::EditMessage {
                message_id: msg("m-99"),
                body: "x".into()
            }
        ),
        "not_found"
    );
}

#[test]
fn customers_cannot_address_private_notes() {
    let mut s = Scenario::assigned();
    s.ok(&agent(), note("a1", "internal"));
    let note_id = msg("m-3");
    assert_eq!(
        s.refused(
            &customer(),
            C::RedactMessage {
                message_id: note_id.clone(),
                reason: None
            }
        ),
        "not_found"
    );
    assert_eq!(
        s.refused(
            &customer(),
            C::EditMessage {
                message_id: note_id,
                body: "x".into()
            }
        ),
        "not_found"
    );
}

#[test]
fn redaction_by_author_or_supervisor_once() {
    let mut s = Scenario::assigned();
    s.ok(&customer(), post("c1", "my password is hunter2"));
    assert_eq!(
        s.refused(
            &agent(),
            C::RedactMessage {
                message_id: msg("m-3"),
                reason: None
            }
        ),
        "forbidden"
    );
    s.ok(
        &supervisor(),
        C::RedactMessage {
            message_id: msg("m-3"),
            reason: Some("secret".into()),
        },
    );
    s.unchanged(
        &customer(),
        C::RedactMessage {
            message_id: msg("m-3"),
            reason: None,
        },
    );
    assert_eq!(
        s.refused(
            &customer(),
            C::EditMessage {
                message_id: msg("m-3"),
                body: "x".into()
            }
        ),
        "failed_precondition"
    );
}

#[test]
fn read_marks_move_forward_only_and_not_past_the_end() {
    let mut s = Scenario::opened();
    s.ok(&customer(), post("c1", "hi"));
    assert_eq!(
        s.refused(&customer(), C::MarkRead { up_to_seq: Seq(9) }),
        "failed_precondition"
    );
    s.ok(&customer(), C::MarkRead { up_to_seq: Seq(2) });
    s.unchanged(&customer(), C::MarkRead { up_to_seq: Seq(1) });
    s.ok(&supervisor(), C::MarkRead { up_to_seq: Seq(2) });
}

#[test]
fn assignment_rules() {
    let mut s = Scenario::opened();
    assert_eq!(
        s.refused(
            &customer(),
            C::Assign {
                agent_id: AgentId::new("agent-7").unwrap(),
                policy: AssignmentPolicy::Manual
            }
        ),
        "forbidden"
    );
    // An agent takes an unassigned conversation.
    s.ok(
        &agent(),
        C::Assign {
            agent_id: AgentId::new("agent-7").unwrap(),
            policy: AssignmentPolicy::Manual,
        },
    );
    // Another agent cannot take it, nor assign it away.
    assert_eq!(
        s.refused(
            &other_agent(),
            C::Assign {
                agent_id: AgentId::new("agent-8").unwrap(),
                policy: AssignmentPolicy::Manual
            }
        ),
        "forbidden"
    );
    s.unchanged(
        &supervisor(),
        C::Assign {
            agent_id: AgentId::new("agent-7").unwrap(),
            policy: AssignmentPolicy::Manual,
        },
    );
    let events = s.ok(
        &supervisor(),
        C::Assign {
            agent_id: AgentId::new("agent-8").unwrap(),
            policy: AssignmentPolicy::Manual,
        },
    );
    let [ConversationPayload::AgentAssigned(a)] = events.as_slice() else {
        panic!()
    };
    assert_eq!(a.previous_agent_id, Some(AgentId::new("agent-7").unwrap()));
    s.ok(&supervisor(), C::Resolve);
    assert_eq!(
        s.refused(
            &service(),
            C::Assign {
                agent_id: AgentId::new("agent-7").unwrap(),
                policy: AssignmentPolicy::LeastBusy
            }
        ),
        "conversation_resolved"
    );
}

#[test]
fn transfers_to_a_team_queue_and_to_an_agent_assign() {
    let mut s = Scenario::assigned();
    let team = TeamId::new("billing").unwrap();
    assert_eq!(
        s.refused(
            &other_agent(),
            C::Transfer {
                to: TransferTarget::Team {
                    team_id: team.clone()
                },
                reason: None
            }
        ),
        "forbidden"
    );
    assert_eq!(
        s.refused(
            &agent(),
            C::Transfer {
                to: TransferTarget::Agent {
                    agent_id: AgentId::new("agent-7").unwrap()
                },
                reason: None
            }
        ),
        "failed_precondition"
    );
    s.ok(
        &agent(),
        C::Transfer {
            to: TransferTarget::Team {
                team_id: team.clone(),
            },
            reason: Some("billing question".into()),
        },
    );
    assert_eq!(
        (
            s.state().status,
            s.state().assignee.clone(),
            s.state().team.clone()
        ),
        (Status::Queued, None, Some(team))
    );
    s.ok(
        &supervisor(),
        C::Transfer {
            to: TransferTarget::Agent {
                agent_id: AgentId::new("agent-8").unwrap(),
            },
            reason: None,
        },
    );
    assert_eq!(s.state().assignee, Some(AgentId::new("agent-8").unwrap()));
}

#[test]
fn queueing_is_for_the_router_and_supervisors() {
    let mut s = Scenario::opened();
    assert_eq!(
        s.refused(
            &agent(),
            C::Queue {
                team_id: None,
                reason: None
            }
        ),
        "forbidden"
    );
    s.ok(
        &service(),
        C::Queue {
            team_id: None,
            reason: Some("no agent online".into()),
        },
    );
    s.unchanged(
        &service(),
        C::Queue {
            team_id: None,
            reason: None,
        },
    );
}

#[test]
fn tags_and_priority_change_only_when_they_differ() {
    let mut s = Scenario::assigned();
    s.ok(
        &agent(),
        C::Tag {
            tag: label("refund"),
        },
    );
    s.unchanged(
        &agent(),
        C::Tag {
            tag: label("refund"),
        },
    );
    assert_eq!(
        s.refused(&other_agent(), C::Tag { tag: label("x") }),
        "forbidden"
    );
    s.ok(
        &agent(),
        C::Untag {
            tag: label("refund"),
        },
    );
    s.unchanged(
        &agent(),
        C::Untag {
            tag: label("refund"),
        },
    );
    let events = s.ok(
        &agent(),
        C::SetPriority {
            priority: Priority::Urgent,
        },
    );
    assert_eq!(
        events,
        vec![
            PriorityChanged {
                priority: Priority::Urgent,
                previous: Priority::Normal
            }
            .into()
        ]
    );
    s.unchanged(
        &agent(),
        C::SetPriority {
            priority: Priority::Urgent,
        },
    );
}

#[test]
fn snoozes_end_in_the_future_and_a_customer_message_wakes_them() {
    let mut s = Scenario::assigned();
    assert_eq!(
        s.refused(&agent(), C::Snooze { until: NOW }),
        "invalid_argument"
    );
    assert_eq!(
        s.refused(
            &agent(),
            C::Snooze {
                until: Timestamp(NOW.0 + 400 * 86_400_000_000)
            }
        ),
        "invalid_argument"
    );
    s.ok(
        &agent(),
        C::Snooze {
            until: Timestamp(NOW.0 + 3_600_000_000),
        },
    );
    assert_eq!(s.state().status, Status::Snoozed);
    s.ok(&customer(), post("c1", "hello?"));
    assert_eq!(s.state().status, Status::Assigned);
}

#[test]
fn resolving_and_reopening() {
    let mut s = Scenario::assigned();
    assert_eq!(s.refused(&other_agent(), C::Resolve), "forbidden");
    s.ok(&customer(), C::Resolve);
    s.unchanged(&agent(), C::Resolve);
    s.ok(
        &agent(),
        C::Reopen {
            reason: Some("customer called back".into()),
        },
    );
    s.unchanged(&agent(), C::Reopen { reason: None });
    assert_eq!(s.state().status, Status::Assigned);
}

#[test]
fn ratings_come_from_the_customer_after_resolution() {
    let mut s = Scenario::assigned();
    assert_eq!(
        s.refused(
            &customer(),
            C::Rate {
                score: 5,
                comment: None
            }
        ),
        "failed_precondition"
    );
    s.ok(&agent(), C::Resolve);
    assert_eq!(
        s.refused(
            &agent(),
            C::Rate {
                score: 5,
                comment: None
            }
        ),
        "forbidden"
    );
    assert_eq!(
        s.refused(
            &customer(),
            C::Rate {
                score: 6,
                comment: None
            }
        ),
        "invalid_argument"
    );
    let events = s.ok(
        &customer(),
        C::Rate {
            score: 4,
            comment: Some("quick".into()),
        },
    );
    let [ConversationPayload::Rated(r)] = events.as_slice() else {
        panic!()
    };
    assert_eq!(
        s.reveal(r.comment.as_ref().unwrap()),
        Revealed::Text("quick".into())
    );
    s.ok(
        &customer(),
        C::Rate {
            score: 5,
            comment: None,
        },
    );
    assert_eq!(s.state().rating, Some(5));
}

#[test]
fn after_erasure_no_personal_data_is_taken_and_old_retries_still_answer() {
    let mut s = Scenario::assigned();
    s.ok(&customer(), post("c1", "hello"));
    assert_eq!(
        s.refused(&agent(), C::EraseCustomer { reason: None }),
        "forbidden"
    );
    s.ok(
        &supervisor(),
        C::EraseCustomer {
            reason: Some("gdpr".into()),
        },
    );
    s.keys.erase(&tenant(), &CustomerId::new("cust-1").unwrap());
    s.unchanged(&supervisor(), C::EraseCustomer { reason: None });
    assert_eq!(
        s.refused(&customer(), post("c2", "hi again")),
        "customer_erased"
    );
    assert_eq!(
        s.unchanged(&customer(), post("c1", "hello")),
        Seq(3),
        "a late retry is not a new message"
    );
    let erased = s
        .keys
        .data_key(&tenant(), &CustomerId::new("cust-1").unwrap())
        .unwrap();
    assert!(erased.is_none());
}

fn any_command() -> impl Strategy<Value = (u8, C)> {
    let who = 0u8..7;
    let cmd = prop_oneof![
        (0u8..4, "[a-z ]{0,12}").prop_map(|(c, body)| post(&format!("c{c}"), &body)),
        (0u8..4, "[a-z]{1,8}").prop_map(|(c, body)| note(&format!("n{c}"), &body)),
        (1u64..12).prop_map(|s| C::MarkRead { up_to_seq: Seq(s) }),
        (7u8..9).prop_map(|a| C::Assign {
            agent_id: AgentId::new(format!("agent-{a}")).unwrap(),
            policy: AssignmentPolicy::Manual
        }),
        Just(C::Transfer {
            to: TransferTarget::Team {
                team_id: TeamId::new("billing").unwrap()
            },
            reason: None
        }),
        Just(C::Tag { tag: label("vip") }),
        Just(C::Untag { tag: label("vip") }),
        Just(C::SetPriority {
            priority: Priority::High
        }),
        Just(C::Resolve),
        Just(C::Reopen { reason: None }),
        (0i32..7).prop_map(|score| C::Rate {
            score,
            comment: None
        }),
        (1u32..6).prop_map(|m| C::RedactMessage {
            message_id: msg(&format!("m-{m}")),
            reason: None
        }),
        Just(C::EraseCustomer { reason: None }),
    ];
    (who, cmd)
}

fn principal(n: u8) -> Principal {
    match n {
        0 => customer(),
        1 => agent(),
        2 => other_agent(),
        3 => supervisor(),
        4 => service(),
        5 => stranger(),
        _ => auditor(),
    }
}

proptest! {
    /// Whatever commands arrive, the log stays a gapless, intact chain, and replaying it gives
    /// exactly the state the writer holds: a new owner decides as the old one would have.
    #[test]
    fn any_command_sequence_keeps_the_chain_and_replays_to_the_same_state(
        commands in proptest::collection::vec(any_command(), 1..40)
    ) {
        let mut s = Scenario::opened();
        for (who, command) in commands {
            let _ = s.run(&principal(who), command);
        }
        let frames: Vec<&[u8]> = s.log.iter().map(|(_, f)| f.as_slice()).collect();
        let intact = matches!(verify(frames), Verdict::Intact { .. });
        prop_assert!(intact, "the chain is intact");
        let events: Vec<ConversationEvent> = s.log.iter().map(|(e, _)| e.clone()).collect();
        let replayed = ConversationState::replay(&events).unwrap();
        prop_assert_eq!(replayed.as_ref(), s.state.as_ref());
        let decoded: Vec<ConversationEvent> =
            s.log.iter().map(|(_, f)| ConversationEvent::decode(f).unwrap()).collect();
        prop_assert_eq!(decoded, events);
    }
}
