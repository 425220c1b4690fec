//! Both servers over the real admission, writer and router on an embedded log: a customer who
//! floods their tenant is refused (HTTP 429, gRPC `RESOURCE_EXHAUSTED`) while another customer
//! of the same tenant still opens and sends, and a customer cannot give themselves privileges
//! on open while a service can.

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Value, json};
use switchboard_events::principal::Role;
use switchboard_events::rate::Rate;
use switchboard_log::EventLog;
use switchboard_log::embedded::{EmbeddedConfig, EmbeddedLog};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Code;

use super::grpc::{authorized, code};
use super::http::post_json;
use super::{ServeError, ServiceToken, StaticTokens, principal, serve};
use crate::admission::{AdmissionConfig, Admitting};
use crate::api::Api;
use crate::api::proto::ingest_client::IngestClient;
use crate::api::proto::{self, conversation_command as cc};
use crate::routing::{Clock, CustomerCaps, DriverConfig, RouterHandle, RoutingConfig};
use crate::routing::{RoutingConfigs, driver};
use crate::writer::keys::InMemoryKeys;
use crate::writer::{Writer, WriterConfig};

/// Customer cust-1 of acme, who floods.
const FLOOD: &str = "flood-token-0123456789abcdef";
/// Customer cust-2 of acme.
const OTHER: &str = "other-token-0123456789abcdef";
/// A service of acme (the business's backend).
const CRM: &str = "crm-token-0123456789abcdef";
/// A service of every tenant acting for end users (the edge).
const EDGE: &str = "edge-token-0123456789abcdef";

/// The servers over `Admitting<Writer>`, with the router feeding the gate.
struct Served {
    grpc: SocketAddr,
    http: SocketAddr,
    stop: oneshot::Sender<()>,
    server: JoinHandle<Result<(), ServeError>>,
    router: RouterHandle,
    _dir: tempfile::TempDir,
}

/// Each customer may send commands at `customer_rate`; at most 3 conversations of a customer
/// wait; the tenant's queue holds `queue_limit`.
async fn start(customer_rate: Rate, queue_limit: usize) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn EventLog> =
        Arc::new(EmbeddedLog::open(EmbeddedConfig::new(dir.path())).unwrap());
    let config = WriterConfig {
        conversation_partitions: 4,
        agent_partitions: 2,
        ..WriterConfig::default()
    };
    let writer = Writer::start(log.clone(), Arc::new(InMemoryKeys::default()), config)
        .await
        .unwrap();
    let routing = RoutingConfig {
        queue_limit,
        customer_caps: CustomerCaps {
            max_open: 10,
            max_waiting: 3,
        },
        ..RoutingConfig::default()
    };
    let driver_config = DriverConfig {
        routing: RoutingConfigs::new(routing),
        ..DriverConfig::default()
    };
    let router = driver::start(
        log,
        Arc::new(writer.clone()),
        driver_config,
        Clock::system(),
    )
    .await
    .unwrap();
    let rates = AdmissionConfig {
        customer: customer_rate,
        ..AdmissionConfig::default()
    };
    let handler = Admitting::with_config(writer, router.admission(), rates);
    let token = |token: &str, role, subject: &str, all_tenants| {
        let tenant = if all_tenants { "switchboard" } else { "acme" };
        let p = principal(tenant, role, subject);
        ServiceToken {
            token: token.into(),
            tenant: p.tenant,
            role: p.role,
            subject: p.subject,
            all_tenants,
        }
    };
    let tokens = StaticTokens::new([
        token(FLOOD, Role::Customer, "cust-1", false),
        token(OTHER, Role::Customer, "cust-2", false),
        token(CRM, Role::Service, "crm", false),
        token(EDGE, Role::Service, "edge", true),
    ])
    .unwrap();
    let api = Api::new(Arc::new(handler), Arc::new(tokens));
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (grpc_addr, http_addr) = (grpc.local_addr().unwrap(), http.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel();
    let server = tokio::spawn(serve(api, grpc, http, async {
        let _ = stopped.await;
    }));
    Served {
        grpc: grpc_addr,
        http: http_addr,
        stop,
        server,
        router,
        _dir: dir,
    }
}

impl Served {
    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.server.await.unwrap().unwrap();
        self.router.stop().await;
    }
}

/// Eight commands, and no token back within a test.
const EIGHT: Rate = Rate::new(0.001, 8.0);

fn open(customer: &str) -> Value {
    json!({"customer_id": customer, "channel": "web"})
}

fn message(n: usize) -> Value {
    json!({"type": "post_message", "client_msg_id": format!("m-{n}"), "body": "hello"})
}

fn commands(conversation: &Value) -> String {
    format!(
        "/v1/conversations/{}/commands",
        conversation.as_str().unwrap()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_customer_gets_429_while_another_customer_still_opens_and_sends() {
    let s = start(EIGHT, 4).await;
    let mut flood = Vec::new();
    for _ in 0..3 {
        let answer = post_json(s.http, "/v1/conversations", Some(FLOOD), open("cust-1")).await;
        assert_eq!(answer.status, 201, "{}", answer.json());
        flood.push(answer.json()["conversation_id"].clone());
    }
    let refused = post_json(s.http, "/v1/conversations", Some(FLOOD), open("cust-1")).await;
    assert_eq!(refused.status, 429);
    assert_eq!(
        refused.error(),
        (
            "too_many_open_conversations".to_owned(),
            "the customer already has 3 waiting conversations, the limit is 3".to_owned()
        ),
        "their own backlog counts against them"
    );
    // Four of the 8 commands are spent (the refused open too); four messages go through.
    for n in 0..4 {
        let answer = post_json(s.http, &commands(&flood[0]), Some(FLOOD), message(n)).await;
        assert_eq!(answer.status, 200, "{}", answer.json());
    }
    let limited = post_json(s.http, &commands(&flood[0]), Some(FLOOD), message(4)).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.error().0, "rate_limited");
    let wait: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!(wait >= 1, "a whole number of seconds: {wait}");

    // The tenant's queue (4) is not full: the flood counts 3 of it, so cust-2 gets in.
    let answer = post_json(s.http, "/v1/conversations", Some(OTHER), open("cust-2")).await;
    assert_eq!(answer.status, 201, "{}", answer.json());
    let theirs = answer.json()["conversation_id"].clone();
    let answer = post_json(s.http, &commands(&theirs), Some(OTHER), message(0)).await;
    assert_eq!(answer.status, 200, "{}", answer.json());
    assert_eq!(answer.json()["unchanged"], json!(false), "a new message");
    s.stop().await;
}

fn grpc_open(customer: &str, on_behalf_of: bool) -> proto::ConversationCommand {
    proto::ConversationCommand {
        on_behalf_of: on_behalf_of.then(|| proto::OnBehalfOf {
            tenant_id: "acme".into(),
            role: proto::Role::Customer.into(),
            subject: customer.into(),
        }),
        command: Some(cc::Command::Open(proto::Open {
            customer_id: customer.into(),
            channel: proto::Channel::Web.into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn grpc_post(conversation: &str, n: usize, customer: Option<&str>) -> proto::ConversationCommand {
    proto::ConversationCommand {
        conversation_id: conversation.into(),
        on_behalf_of: customer.map(|c| proto::OnBehalfOf {
            tenant_id: "acme".into(),
            role: proto::Role::Customer.into(),
            subject: c.into(),
        }),
        command: Some(cc::Command::PostMessage(proto::PostMessage {
            client_msg_id: format!("g-{n}"),
            body: "hello".into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_customer_gets_resource_exhausted_over_grpc_whatever_the_door() {
    let s = start(EIGHT, 4).await;
    let mut c = IngestClient::connect(format!("http://{}", s.grpc))
        .await
        .unwrap();
    // The flood comes through the edge (acting for cust-1) and with its own token: one
    // principal, one bucket, one backlog.
    let mut flood = Vec::new();
    for (n, token) in [EDGE, FLOOD, EDGE].into_iter().enumerate() {
        let ack = c
            .execute(authorized(grpc_open("cust-1", token == EDGE), Some(token)))
            .await
            .unwrap_or_else(|e| panic!("open {n}: {e}"));
        flood.push(ack.into_inner().stream_id);
    }
    let refused = c
        .execute(authorized(grpc_open("cust-1", false), Some(FLOOD)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(code(&refused), "too_many_open_conversations");
    for n in 0..4 {
        c.execute(authorized(
            grpc_post(&flood[1], n, Some("cust-1")),
            Some(EDGE),
        ))
        .await
        .unwrap_or_else(|e| panic!("post {n}: {e}"));
    }
    let limited = c
        .execute(authorized(grpc_post(&flood[1], 4, None), Some(FLOOD)))
        .await
        .unwrap_err();
    assert_eq!(limited.code(), Code::ResourceExhausted);
    assert_eq!(code(&limited), "rate_limited");
    let wait: u64 = limited
        .metadata()
        .get(crate::api::RETRY_AFTER_METADATA)
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        wait > 1000,
        "no token comes back soon at this rate: {wait} ms"
    );

    let theirs = c
        .execute(authorized(grpc_open("cust-2", true), Some(EDGE)))
        .await
        .unwrap()
        .into_inner()
        .stream_id;
    let ack = c
        .execute(authorized(grpc_post(&theirs, 0, None), Some(OTHER)))
        .await
        .unwrap()
        .into_inner();
    assert!(
        !ack.unchanged && !ack.message_id.is_empty(),
        "a new message"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_cannot_give_themselves_privileges_on_open_but_services_can() {
    let s = start(AdmissionConfig::default().customer, 200).await;
    let privileged = [
        ("priority", json!({"priority": "urgent"})),
        ("vip", json!({"vip": true})),
        ("team", json!({"team_id": "billing"})),
        ("skills", json!({"required_skills": ["french"]})),
        ("attributes", json!({"attributes": {"plan": "enterprise"}})),
    ];
    for (what, fields) in &privileged {
        let mut body = open("cust-1");
        body.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        let answer = post_json(s.http, "/v1/conversations", Some(FLOOD), body.clone()).await;
        assert_eq!(answer.status, 403, "{what}: {}", answer.json());
        let (code, message) = answer.error();
        assert_eq!(code, "forbidden", "{what}");
        assert!(
            message.starts_with("a customer may not "),
            "{what}: {message}"
        );
        // The edge acting for the customer is held to the customer's rules.
        body["on_behalf_of"] =
            json!({"tenant_id": "acme", "role": "customer", "subject": "cust-1"});
        let answer = post_json(s.http, "/v1/conversations", Some(EDGE), body.clone()).await;
        assert_eq!(answer.status, 403, "{what} through the edge");
        // The business's backend vouches for a customer: allowed. (Another customer each
        // time: services are not capped, but cust-1's waiting would then refuse cust-1.)
        body.as_object_mut().unwrap().remove("on_behalf_of");
        body["customer_id"] = json!(format!("cust-{what}"));
        let answer = post_json(s.http, "/v1/conversations", Some(CRM), body).await;
        assert_eq!(
            answer.status,
            201,
            "{what} from a service: {}",
            answer.json()
        );
    }
    s.stop().await;
}
