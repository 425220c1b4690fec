//! What happens around assignment: agents going offline or not answering, business hours, load
//! shedding, queue positions and wait estimates.

use std::time::Duration;

use switchboard_events::agent::AgentStatus;
use switchboard_events::conversation::Priority;

use super::*;

#[test]
fn conversations_of_an_agent_gone_offline_move_to_another() {
    let mut g = given(RoutingConfig::default());
    g.online("a1", 5, &[]).open("c1").open("c2");
    g.route();
    g.at(1).online("a2", 1, &[]);
    g.at(2).status("a1", AgentStatus::Offline);
    assert_eq!(
        g.route(),
        [
            "assign c1 to a2 from a1 (RoundRobin)",
            "queue c2: the agent went offline"
        ],
        "a2 has room for one; the other waits in the queue"
    );
    g.at(3).resolve("c1");
    assert_eq!(g.route(), ["assign c2 to a2 (RoundRobin)"]);
}

#[test]
fn an_away_agent_keeps_their_conversations_but_gets_no_new_ones() {
    let mut g = given(RoutingConfig::default());
    g.online("a1", 5, &[]).open("c1");
    g.route();
    g.at(1).status("a1", AgentStatus::Away).reply("c1", "a1");
    g.at(2).open("c2");
    assert_eq!(g.route(), ["queue c2: no agent available"]);
}

#[test]
fn an_agent_who_does_not_answer_in_time_loses_the_conversation() {
    let mut g = given(RoutingConfig::default()); // 2 minutes to answer
    g.online("a1", 5, &[]).online("a2", 5, &[]);
    g.open("c1").open("c2");
    assert_eq!(
        g.route(),
        [
            "assign c1 to a1 (RoundRobin)",
            "assign c2 to a2 (RoundRobin)"
        ]
    );
    g.at(30).reply("c2", "a2");
    assert_eq!(g.router.next_deadline(g.now), Some(secs(120)));
    g.at(119);
    assert_eq!(g.route(), Vec::<String>::new(), "not yet");
    g.at(120);
    assert_eq!(
        g.route(),
        ["assign c1 to a2 from a1 (RoundRobin)"],
        "c1 moves; c2 was answered"
    );
    assert_eq!(
        g.router.next_deadline(g.now),
        Some(secs(240)),
        "a2 has two minutes from now"
    );
}

#[test]
fn a_private_note_is_not_an_answer() {
    let mut g = given(RoutingConfig::default());
    g.online("a1", 5, &[]).online("a2", 5, &[]).open("c1");
    g.route();
    let note = MessagePosted {
        message_id: MessageId::new("note").unwrap(),
        client_msg_id: ClientMsgId::new("note").unwrap(),
        body: fixtures::sealed(1, "looking"),
        attachments: vec![],
        private_note: true,
    };
    g.at(10).event(
        "c1",
        Actor::new(ActorKind::Agent, "a1").unwrap(),
        note.into(),
    );
    g.at(120);
    assert_eq!(g.route(), ["assign c1 to a2 from a1 (RoundRobin)"]);
}

#[test]
fn without_anyone_else_a_slow_agent_keeps_the_conversation() {
    let mut g = given(RoutingConfig::default());
    g.online("a1", 5, &[]).open("c1");
    g.route();
    g.at(300);
    assert_eq!(g.route(), Vec::<String>::new());
    g.at(301).online("a2", 5, &[]);
    assert_eq!(g.route(), ["assign c1 to a2 from a1 (RoundRobin)"]);
}

fn nine_to_five() -> RoutingConfig {
    RoutingConfig {
        business_hours: Some(BusinessHours::weekdays(9 * 60, 17 * 60, 0)),
        ..RoutingConfig::default()
    }
}

#[test]
fn outside_business_hours_the_customer_is_told_once_and_waits() {
    let mut g = given(nine_to_five());
    g.online("a1", 5, &[]);
    let evening = 8 * 3600; // 18:00 on Monday
    g.at(evening).open("c1");
    assert_eq!(
        g.route(),
        [
            "queue c1: outside business hours",
            "offline message in c1 as router-offline-c1-0"
        ]
    );
    assert_eq!(g.route(), Vec::<String>::new(), "told once");
    let tuesday_nine = 23 * 3600;
    assert_eq!(g.router.next_deadline(g.now), Some(secs(tuesday_nine)));
    g.at(tuesday_nine);
    assert_eq!(g.route(), ["assign c1 to a1 (RoundRobin)"]);
}

#[test]
fn a_reopened_conversation_outside_hours_gets_a_new_offline_message() {
    let mut g = given(nine_to_five());
    g.open("c1");
    g.route();
    g.at(3600).online("a1", 5, &[]);
    g.route();
    g.resolve("c1");
    g.at(8 * 3600).event(
        "c1",
        Actor::new(ActorKind::Customer, "cust-1").unwrap(),
        ConversationReopened { reason: None }.into(),
    );
    assert_eq!(
        g.route(),
        Vec::<String>::new(),
        "reopened to its agent, who is still online: nothing to do"
    );
    g.status("a1", AgentStatus::Offline);
    assert_eq!(
        g.route(),
        ["queue c1: the agent went offline"],
        "nothing is assigned outside hours"
    );
    assert_eq!(g.route(), ["offline message in c1 as router-offline-c1-1"]);
}

#[test]
fn new_conversations_are_refused_while_the_queue_is_full() {
    let mut g = given(RoutingConfig {
        queue_limit: 2,
        ..RoutingConfig::default()
    });
    g.open("c1");
    assert_eq!(g.router.admit(None), Ok(()));
    g.open("c2");
    let refused = g.router.admit(None).unwrap_err();
    assert_eq!(refused.code(), "overloaded");
    assert_eq!(
        refused.to_string(),
        "we are very busy, please try again later"
    );
    g.online("a1", 1, &[]).route();
    assert_eq!(g.router.admit(None), Ok(()), "one left the queue");
}

#[test]
fn a_customer_is_held_to_their_caps_and_their_backlog_counts_against_them_alone() {
    let mut g = given(RoutingConfig {
        queue_limit: 3,
        customer_caps: CustomerCaps {
            max_open: 3,
            max_waiting: 2,
        },
        ..RoutingConfig::default()
    });
    let flood = fixtures::customer();
    let (other, third) = (customer("cust-2"), customer("cust-3"));
    g.open("c1").open("c2");
    assert_eq!(
        g.router.admit(Some(&flood)).unwrap_err().to_string(),
        "the customer already has 2 waiting conversations, the limit is 2"
    );
    assert_eq!(g.router.admit(Some(&other)), Ok(()));
    g.open("c3"); // opened for the flood by staff, who are not capped
    assert_eq!(
        g.router.admit(Some(&other)),
        Ok(()),
        "the flood's three waiting count two of the queue's three"
    );
    g.open_for("c4", &other);
    let full = g.router.admit(Some(&third)).unwrap_err();
    assert_eq!(
        full.code(),
        "overloaded",
        "two of the flood's and one of cust-2's"
    );
    assert_eq!(full.status().http(), 503);

    g.online("a1", 5, &[]).route();
    assert_eq!(
        g.router.state().customers[&flood],
        CustomerLoad {
            open: 3,
            waiting: 0
        }
    );
    let refused = g.router.admit(Some(&flood)).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "the customer already has 3 open conversations, the limit is 3"
    );
    assert_eq!(
        (refused.code(), refused.status().http()),
        ("too_many_open_conversations", 429)
    );
    assert_eq!(g.router.admit(Some(&third)), Ok(()), "nobody waits now");
    g.resolve("c1");
    assert_eq!(
        g.router.admit(Some(&flood)),
        Ok(()),
        "a resolved one frees a place"
    );
    g.resolve("c2").resolve("c3");
    assert!(!g.router.state().customers.contains_key(&flood));
}

#[test]
fn waiting_customers_learn_their_position_and_an_estimate() {
    let mut g = given(RoutingConfig::default());
    g.open("c1");
    g.at(1).open_with("c2", |o| o.priority = Priority::High);
    g.at(2).open_with("c3", |o| o.vip = true);
    let positions = |g: &Given| -> Vec<(String, usize, Option<u64>)> {
        g.router
            .queue(g.now)
            .into_iter()
            .map(|e| {
                assert_eq!(e.queue_length, 3);
                let wait = e.estimated_wait.map(|d| d.as_secs());
                (e.conversation.to_string(), e.position, wait)
            })
            .collect()
    };
    assert_eq!(
        positions(&g),
        [
            ("c3".into(), 1, None),
            ("c2".into(), 2, None),
            ("c1".into(), 3, None)
        ],
        "nobody online: no estimate"
    );
    // Two agents, no history: 5 minutes per conversation shared by two is 150 s apart.
    g.status("a1", AgentStatus::Online)
        .status("a2", AgentStatus::Online);
    assert_eq!(
        positions(&g),
        [
            ("c3".into(), 1, Some(150)),
            ("c2".into(), 2, Some(300)),
            ("c1".into(), 3, Some(450))
        ]
    );
}

#[test]
fn the_estimate_follows_recent_departures() {
    let mut g = given(RoutingConfig {
        default_capacity: 1,
        ..RoutingConfig::default()
    });
    for (n, at) in [(1, 0), (2, 40), (3, 80)] {
        g.at(at).status(&format!("a{n}"), AgentStatus::Online);
        g.open(&format!("c{n}"));
        assert_eq!(g.route().len(), 1);
    }
    g.at(90).open("w1").at(91).open("w2");
    g.route();
    let waits: Vec<_> = g
        .router
        .queue(g.now)
        .iter()
        .map(|e| (e.position, e.estimated_wait))
        .collect();
    assert_eq!(
        waits,
        [
            (1, Some(Duration::from_secs(40))),
            (2, Some(Duration::from_secs(80)))
        ]
    );
    g.at(80 + 1800 + 1);
    let stale: Vec<_> = g
        .router
        .queue(g.now)
        .iter()
        .map(|e| e.estimated_wait)
        .collect();
    assert_eq!(
        stale,
        [
            Some(Duration::from_secs(100)),
            Some(Duration::from_secs(200))
        ],
        "departures older than the window fall back to the handle time per online agent"
    );
}

#[test]
fn outside_hours_the_estimate_starts_at_opening() {
    let mut g = given(nine_to_five());
    g.at(8 * 3600).open("c1"); // Monday 18:00; opens Tuesday 09:00, 15 h later
    g.route();
    let entry = &g.router.queue(g.now)[0];
    assert_eq!(entry.position, 1);
    assert_eq!(
        entry.estimated_wait,
        Some(Duration::from_secs(15 * 3600 + 300)),
        "opening, then one handle time"
    );
}
