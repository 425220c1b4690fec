//! The router's memory is bounded: resolved conversations beyond `max_resolved` are
//! forgotten, and a forgotten one that is reopened still gets an agent.

use super::*;

#[test]
fn resolved_conversations_beyond_the_bound_are_forgotten_and_a_reopening_is_routed() {
    let mut g = given(RoutingConfig {
        max_resolved: 2,
        ..RoutingConfig::default()
    });
    g.online("a1", 5, &[]);
    for (i, id) in ["c1", "c2", "c3", "c4"].into_iter().enumerate() {
        g.at(i as i64).open(id);
    }
    g.route();
    for (i, id) in ["c1", "c2", "c3", "c4"].into_iter().enumerate() {
        g.at(10 + i as i64).resolve(id);
    }
    let known: Vec<_> = g.router.state().conversations.keys().cloned().collect();
    assert_eq!(known, [conv("c3"), conv("c4")], "the two resolved last");

    g.at(20).event(
        "c1",
        Actor::new(ActorKind::Customer, "cust-1").unwrap(),
        ConversationReopened { reason: None }.into(),
    );
    assert_eq!(g.route(), ["assign c1 to a1 (RoundRobin)"]);
    let customer = switchboard_events::id::CustomerId::new("cust-1").unwrap();
    assert_eq!(
        g.router.state().customers[&customer].open,
        1,
        "reopened by its customer, it counts against them again"
    );
    g.at(30).event(
        "c4",
        Actor::new(ActorKind::Customer, "cust-1").unwrap(),
        ConversationReopened { reason: None }.into(),
    );
    assert_eq!(
        g.route(),
        Vec::<String>::new(),
        "a remembered one goes back to its agent"
    );
}
