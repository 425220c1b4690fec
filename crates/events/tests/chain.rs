//! Tamper tests: the verifier names the first seq that was altered, dropped, duplicated or
//! reordered, and how.

use switchboard_events::chain::{Problem, Verdict, Verifier, frame_hash, read_head, verify};
use switchboard_events::fixtures;
use switchboard_events::personal::{MemoryKeys, Revealed};
use switchboard_events::{ChainHash, ConversationEvent, ConversationPayload, Seq};

fn frames() -> Vec<Vec<u8>> {
    fixtures::conversation_history()
        .into_iter()
        .map(|(_, frame)| frame)
        .collect()
}

fn check(frames: &[Vec<u8>]) -> Verdict {
    verify(frames.iter().map(Vec::as_slice))
}

fn broken(seq: u64, problem: Problem) -> Verdict {
    Verdict::Broken {
        seq: Seq(seq),
        problem,
    }
}

#[test]
fn an_untouched_history_is_intact_and_reports_its_head() {
    let frames = frames();
    let last = read_head(frames.last().unwrap()).unwrap();
    assert_eq!(
        check(&frames),
        Verdict::Intact {
            events: frames.len() as u64,
            head: Some((last.seq, last.hash))
        }
    );
    assert_eq!(
        check(&[]),
        Verdict::Intact {
            events: 0,
            head: None
        }
    );
}

#[test]
fn every_frame_carries_the_hash_of_its_own_bytes() {
    for frame in frames() {
        assert_eq!(frame_hash(&frame).unwrap(), read_head(&frame).unwrap().hash);
    }
}

#[test]
fn a_flipped_byte_anywhere_after_the_hash_is_named() {
    let clean = frames();
    for (i, offset) in [(3, 60), (3, clean[3].len() - 1), (0, 5 + 32 + 3), (10, 100)] {
        let mut frames = clean.clone();
        frames[i][offset] ^= 0x01;
        let verdict = check(&frames);
        let seq = i as u64 + 1;
        assert!(
            verdict == broken(seq, Problem::Altered)
                || verdict == broken(seq, Problem::BrokenLink)
                || matches!(verdict, Verdict::Broken { seq: s, problem: Problem::Undecodable { .. } } if s == Seq(seq)),
            "flip at frame {i} offset {offset}: {verdict:?}"
        );
    }
}

#[test]
fn an_altered_message_body_is_named() {
    let mut frames = frames();
    let len = frames[3].len();
    frames[3][len - 3] ^= 0x80; // inside the sealed body's ciphertext
    assert_eq!(check(&frames), broken(4, Problem::Altered));
}

#[test]
fn a_rewritten_event_with_a_recomputed_hash_breaks_the_next_link() {
    let mut history = fixtures::conversation_history();
    let (event, _) = &mut history[4];
    if let ConversationPayload::MessagePosted(message) = &mut event.payload {
        message.private_note = false; // expose a private note
    }
    let prev = event.envelope.prev_hash;
    let forged = event.encode_chained(prev).unwrap();
    let mut frames: Vec<_> = history.into_iter().map(|(_, f)| f).collect();
    frames[4] = forged;
    assert_eq!(check(&frames), broken(6, Problem::BrokenLink));
}

#[test]
fn a_dropped_event_is_named() {
    let mut frames = frames();
    frames.remove(6);
    assert_eq!(check(&frames), broken(7, Problem::Dropped));
}

#[test]
fn a_duplicated_event_is_named() {
    let mut frames = frames();
    frames.insert(5, frames[4].clone());
    assert_eq!(check(&frames), broken(5, Problem::Duplicated));
}

#[test]
fn reordered_events_are_named() {
    let mut frames = frames();
    frames.swap(2, 3);
    assert_eq!(check(&frames), broken(3, Problem::Reordered));
}

#[test]
fn a_truncated_tail_is_caught_by_the_recorded_head() {
    let frames = frames();
    let head = read_head(frames.last().unwrap()).unwrap();
    let mut verifier = Verifier::new().expect_head(head.seq, head.hash);
    for frame in &frames[..frames.len() - 2] {
        verifier.push(frame);
    }
    assert_eq!(
        verifier.finish(),
        broken(frames.len() as u64 - 1, Problem::Dropped)
    );
}

#[test]
fn an_event_of_another_conversation_is_named() {
    let mut frames = frames();
    let mut stranger = fixtures::conversation_history().remove(2).0;
    stranger.envelope.conversation_id = "conv-2".parse().unwrap();
    frames[2] = stranger
        .encode_chained(stranger.envelope.prev_hash)
        .unwrap();
    assert!(matches!(
        check(&frames),
        Verdict::Broken {
            seq: Seq(3),
            problem: Problem::ForeignStream { .. }
        }
    ));
}

#[test]
fn garbage_in_place_of_an_event_is_named_not_a_panic() {
    let mut frames = frames();
    frames[1] = b"\x00\x00\x00\x00\x02garbage".to_vec();
    assert!(matches!(
        check(&frames),
        Verdict::Broken {
            seq: Seq(2),
            problem: Problem::Undecodable { .. }
        }
    ));
}

#[test]
fn a_range_verifies_from_a_known_point() {
    let frames = frames();
    let anchor = read_head(&frames[9]).unwrap();
    let mut verifier = Verifier::resume(anchor.seq, anchor.hash);
    for frame in &frames[10..] {
        verifier.push(frame);
    }
    assert!(
        matches!(verifier.finish(), Verdict::Intact { events, .. } if events == frames.len() as u64 - 10)
    );
    let mut wrong = Verifier::resume(anchor.seq, ChainHash([9; 32]));
    wrong.push(&frames[10]);
    assert_eq!(wrong.finish(), broken(11, Problem::BrokenLink));
}

#[test]
fn an_erased_customer_history_still_verifies_but_reads_as_erased() {
    let (tenant, customer) = (fixtures::tenant(), fixtures::customer());
    let keys = MemoryKeys::default();
    keys.insert(&tenant, &customer, fixtures::data_key());
    let frames = frames();
    let ConversationPayload::MessagePosted(message) =
        ConversationEvent::decode(&frames[3]).unwrap().payload
    else {
        panic!("sample 4 is a message")
    };
    let Revealed::Text(text) = message.body.reveal(&tenant, &keys).unwrap() else {
        panic!("the key is there")
    };
    assert!(text.starts_with("hello"));

    keys.erase(&tenant, &customer);
    assert_eq!(
        message.body.reveal(&tenant, &keys).unwrap(),
        Revealed::Erased
    );
    assert!(
        matches!(check(&frames), Verdict::Intact { .. }),
        "erasure does not break the chain"
    );
}
