//! What both load generators share: a store populated with many copies of the sample
//! conversation, projected by the real projector, and tokens.

use std::sync::Arc;

use switchboard_events::conversation::ConversationPayload;
use switchboard_events::id::{ClientMsgId, ConversationId, MessageId, PrincipalId, TenantId};
use switchboard_events::personal::{DataKey, Sealed};
use switchboard_events::principal::{Principal, Role};
use switchboard_events::token::{TokenIssuer, TokenVerifier, now_seconds};
use switchboard_events::{ChainHash, ConversationEvent, Seq, Topic, fixtures};
use switchboard_log::Record;
use switchboard_projector::PartitionProjector;
use switchboard_store::ReadModels;
use switchboard_store::checkpoint::LogPartition;
use switchboard_store::embedded::{EmbeddedOptions, EmbeddedStore};

const SECRET: &[u8] = b"query-load-secret-of-32-bytes!!!";

pub fn verifier() -> TokenVerifier {
    TokenVerifier::hs256(SECRET, "load", "switchboard").unwrap()
}

pub fn token(role: Role) -> String {
    let principal = Principal::new(
        fixtures::tenant(),
        role,
        PrincipalId::new("load-1").unwrap(),
    );
    TokenIssuer::hs256(SECRET, "load", "switchboard")
        .issue(&principal, now_seconds() + 3_600)
        .unwrap()
}

fn reseal(sealed: &mut Sealed, key: &DataKey, tenant: &TenantId) {
    let text = sealed
        .open(&fixtures::data_key(), &fixtures::tenant())
        .unwrap();
    *sealed = Sealed::seal(key, tenant, &sealed.key_id, &text).unwrap();
}

/// The sample conversation's events, its first message repeated so that it has `length`
/// events, sealed under `key`.
fn payloads(key: &DataKey, length: usize) -> Vec<ConversationEvent> {
    let tenant = fixtures::tenant();
    let mut sample: Vec<ConversationEvent> = fixtures::conversation_history()
        .into_iter()
        .map(|(mut event, _)| {
            match &mut event.payload {
                ConversationPayload::Opened(p) => {
                    for s in [&mut p.customer_name, &mut p.customer_email]
                        .into_iter()
                        .flatten()
                    {
                        reseal(s, key, &tenant);
                    }
                }
                ConversationPayload::MessagePosted(p) => reseal(&mut p.body, key, &tenant),
                ConversationPayload::MessageEdited(p) => reseal(&mut p.body, key, &tenant),
                ConversationPayload::Rated(p) => {
                    if let Some(s) = &mut p.comment {
                        reseal(s, key, &tenant);
                    }
                }
                _ => {}
            }
            event
        })
        .collect();
    // Drop the erasure at the end; pad with public messages before the resolution.
    sample.retain(|e| !matches!(e.payload, ConversationPayload::CustomerDataErased(_)));
    let message = sample
        .iter()
        .find(|e| matches!(&e.payload, ConversationPayload::MessagePosted(p) if !p.private_note))
        .unwrap()
        .clone();
    let mut events = sample[..6].to_vec();
    while events.len() + sample.len() - 6 < length {
        let mut copy = message.clone();
        if let ConversationPayload::MessagePosted(p) = &mut copy.payload {
            let n = events.len();
            p.message_id = MessageId::new(format!("pad-{n}")).unwrap();
            p.client_msg_id = ClientMsgId::new(format!("pad-{n}")).unwrap();
        }
        events.push(copy);
    }
    events.extend_from_slice(&sample[6..]);
    for (i, event) in events.iter_mut().enumerate() {
        event.envelope.seq = Seq(i as u64 + 1);
    }
    events
}

/// A store in `dir` with `conversations` conversations `conv-<n>` of about `length` events.
pub async fn populate(
    dir: &std::path::Path,
    conversations: usize,
    length: usize,
) -> Arc<dyn ReadModels> {
    let options = EmbeddedOptions {
        sync_batches: false,
        ..Default::default()
    };
    let store: Arc<dyn ReadModels> = Arc::new(EmbeddedStore::open(dir, options).unwrap());
    let key = store
        .create_data_key(&fixtures::tenant(), &fixtures::customer())
        .await
        .unwrap();
    let template = payloads(&key, length);
    let source = LogPartition::new(Topic::Conversations, 0);
    let mut projector = PartitionProjector::open(store.clone(), "load", source)
        .await
        .unwrap();
    let mut offset = 0;
    for n in 0..conversations {
        let id = ConversationId::new(format!("conv-{n}")).unwrap();
        let mut prev = ChainHash::GENESIS;
        let records: Vec<Record> = template
            .iter()
            .map(|event| {
                let mut event = event.clone();
                event.envelope.conversation_id = id.clone();
                let frame = event.encode_chained(prev).unwrap();
                prev = event.envelope.hash;
                offset += 1;
                Record {
                    partition: 0,
                    offset,
                    key: id.as_str().as_bytes().to_vec(),
                    value: frame,
                    headers: vec![],
                    timestamp_ms: 0,
                }
            })
            .collect();
        let projected = projector.project(&records).await.unwrap();
        assert!(projected.rejected.is_empty(), "{:?}", projected.rejected);
        store.apply(&projected.batch).await.unwrap();
        if let Some(next) = projected.next_offset {
            projector.committed(next);
        }
    }
    store
}
