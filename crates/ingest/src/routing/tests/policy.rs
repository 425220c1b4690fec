//! Who gets a conversation: round robin, least busy, capacity, skills, VIP first, priority,
//! longest waiting.

use switchboard_events::agent::AgentStatus;
use switchboard_events::conversation::Priority;

use super::*;

fn least_busy() -> RoutingConfig {
    RoutingConfig {
        distribution: Distribution::LeastBusy,
        ..RoutingConfig::default()
    }
}

#[test]
fn round_robin_takes_turns_among_online_agents() {
    let mut g = given(RoutingConfig::default());
    g.online("a1", 5, &[])
        .online("a2", 5, &[])
        .online("a3", 5, &[]);
    let mut assigned = Vec::new();
    for n in 1..=5 {
        g.at(n).open(&format!("c{n}"));
        assigned.extend(g.route());
    }
    assert_eq!(
        assigned,
        [
            "assign c1 to a1 (RoundRobin)",
            "assign c2 to a2 (RoundRobin)",
            "assign c3 to a3 (RoundRobin)",
            "assign c4 to a1 (RoundRobin)",
            "assign c5 to a2 (RoundRobin)",
        ]
    );
}

#[test]
fn round_robin_passes_over_away_and_offline_agents() {
    let mut g = given(RoutingConfig::default());
    g.online("a1", 5, &[])
        .online("a2", 5, &[])
        .online("a3", 5, &[]);
    g.status("a1", AgentStatus::Away)
        .status("a3", AgentStatus::Offline);
    g.open("c1").open("c2");
    assert_eq!(
        g.route(),
        [
            "assign c1 to a2 (RoundRobin)",
            "assign c2 to a2 (RoundRobin)"
        ]
    );
}

#[test]
fn several_waiting_conversations_are_spread_in_one_round() {
    let mut g = given(RoutingConfig::default());
    g.open("c1").at(1).open("c2").at(2).open("c3");
    assert_eq!(
        g.route(),
        [
            "queue c1: no agent available",
            "queue c2: no agent available",
            "queue c3: no agent available"
        ]
    );
    g.at(10).online("a1", 5, &[]).online("a2", 5, &[]);
    assert_eq!(
        g.route(),
        [
            "assign c1 to a1 (RoundRobin)",
            "assign c2 to a2 (RoundRobin)",
            "assign c3 to a1 (RoundRobin)"
        ],
        "assignments in flight count before their events are back"
    );
}

#[test]
fn least_busy_gives_to_the_agent_with_fewest_open_conversations() {
    let mut g = given(least_busy());
    g.online("a1", 5, &[]);
    g.open("c1").open("c2");
    assert_eq!(g.route().len(), 2, "a1 takes both");
    g.at(5).online("a2", 5, &[]);
    g.at(6).open("c3").at(7).open("c4").at(8).open("c5");
    assert_eq!(
        g.route(),
        [
            "assign c3 to a2 (LeastBusy)",
            "assign c4 to a2 (LeastBusy)",
            "assign c5 to a1 (LeastBusy)"
        ],
        "a2 catches up, then the one given work least recently"
    );
    g.resolve("c1").resolve("c2").at(9).open("c6");
    assert_eq!(
        g.route(),
        ["assign c6 to a1 (LeastBusy)"],
        "resolved conversations free their agent"
    );
}

#[test]
fn a_full_agent_gets_nothing_until_a_conversation_ends() {
    let mut g = given(RoutingConfig::default());
    g.online("a1", 1, &[]);
    g.open("c1");
    assert_eq!(g.route(), ["assign c1 to a1 (RoundRobin)"]);
    g.at(1).open("c2");
    assert_eq!(g.route(), ["queue c2: no agent available"]);
    assert_eq!(g.route(), Vec::<String>::new(), "queued once");
    g.at(2).resolve("c1");
    assert_eq!(g.route(), ["assign c2 to a1 (RoundRobin)"]);
}

#[test]
fn an_agent_without_a_capacity_of_their_own_gets_the_default() {
    let mut g = given(RoutingConfig {
        default_capacity: 1,
        ..RoutingConfig::default()
    });
    g.status("a1", AgentStatus::Online);
    g.open("c1").open("c2");
    assert_eq!(
        g.route(),
        [
            "assign c1 to a1 (RoundRobin)",
            "queue c2: no agent available"
        ]
    );
}

#[test]
fn only_agents_with_every_required_skill_qualify() {
    let mut g = given(RoutingConfig::default());
    g.online("a1", 5, &["billing"])
        .online("a2", 5, &["billing", "german"])
        .online("a3", 5, &["german"]);
    g.open_with("c1", |o| {
        o.required_skills = vec![label("billing"), label("german")]
    });
    g.open_with("c2", |o| o.required_skills = vec![label("french")]);
    assert_eq!(
        g.route(),
        [
            "assign c1 to a2 (SkillsMatch)",
            "queue c2: no agent available"
        ]
    );
}

#[test]
fn vip_conversations_are_served_first() {
    let mut g = given(RoutingConfig::default());
    g.open("c1");
    g.at(1).open_with("c2", |o| o.priority = Priority::Urgent);
    g.at(2).open_with("c3", |o| o.vip = true);
    g.route();
    g.at(3).online("a1", 1, &[]);
    assert_eq!(g.route(), ["assign c3 to a1 (VipFirst)"]);
}

#[test]
fn then_priority_then_the_longest_waiting() {
    let mut g = given(RoutingConfig::default());
    g.open("c1");
    g.at(1).open_with("c2", |o| o.priority = Priority::Low);
    g.at(2).open_with("c3", |o| o.priority = Priority::High);
    g.at(3).open("c4");
    g.route();
    g.at(4).online("a1", 3, &[]);
    assert_eq!(
        g.route(),
        [
            "assign c3 to a1 (RoundRobin)",
            "assign c1 to a1 (RoundRobin)",
            "assign c4 to a1 (RoundRobin)"
        ]
    );
}

#[test]
fn decisions_in_flight_are_not_taken_twice() {
    let mut g = given(RoutingConfig::default());
    g.online("a1", 1, &[]).online("a2", 1, &[]);
    g.open("c1").open("c2");
    assert_eq!(
        g.decide(),
        [
            "assign c1 to a1 (RoundRobin)",
            "assign c2 to a2 (RoundRobin)"
        ]
    );
    assert_eq!(g.decide(), Vec::<String>::new(), "both are in flight");
    g.router.abandon(&conv("c2"));
    assert_eq!(
        g.decide(),
        ["assign c2 to a2 (RoundRobin)"],
        "a failed decision is decided again"
    );
}

#[test]
fn a_refused_decision_waits_for_the_conversation_to_change() {
    let mut g = given(RoutingConfig::default());
    g.online("a1", 5, &[]).open("c1");
    assert_eq!(g.decide(), ["assign c1 to a1 (RoundRobin)"]);
    g.router.refuse(&conv("c1"));
    assert_eq!(g.decide(), Vec::<String>::new(), "not repeated");
    g.at(1).event(
        "c1",
        Actor::new(ActorKind::Customer, "cust-1").unwrap(),
        ConversationTagged { tag: label("x") }.into(),
    );
    assert_eq!(g.decide(), ["assign c1 to a1 (RoundRobin)"]);
}
