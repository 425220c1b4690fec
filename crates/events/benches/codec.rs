//! Encode + decode of a MessagePosted with a 200-byte body: our Avro codec against prost on an
//! equivalent protobuf message. Both produce owned, validated values on decode.
//!
//! `cargo bench -p switchboard-events --bench codec`

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use switchboard_events::{ConversationEvent, ConversationPayload, fixtures};

#[derive(Clone, PartialEq, prost::Message)]
struct Actor {
    #[prost(int32, tag = "1")]
    kind: i32,
    #[prost(string, tag = "2")]
    id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Envelope {
    #[prost(bytes = "vec", tag = "1")]
    hash: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    prev_hash: Vec<u8>,
    #[prost(uint64, tag = "3")]
    seq: u64,
    #[prost(string, tag = "4")]
    event_id: String,
    #[prost(string, tag = "5")]
    tenant_id: String,
    #[prost(string, tag = "6")]
    conversation_id: String,
    #[prost(int64, tag = "7")]
    occurred_at: i64,
    #[prost(message, optional, tag = "8")]
    actor: Option<Actor>,
    #[prost(string, tag = "9")]
    correlation_id: String,
    #[prost(string, optional, tag = "10")]
    causation_id: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Sealed {
    #[prost(string, tag = "1")]
    key_id: String,
    #[prost(bytes = "vec", tag = "2")]
    nonce: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    ciphertext: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Attachment {
    #[prost(string, tag = "1")]
    attachment_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct MessagePosted {
    #[prost(message, optional, tag = "1")]
    envelope: Option<Envelope>,
    #[prost(string, tag = "2")]
    message_id: String,
    #[prost(string, tag = "3")]
    client_msg_id: String,
    #[prost(message, optional, tag = "4")]
    body: Option<Sealed>,
    #[prost(message, repeated, tag = "5")]
    attachments: Vec<Attachment>,
    #[prost(bool, tag = "6")]
    private_note: bool,
}

fn sample() -> ConversationEvent {
    let mut event = ConversationEvent {
        envelope: fixtures::conversation_envelope(4, switchboard_events::envelope::Actor::system()),
        payload: ConversationPayload::MessagePosted(fixtures::message_posted(4, 200)),
    };
    event
        .encode_chained(switchboard_events::ChainHash::GENESIS)
        .expect("encodes");
    event
}

fn as_prost(event: &ConversationEvent) -> MessagePosted {
    let ConversationPayload::MessagePosted(m) = &event.payload else {
        unreachable!("a message")
    };
    let e = &event.envelope;
    MessagePosted {
        envelope: Some(Envelope {
            hash: e.hash.0.to_vec(),
            prev_hash: e.prev_hash.0.to_vec(),
            seq: e.seq.0,
            event_id: e.event_id.to_string(),
            tenant_id: e.tenant_id.to_string(),
            conversation_id: e.conversation_id.to_string(),
            occurred_at: e.occurred_at.0,
            actor: Some(Actor {
                kind: 4,
                id: e.actor.id.to_string(),
            }),
            correlation_id: e.correlation_id.0.to_string(),
            causation_id: e.causation_id.map(|c| c.0.to_string()),
        }),
        message_id: m.message_id.to_string(),
        client_msg_id: m.client_msg_id.to_string(),
        body: Some(Sealed {
            key_id: m.body.key_id.to_string(),
            nonce: m.body.nonce.to_vec(),
            ciphertext: m.body.ciphertext.clone(),
        }),
        attachments: Vec::new(),
        private_note: m.private_note,
    }
}

fn bench(c: &mut Criterion) {
    use prost::Message as _;
    let event = sample();
    let proto = as_prost(&event);
    let mut group = c.benchmark_group("message_posted_200b");

    let mut buf = Vec::with_capacity(1024);
    event.encode_into(&mut buf).unwrap();
    eprintln!(
        "frame sizes: avro {} bytes, protobuf {} bytes",
        buf.len(),
        proto.encoded_len()
    );

    group.bench_function("avro_encode_decode", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&event).encode_into(&mut buf).unwrap();
            black_box(ConversationEvent::decode(black_box(&buf)).unwrap())
        })
    });
    group.bench_function("prost_encode_decode", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&proto).encode(&mut buf).unwrap();
            black_box(MessagePosted::decode(black_box(&buf[..])).unwrap())
        })
    });
    group.bench_function("avro_encode", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&event).encode_into(&mut buf).unwrap();
        })
    });
    let frame = event.encode().unwrap();
    group.bench_function("avro_decode", |b| {
        b.iter(|| black_box(ConversationEvent::decode(black_box(&frame)).unwrap()))
    });
    group.bench_function("seal_200b_body", |b| {
        let (key, tenant, customer) = (
            fixtures::data_key(),
            fixtures::tenant(),
            fixtures::customer(),
        );
        let body = "x".repeat(200);
        b.iter(|| {
            black_box(
                switchboard_events::personal::Sealed::seal(
                    &key,
                    &tenant,
                    &customer,
                    black_box(&body),
                )
                .unwrap(),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
