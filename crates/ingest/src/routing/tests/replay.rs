//! Decisions are events, so the log alone rebuilds the router: in any interleaving of its
//! streams, with events delivered twice, to the same state and the same next decisions.

use switchboard_events::agent::AgentStatus;
use switchboard_events::conversation::Priority;

use super::*;

/// A busy afternoon: agents come and go, conversations are assigned, moved, answered, queued
/// and resolved.
fn afternoon() -> Given {
    let mut g = given(RoutingConfig {
        default_capacity: 2,
        ..RoutingConfig::default()
    });
    g.online("a1", 2, &["billing"]).online("a2", 1, &[]);
    g.open("c1")
        .at(1)
        .open_with("c2", |o| o.required_skills = vec![label("billing")]);
    g.at(2).open_with("c3", |o| o.vip = true);
    g.route();
    g.at(3).open_with("c4", |o| o.priority = Priority::Urgent);
    g.route();
    g.at(10).reply("c1", "a2");
    g.at(20).online("a3", 3, &["billing"]);
    g.status("a1", AgentStatus::Offline);
    g.route();
    g.at(40).resolve("c3").open("c5");
    g.route();
    g.at(200);
    g.route();
    g.at(210).open("c6").open("c7").open("c8");
    g.route();
    g
}

fn rebuilt<'a>(events: impl IntoIterator<Item = &'a AnyEvent>) -> Router {
    let mut router = Router::new(fixtures::tenant(), RoutingConfig::default());
    for event in events {
        match event {
            AnyEvent::Conversation(e) => router.apply_conversation(e),
            AnyEvent::Agent(e) => router.apply_agent(e),
        }
    }
    router
}

/// The stream an event belongs to.
fn stream(event: &AnyEvent) -> String {
    match event {
        AnyEvent::Conversation(e) => format!("conversation/{}", e.envelope.conversation_id),
        AnyEvent::Agent(_) => "agents".to_owned(), // one partition per tenant
    }
}

#[test]
fn the_scenario_exercises_every_kind_of_decision() {
    let g = afternoon();
    let assignments = g
        .log
        .iter()
        .filter_map(|e| match e {
            AnyEvent::Conversation(e) => match &e.payload {
                ConversationPayload::AgentAssigned(a) => Some(a),
                _ => None,
            },
            AnyEvent::Agent(_) => None,
        })
        .collect::<Vec<_>>();
    assert!(assignments.iter().any(|a| a.previous_agent_id.is_some()));
    assert!(
        assignments
            .iter()
            .any(|a| a.policy == AssignmentPolicy::VipFirst)
    );
    assert!(
        assignments
            .iter()
            .any(|a| a.policy == AssignmentPolicy::SkillsMatch)
    );
    assert!(g.router.waiting_count() > 0, "some still wait");
}

#[test]
fn replaying_the_log_gives_the_same_state() {
    let g = afternoon();
    let replayed = rebuilt(&g.log);
    assert_eq!(replayed.state(), g.router.state());
}

#[test]
fn the_interleaving_of_streams_does_not_matter() {
    let g = afternoon();
    // Partitions read one after the other: every stream in turn, the last stream first.
    let mut streams: Vec<String> = g.log.iter().map(stream).collect();
    streams.dedup();
    streams.sort();
    streams.dedup();
    streams.reverse();
    let by_stream: Vec<&AnyEvent> = streams
        .iter()
        .flat_map(|s| g.log.iter().filter(move |e| stream(e) == *s))
        .collect();
    assert_eq!(rebuilt(by_stream).state(), g.router.state());
}

#[test]
fn events_delivered_twice_count_once() {
    let g = afternoon();
    let twice = g.log.iter().flat_map(|e| [e, e]);
    assert_eq!(rebuilt(twice).state(), g.router.state());
    let again = g.log.iter().chain(g.log.iter());
    assert_eq!(rebuilt(again).state(), g.router.state());
}

#[test]
fn a_rebuilt_router_decides_what_the_original_would() {
    let mut g = afternoon();
    let mut replayed = rebuilt(&g.log);
    let later = secs(500);
    g.at(500).status("a2", AgentStatus::Offline);
    if let Some(AnyEvent::Agent(e)) = g.log.last() {
        replayed.apply_agent(e);
    }
    let original = g.router.decide(later);
    assert!(!original.is_empty(), "a2 going offline moves something");
    assert_eq!(replayed.decide(later), original);
}

proptest::proptest! {
    /// Partitions read in any interleaving (each stream in its own order) rebuild one state.
    #[test]
    fn any_interleaving_of_streams_rebuilds_the_same_state(
        picks in proptest::collection::vec(0usize..64, 0..256)
    ) {
        let g = afternoon();
        let mut streams: BTreeMap<String, std::collections::VecDeque<&AnyEvent>> = BTreeMap::new();
        for event in &g.log {
            streams.entry(stream(event)).or_default().push_back(event);
        }
        let mut queues: Vec<_> = streams.into_values().collect();
        let mut merged = Vec::with_capacity(g.log.len());
        let mut picks = picks.into_iter();
        while !queues.is_empty() {
            let index = picks.next().unwrap_or(0) % queues.len();
            merged.extend(queues[index].pop_front());
            if queues[index].is_empty() {
                queues.remove(index);
            }
        }
        proptest::prop_assert_eq!(merged.len(), g.log.len());
        let router = rebuilt(merged);
        proptest::prop_assert_eq!(router.state(), g.router.state());
    }
}
