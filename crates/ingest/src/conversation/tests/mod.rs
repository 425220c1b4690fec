//! Given events, when a command, then events or a refusal — for every command and rule of
//! `rules.md`. This module holds the harness and the opening rules; `messages` and
//! `lifecycle` hold the rest.

mod lifecycle;
mod messages;

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
        Scenario::new().refused(&service(), many),
        "invalid_argument"
    );
}

fn open_with(edit: impl FnOnce(&mut OpenConversation)) -> C {
    let mut command = open("cust-1");
    if let C::Open(o) = &mut command {
        edit(o);
    }
    command
}

/// Each privilege a customer might try to give themselves on open.
fn privileged_opens() -> Vec<(&'static str, C)> {
    vec![
        ("priority", open_with(|o| o.priority = Priority::Urgent)),
        ("vip", open_with(|o| o.vip = true)),
        (
            "team",
            open_with(|o| o.team_id = Some(TeamId::new("billing").unwrap())),
        ),
        (
            "skills",
            open_with(|o| o.required_skills = vec![label("french")]),
        ),
        (
            "attributes",
            open_with(|o| {
                o.attributes = [("plan".to_owned(), "enterprise".to_owned())].into();
            }),
        ),
    ]
}

#[test]
fn a_customer_cannot_give_themselves_privileges_on_open() {
    for (what, command) in privileged_opens() {
        let mut s = Scenario::new();
        let refused = s.run(&customer(), command).unwrap_err();
        assert_eq!(refused.code(), "forbidden", "{what}");
        assert!(
            refused.to_string().starts_with("a customer may not "),
            "{what}: {refused}"
        );
        assert!(s.log.is_empty(), "{what}: nothing appended");
    }
    let mut retried = Scenario::opened();
    assert_eq!(
        retried.refused(&customer(), open_with(|o| o.vip = true)),
        "forbidden",
        "not even as a retry of an open that exists"
    );
    let normal = open_with(|o| o.priority = Priority::Normal);
    Scenario::new().ok(&customer(), normal);
}

#[test]
fn staff_and_services_set_privileges_on_open() {
    for principal in [service(), supervisor(), agent()] {
        for (what, command) in privileged_opens() {
            let mut s = Scenario::new();
            let events = s.ok(&principal, command);
            assert!(
                matches!(events.as_slice(), [ConversationPayload::Opened(_)]),
                "{what}"
            );
        }
    }
    let mut s = Scenario::new();
    s.ok(
        &service(),
        open_with(|o| {
            o.vip = true;
            o.priority = Priority::High;
            o.required_skills = vec![label("french")];
        }),
    );
    let state = s.state();
    assert!(state.vip);
    assert_eq!(state.priority, Priority::High);
    assert_eq!(state.required_skills, vec![label("french")]);
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
