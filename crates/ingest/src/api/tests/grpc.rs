use switchboard_events::id::{ClientMsgId, ConversationId};
use switchboard_events::principal::Role;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use super::{BOSS, CRM, Call, EDGE, Harness, every_error, principal};
use crate::api::proto::ingest_client::IngestClient;
use crate::api::proto::{self, agent_command, conversation_command as cc};
use crate::command::{AgentCommand, ConversationCommand, PostMessage};

async fn client(h: &Harness) -> IngestClient<Channel> {
    IngestClient::connect(format!("http://{}", h.grpc))
        .await
        .unwrap()
}

pub(super) fn authorized<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().unwrap();
        request.metadata_mut().insert("authorization", value);
    }
    request
}

fn post(conversation: &str, on_behalf_of: Option<proto::OnBehalfOf>) -> proto::ConversationCommand {
    proto::ConversationCommand {
        conversation_id: conversation.into(),
        on_behalf_of,
        correlation_id: String::new(),
        command: Some(cc::Command::PostMessage(proto::PostMessage {
            client_msg_id: "c-1".into(),
            body: "hello".into(),
            ..Default::default()
        })),
    }
}

fn customer_of(tenant: &str) -> Option<proto::OnBehalfOf> {
    Some(proto::OnBehalfOf {
        tenant_id: tenant.into(),
        role: proto::Role::Customer.into(),
        subject: "cust-1".into(),
    })
}

pub(super) fn code(status: &Status) -> &str {
    status
        .metadata()
        .get("switchboard-code")
        .map(|v| v.to_str().unwrap())
        .unwrap_or("<none>")
}

#[tokio::test]
async fn a_command_reaches_the_handler_as_the_caller_and_is_acknowledged() {
    let h = Harness::start().await;
    let mut c = client(&h).await;
    let ack = c
        .execute(authorized(post("conv-1", None), Some(BOSS)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        ack,
        proto::Ack {
            stream_id: "conv-1".into(),
            seq: 2,
            unchanged: false,
            message_id: "m-1".into(),
        }
    );
    let [
        Call::Conversation {
            principal: p,
            conversation,
            command,
            correlation,
        },
    ] = &h.fake.calls()[..]
    else {
        panic!("{:?}", h.fake.calls());
    };
    assert_eq!(*p, principal("acme", Role::Supervisor, "boss"));
    assert_eq!(*conversation, Some(ConversationId::new("conv-1").unwrap()));
    assert_eq!(
        *command,
        ConversationCommand::PostMessage(PostMessage {
            client_msg_id: ClientMsgId::new("c-1").unwrap(),
            body: "hello".into(),
            attachments: vec![],
            private_note: false,
        })
    );
    assert_eq!(correlation.0.get_version_num(), 7);
    h.stop().await;
}

#[tokio::test]
async fn an_open_without_an_id_answers_with_the_new_conversation() {
    let h = Harness::start().await;
    let open = proto::ConversationCommand {
        command: Some(cc::Command::Open(proto::Open {
            customer_id: "cust-1".into(),
            channel: proto::Channel::Web.into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    let ack = client(&h)
        .await
        .execute(authorized(open, Some(BOSS)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((ack.stream_id.as_str(), ack.seq), ("conv-new", 1));
    h.stop().await;
}

#[tokio::test]
async fn agent_commands_are_served() {
    let h = Harness::start().await;
    let command = proto::AgentCommand {
        agent_id: "agent-7".into(),
        command: Some(agent_command::Command::SetCapacity(5)),
        ..Default::default()
    };
    let ack = client(&h)
        .await
        .execute_agent(authorized(command, Some(BOSS)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((ack.stream_id.as_str(), ack.seq), ("agent-7", 1));
    assert!(matches!(
        &h.fake.calls()[..],
        [Call::Agent {
            command: AgentCommand::SetCapacity {
                max_conversations: 5
            },
            ..
        }]
    ));
    h.stop().await;
}

#[tokio::test]
async fn every_refusal_keeps_its_code_kind_and_message() {
    let h = Harness::start().await;
    let mut c = client(&h).await;
    for err in every_error() {
        let status = c
            .execute(authorized(post(err.code(), None), Some(BOSS)))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::from_i32(err.status().grpc()), "{err}");
        assert_eq!(status.message(), err.to_string());
        assert_eq!(code(&status), err.code());
    }
    h.stop().await;
}

#[tokio::test]
async fn invalid_messages_are_refused_before_the_handler() {
    let h = Harness::start().await;
    let mut c = client(&h).await;
    let status = c
        .execute(authorized(post("", None), Some(BOSS)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "invalid conversation_id: required for post_message"
    );
    assert_eq!(code(&status), "invalid_argument");
    assert!(h.fake.calls().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn callers_without_a_valid_token_are_unauthenticated() {
    let h = Harness::start().await;
    let mut c = client(&h).await;
    for token in [None, Some("not-a-known-token-at-all")] {
        let status = c
            .execute(authorized(post("conv-1", None), token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{token:?}");
        assert_eq!(code(&status), "unauthenticated");
    }
    let mut request = authorized(post("conv-1", None), None);
    let basic = "Basic Ym9zczpzZWNyZXQ=".parse().unwrap();
    request.metadata_mut().insert("authorization", basic);
    let status = c.execute(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(h.fake.calls().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn only_services_act_on_behalf_of_others_within_their_tenants() {
    let h = Harness::start().await;
    let mut c = client(&h).await;
    for token in [EDGE, CRM] {
        c.execute(authorized(post("conv-1", customer_of("acme")), Some(token)))
            .await
            .unwrap();
    }
    c.execute(authorized(
        post("conv-1", customer_of("globex")),
        Some(EDGE),
    ))
    .await
    .unwrap();
    let principals: Vec<_> = h
        .fake
        .calls()
        .into_iter()
        .map(|call| match call {
            Call::Conversation { principal, .. } | Call::Agent { principal, .. } => principal,
        })
        .collect();
    assert_eq!(
        principals,
        [
            principal("acme", Role::Customer, "cust-1"),
            principal("acme", Role::Customer, "cust-1"),
            principal("globex", Role::Customer, "cust-1"),
        ]
    );

    let other_tenant = c
        .execute(authorized(post("conv-1", customer_of("globex")), Some(CRM)))
        .await
        .unwrap_err();
    let not_a_service = c
        .execute(authorized(post("conv-1", customer_of("acme")), Some(BOSS)))
        .await
        .unwrap_err();
    for status in [other_tenant, not_a_service] {
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        assert_eq!(code(&status), "forbidden");
    }
    assert_eq!(h.fake.calls().len(), 3);
    h.stop().await;
}

#[tokio::test]
async fn messages_over_the_limit_are_too_large() {
    let h = Harness::start_with_limit(1024).await;
    let mut big = post("conv-1", None);
    if let Some(cc::Command::PostMessage(p)) = &mut big.command {
        p.body = "x".repeat(2000);
    }
    let status = client(&h)
        .await
        .execute(authorized(big, Some(BOSS)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(code(&status), "too_large");
    assert!(
        status.message().ends_with("the limit is 1024"),
        "{}",
        status.message()
    );
    assert!(h.fake.calls().is_empty());
    h.stop().await;
}
