//! Posting, editing, redacting and reading messages.

use super::*;

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
