//! The gRPC API over the network, served by `serve` beside the HTTP API on loopback ports.

use std::net::SocketAddr;

use switchboard_events::principal::Role;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::Request;
use tonic::metadata::MetadataValue;

use super::{World, token};
use crate::grpc::proto::{self, history_request, query_client::QueryClient};

struct Running {
    grpc: SocketAddr,
    http: SocketAddr,
    stop: oneshot::Sender<()>,
    served: tokio::task::JoinHandle<Result<(), crate::ServeError>>,
}

async fn start(world: &World) -> Running {
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (http_addr, grpc_addr) = (http.local_addr().unwrap(), grpc.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel();
    let served = tokio::spawn(crate::serve(world.service.clone(), http, grpc, async {
        let _ = stopped.await;
    }));
    Running {
        grpc: grpc_addr,
        http: http_addr,
        stop,
        served,
    }
}

fn authed<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    let value = MetadataValue::try_from(format!("Bearer {token}")).unwrap();
    request.metadata_mut().insert("authorization", value);
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_answers_over_grpc_within_the_tenant() {
    let world = World::new().await;
    let running = start(&world).await;
    let mut client = QueryClient::connect(format!("http://{}", running.grpc))
        .await
        .unwrap();
    let auditor = token("acme", Role::Auditor, "audit-1");

    let page = client
        .history(authed(
            proto::HistoryRequest {
                conversation_id: "conv-a".into(),
                limit: 3,
                from: Some(history_request::From::Oldest(true)),
            },
            &auditor,
        ))
        .await
        .unwrap()
        .into_inner();
    let seqs: Vec<_> = page.events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(page.after, 3);
    assert!(page.events[0].event_json.contains("Ada Lovelace"));

    let summary = client
        .summary(authed(
            proto::SummaryRequest {
                conversation_id: "conv-a".into(),
            },
            &auditor,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.customer_id, "cust-1");

    let list = client
        .list_conversations(authed(
            proto::ListRequest {
                limit: 10,
                ..Default::default()
            },
            &auditor,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.conversations.len(), 2);

    let mut stream = client
        .replay(authed(
            proto::ReplayRequest {
                conversation_id: "conv-a".into(),
                ..Default::default()
            },
            &auditor,
        ))
        .await
        .unwrap()
        .into_inner();
    let mut replayed = Vec::new();
    while let Some(event) = stream.message().await.unwrap() {
        assert!(event.kind.starts_with("switchboard.conversation."));
        let json: serde_json::Value = serde_json::from_str(&event.event_json).unwrap();
        assert_eq!(json["envelope"]["seq"], event.seq);
        replayed.push(event.frame);
    }
    assert_eq!(replayed.len() as u64, summary.last_seq);
    assert!(matches!(
        switchboard_events::chain::verify(replayed.iter().map(Vec::as_slice)),
        switchboard_events::chain::Verdict::Intact { .. }
    ));

    let verdict = client
        .verify(authed(
            proto::VerifyRequest {
                conversation_id: "conv-a".into(),
            },
            &auditor,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(verdict.intact);

    let report = client
        .report(authed(
            proto::ReportRequest {
                agent_id: String::new(),
                from_day: 20_454,
                to_day: 20_454,
            },
            &auditor,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.days[0].conversations_opened, 2);

    // Tenant B's conversation reads as missing; no token is unauthenticated.
    let theirs = client
        .summary(authed(
            proto::SummaryRequest {
                conversation_id: "conv-b".into(),
            },
            &auditor,
        ))
        .await
        .unwrap_err();
    assert_eq!(theirs.code(), tonic::Code::NotFound);
    assert_eq!(
        theirs.metadata().get("switchboard-code").unwrap(),
        "not_found"
    );
    let replay_theirs = client
        .replay(authed(
            proto::ReplayRequest {
                conversation_id: "conv-b".into(),
                ..Default::default()
            },
            &auditor,
        ))
        .await
        .unwrap_err();
    assert_eq!(replay_theirs.code(), tonic::Code::NotFound);
    let anonymous = client
        .verify(Request::new(proto::VerifyRequest {
            conversation_id: "conv-a".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
    let agent = token("acme", Role::Agent, "agent-7");
    let refused = client
        .verify(authed(
            proto::VerifyRequest {
                conversation_id: "conv-a".into(),
            },
            &agent,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);

    // The HTTP API answers on its own port meanwhile.
    let mut http = tokio::net::TcpStream::connect(running.http).await.unwrap();
    let body = crate::tests::raw_get(&mut http, "/healthz", None).await;
    assert_eq!(body, (200, b"ok".to_vec()));

    running.stop.send(()).unwrap();
    running.served.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_over_its_rate_is_resource_exhausted_over_grpc() {
    let limits = crate::access::ReadLimits {
        staff: switchboard_events::rate::Rate::new(0.001, 2.0),
        ..crate::access::ReadLimits::default()
    };
    let world = World::new().await.with_read_limits(limits);
    let running = start(&world).await;
    let mut client = QueryClient::connect(format!("http://{}", running.grpc))
        .await
        .unwrap();
    let request = |token: &str| {
        authed(
            proto::HistoryRequest {
                conversation_id: "conv-a".into(),
                limit: 3,
                from: Some(history_request::From::Oldest(true)),
            },
            token,
        )
    };
    let agent = token("acme", Role::Agent, "agent-7");
    for _ in 0..2 {
        client.history(request(&agent)).await.unwrap();
    }
    let refused = client.history(request(&agent)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    assert_eq!(
        refused.metadata().get("switchboard-code").unwrap(),
        "rate_limited"
    );
    assert!(refused.metadata().get("retry-after-ms").is_some());
    let other = token("acme", Role::Agent, "agent-8");
    client.history(request(&other)).await.unwrap();
    running.stop.send(()).unwrap();
    running.served.await.unwrap().unwrap();
}
