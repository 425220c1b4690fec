//! Property tests: no byte string panics the decoders or the verifier, and none makes them
//! allocate beyond the input's size (lengths are checked against the input before use).

use proptest::prelude::*;
use switchboard_events::chain::{read_head, verify};
use switchboard_events::codec::{Frame, MAX_FRAME_LEN};
use switchboard_events::{AgentEvent, ConversationEvent, DecodeError, decode_any, fixtures};

fn decode_everything(bytes: &[u8]) {
    let _ = decode_any(bytes);
    let _ = ConversationEvent::decode(bytes);
    let _ = AgentEvent::decode(bytes);
    let _ = read_head(bytes);
    let _ = verify([bytes]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_everything(&bytes);
    }

    #[test]
    fn random_datums_behind_a_valid_header_never_panic(
        id in 1u32..=19,
        datum in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut frame = vec![0];
        frame.extend_from_slice(&id.to_be_bytes());
        frame.extend_from_slice(&datum);
        decode_everything(&frame);
    }

    #[test]
    fn mutated_real_frames_never_panic(
        which in 0usize..18,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let history = fixtures::conversation_history();
        let mut frame = history[which % history.len()].1.clone();
        for (at, byte) in edits {
            let i = at.index(frame.len());
            frame[i] = byte;
        }
        decode_everything(&frame);
        let cut = cut.index(frame.len());
        decode_everything(&frame[..cut]);
    }
}

#[test]
fn oversized_and_empty_frames_are_refused_up_front() {
    assert_eq!(decode_any(&[]), Err(DecodeError::EmptyFrame));
    let big = vec![0u8; MAX_FRAME_LEN + 1];
    assert_eq!(
        decode_any(&big),
        Err(DecodeError::FrameTooLarge {
            len: MAX_FRAME_LEN + 1,
            max: MAX_FRAME_LEN
        })
    );
    assert_eq!(decode_any(&[1, 0, 0, 0, 1]), Err(DecodeError::BadMagic(1)));
    assert_eq!(decode_any(&[0, 0, 0]), Err(DecodeError::Truncated));
    assert_eq!(
        decode_any(&[0, 0, 0, 0x30, 0x39]),
        Err(DecodeError::UnknownSchemaId(12345))
    );
    assert_eq!(
        Frame::parse(&[0, 0, 0, 0, 7]).unwrap(),
        Frame {
            schema_id: 7,
            datum: &[]
        }
    );
}

#[test]
fn a_frame_of_the_other_topic_is_refused_by_a_typed_decoder() {
    let (_, frame) = &fixtures::agent_history()[0];
    assert!(matches!(
        ConversationEvent::decode(frame),
        Err(DecodeError::WrongTopic { .. })
    ));
}

#[test]
fn trailing_bytes_are_refused() {
    let (_, frame) = &fixtures::conversation_history()[0];
    let mut longer = frame.clone();
    longer.push(0);
    assert_eq!(
        ConversationEvent::decode(&longer),
        Err(DecodeError::TrailingBytes { extra: 1 })
    );
}

#[test]
fn an_invalid_id_inside_a_frame_is_a_typed_error() {
    let (event, _) = &fixtures::conversation_history()[0];
    let frame = event.encode().unwrap();
    let needle = b"conv-1";
    let at = frame
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    let mut bad = frame.clone();
    bad[at + 4] = b' ';
    assert!(matches!(
        ConversationEvent::decode(&bad),
        Err(DecodeError::InvalidId(_))
    ));
}
