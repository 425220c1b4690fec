//! Load generator for the write path: N gRPC clients, each on its own connection and its own
//! conversation, post messages as fast as acknowledgements come back, against a real ingest
//! (writer + gRPC API) on an embedded log with fsync on every group commit.
//!
//! `cargo run --release -p switchboard-ingest --example ingest_load -- [clients] [seconds] [conversations] [grpc|direct]`
//!
//! Prints acknowledged PostMessage/s and the ack latency percentiles. `direct` calls the writer
//! in process, without gRPC, to tell the write path's cost from the transport's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_events::id::{PrincipalId, TenantId};
use switchboard_events::principal::Role;
use switchboard_ingest::api::proto::ingest_client::IngestClient;
use switchboard_ingest::api::proto::{self, conversation_command::Command};
use switchboard_ingest::api::{Api, ServiceToken, StaticTokens, serve};
use switchboard_ingest::writer::keys::InMemoryKeys;
use switchboard_ingest::writer::{Writer, WriterConfig};
use switchboard_log::embedded::{EmbeddedConfig, EmbeddedLog};
use tonic::Request;
use tonic::metadata::MetadataValue;

fn token(i: usize) -> String {
    format!("load-generator-customer-{i:05}")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let direct = raw.iter().any(|a| a == "direct");
    let args: Vec<usize> = raw
        .iter()
        .filter(|a| *a != "direct" && *a != "grpc")
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let clients = args.first().copied().unwrap_or(64);
    let seconds = args.get(1).copied().unwrap_or(10) as u64;
    let conversations = args.get(2).copied().unwrap_or(clients).max(1);

    let dir = tempfile::tempdir()?;
    let log = Arc::new(EmbeddedLog::open(EmbeddedConfig::new(dir.path()))?);
    // PARTITIONS=n sets the conversation topic's partition count (default 12).
    let partitions = std::env::var("PARTITIONS")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(12);
    let config = WriterConfig {
        conversation_partitions: partitions,
        ..WriterConfig::default()
    };
    let writer = Writer::start(log.clone(), Arc::new(InMemoryKeys::default()), config).await?;
    let tenant = TenantId::new("loadtest")?;
    let tokens = (0..conversations).map(|i| ServiceToken {
        token: token(i),
        tenant: tenant.clone(),
        role: Role::Customer,
        subject: PrincipalId::new(format!("cust-{i}")).expect("valid id"),
        all_tenants: false,
    });
    let writer = Arc::new(writer);
    let api = Api::new(writer.clone(), Arc::new(StaticTokens::new(tokens)?));
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = format!("http://{}", grpc.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(api, grpc, http, async {
        let _ = stopped.await;
    }));

    // Open one conversation per customer.
    let mut ids = Vec::new();
    for i in 0..conversations {
        let mut client = IngestClient::connect(address.clone()).await?;
        let command = proto::ConversationCommand {
            command: Some(Command::Open(proto::Open {
                customer_id: format!("cust-{i}"),
                channel: proto::Channel::Web as i32,
                ..Default::default()
            })),
            ..Default::default()
        };
        let ack = client.execute(authorized(command, i)).await?.into_inner();
        ids.push(ack.stream_id);
    }

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    if direct {
        use switchboard_ingest::api::CommandHandler as _;
        use switchboard_ingest::command::{ConversationCommand, PostMessage};
        for c in 0..clients {
            let writer = writer.clone();
            let i = c % conversations;
            let conversation = switchboard_events::id::ConversationId::new(ids[i].clone())?;
            let principal = switchboard_events::principal::Principal::new(
                tenant.clone(),
                Role::Customer,
                PrincipalId::new(format!("cust-{i}"))?,
            );
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(100_000);
                let mut n = 0u64;
                while Instant::now() < deadline {
                    n += 1;
                    let command = ConversationCommand::PostMessage(PostMessage {
                        client_msg_id: format!("c{c}-{n}").parse().expect("valid id"),
                        body: "x".repeat(200),
                        attachments: Vec::new(),
                        private_note: false,
                    });
                    let correlation = switchboard_events::id::CorrelationId(uuid::Uuid::now_v7());
                    let sent = Instant::now();
                    writer
                        .conversation(
                            principal.clone(),
                            Some(conversation.clone()),
                            command,
                            correlation,
                        )
                        .await
                        .expect("acknowledged");
                    latencies.push(sent.elapsed().as_micros() as u32);
                }
                latencies
            }));
        }
    }
    for c in (0..clients).filter(|_| !direct) {
        let address = address.clone();
        let i = c % conversations;
        let conversation = ids[i].clone();
        tasks.push(tokio::spawn(async move {
            let mut client = IngestClient::connect(address).await.expect("connects");
            let mut latencies = Vec::with_capacity(100_000);
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let command = proto::ConversationCommand {
                    conversation_id: conversation.clone(),
                    command: Some(Command::PostMessage(proto::PostMessage {
                        client_msg_id: format!("c{c}-{n}"),
                        body: "x".repeat(200),
                        ..Default::default()
                    })),
                    ..Default::default()
                };
                let sent = Instant::now();
                client
                    .execute(authorized(command, i))
                    .await
                    .expect("acknowledged");
                latencies.push(sent.elapsed().as_micros() as u32);
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    eprintln!(
        "mode={} clients={clients} conversations={conversations} seconds={elapsed:.1} acked={} rate={:.0}/s p50={}us p99={}us p99.9={}us max={}us",
        if direct { "direct" } else { "grpc" },
        latencies.len(),
        latencies.len() as f64 / elapsed,
        at(0.50),
        at(0.99),
        at(0.999),
        latencies.last().copied().unwrap_or(0),
    );
    let _ = stop.send(());
    server.await??;
    log.shutdown();
    Ok(())
}

fn authorized(
    command: proto::ConversationCommand,
    customer: usize,
) -> Request<proto::ConversationCommand> {
    let mut request = Request::new(command);
    let value: MetadataValue<_> = format!("Bearer {}", token(customer))
        .parse()
        .expect("ascii");
    request.metadata_mut().insert("authorization", value);
    request
}
