//! Conversation ids are scoped by tenant: the same id in two tenants is two conversations, and
//! a tenant's command on an id only another tenant uses answers exactly like a missing one.

use super::*;

fn id(s: &str) -> ConversationId {
    ConversationId::new(s).unwrap()
}

async fn send(
    writer: &Writer,
    who: Principal,
    conversation: &str,
    command: ConversationCommand,
) -> Result<Ack, CommandError> {
    writer
        .conversation(who, Some(id(conversation)), command, correlation())
        .await
}

#[tokio::test]
async fn two_tenants_open_and_use_the_same_id_independently() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Arc<dyn DataKeys> = Arc::new(InMemoryKeys::default());
    let log = embedded(dir.path());
    let writer = start(log.clone(), keys.clone()).await;
    let (a, b) = (customer_of("acme"), customer_of("globex"));

    let opened_b = send(&writer, b.clone(), "x", open()).await.unwrap();
    let opened_a = send(&writer, a.clone(), "x", open()).await.unwrap();
    assert_eq!((opened_a.seq, opened_a.unchanged), (Seq(1), false));
    assert_eq!((opened_b.seq, opened_b.unchanged), (Seq(1), false));
    let a_first = send(&writer, a.clone(), "x", post("m1", "from a")).await;
    let b_first = send(&writer, b.clone(), "x", post("m1", "from b")).await;
    assert_eq!(a_first.unwrap().seq, Seq(2));
    assert_eq!(
        b_first.unwrap().seq,
        Seq(2),
        "the same client id is b's own"
    );

    let chains = history(log.as_ref(), &id("x")).await;
    let seqs = |tenant: &str| {
        chains
            .iter()
            .filter(|e| e.envelope.tenant_id.as_str() == tenant)
            .map(|e| e.envelope.seq.0)
            .collect::<Vec<_>>()
    };
    assert_eq!((seqs("acme"), seqs("globex")), (vec![1, 2], vec![1, 2]));

    // Rebuilt from the log, each tenant still has its own conversation.
    log.shutdown();
    drop(writer);
    drop(log);
    let log = embedded(dir.path());
    let writer = start(log.clone(), keys).await;
    let retried = send(&writer, b.clone(), "x", post("m1", "from b")).await;
    assert_eq!(retried.unwrap().seq, Seq(2));
    let next = send(&writer, a, "x", post("m2", "again")).await.unwrap();
    assert_eq!((next.seq, next.unchanged), (Seq(3), false));
}

#[tokio::test]
async fn another_tenants_id_answers_like_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let writer = start(embedded(dir.path()), Arc::new(InMemoryKeys::default())).await;
    let (a, b) = (customer_of("acme"), customer_of("globex"));
    send(&writer, b.clone(), "theirs", open()).await.unwrap();
    send(&writer, b.clone(), "theirs", post("m1", "hi"))
        .await
        .unwrap();

    let commands = || {
        vec![
            post("m1", "hi"),
            ConversationCommand::MarkRead { up_to_seq: Seq(1) },
            ConversationCommand::Tag {
                tag: Label::new("vip").unwrap(),
            },
        ]
    };
    for (on_theirs, on_missing) in commands().into_iter().zip(commands()) {
        let theirs = send(&writer, a.clone(), "theirs", on_theirs).await;
        let missing = send(&writer, a.clone(), "never-used", on_missing).await;
        let (theirs, missing) = (theirs.unwrap_err(), missing.unwrap_err());
        assert_eq!(theirs.code(), missing.code());
        assert_eq!(theirs.to_string(), missing.to_string());
    }

    // And the id is not squatted: a can open it as its own.
    let opened = send(&writer, a.clone(), "theirs", open()).await.unwrap();
    assert_eq!((opened.seq, opened.unchanged), (Seq(1), false));
    let b_next = send(&writer, b, "theirs", post("m2", "still mine")).await;
    assert_eq!(b_next.unwrap().seq, Seq(3));
}
