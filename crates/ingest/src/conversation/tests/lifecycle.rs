//! Assignment, transfers, queues, tags, snoozes, resolution, ratings, erasure, and any sequence
//! of commands.

use super::*;

#[test]
fn assignment_rules() {
    let mut s = Scenario::opened();
    assert_eq!(
        s.refused(
            &customer(),
            C::Assign {
                agent_id: AgentId::new("agent-7").unwrap(),
                policy: AssignmentPolicy::Manual
            }
        ),
        "forbidden"
    );
    // An agent takes an unassigned conversation.
    s.ok(
        &agent(),
        C::Assign {
            agent_id: AgentId::new("agent-7").unwrap(),
            policy: AssignmentPolicy::Manual,
        },
    );
    // Another agent cannot take it, nor assign it away.
    assert_eq!(
        s.refused(
            &other_agent(),
            C::Assign {
                agent_id: AgentId::new("agent-8").unwrap(),
                policy: AssignmentPolicy::Manual
            }
        ),
        "forbidden"
    );
    s.unchanged(
        &supervisor(),
        C::Assign {
            agent_id: AgentId::new("agent-7").unwrap(),
            policy: AssignmentPolicy::Manual,
        },
    );
    let events = s.ok(
        &supervisor(),
        C::Assign {
            agent_id: AgentId::new("agent-8").unwrap(),
            policy: AssignmentPolicy::Manual,
        },
    );
    let [ConversationPayload::AgentAssigned(a)] = events.as_slice() else {
        panic!()
    };
    assert_eq!(a.previous_agent_id, Some(AgentId::new("agent-7").unwrap()));
    s.ok(&supervisor(), C::Resolve);
    assert_eq!(
        s.refused(
            &service(),
            C::Assign {
                agent_id: AgentId::new("agent-7").unwrap(),
                policy: AssignmentPolicy::LeastBusy
            }
        ),
        "conversation_resolved"
    );
}

#[test]
fn transfers_to_a_team_queue_and_to_an_agent_assign() {
    let mut s = Scenario::assigned();
    let team = TeamId::new("billing").unwrap();
    assert_eq!(
        s.refused(
            &other_agent(),
            C::Transfer {
                to: TransferTarget::Team {
                    team_id: team.clone()
                },
                reason: None
            }
        ),
        "forbidden"
    );
    assert_eq!(
        s.refused(
            &agent(),
            C::Transfer {
                to: TransferTarget::Agent {
                    agent_id: AgentId::new("agent-7").unwrap()
                },
                reason: None
            }
        ),
        "failed_precondition"
    );
    s.ok(
        &agent(),
        C::Transfer {
            to: TransferTarget::Team {
                team_id: team.clone(),
            },
            reason: Some("billing question".into()),
        },
    );
    assert_eq!(
        (
            s.state().status,
            s.state().assignee.clone(),
            s.state().team.clone()
        ),
        (Status::Queued, None, Some(team))
    );
    s.ok(
        &supervisor(),
        C::Transfer {
            to: TransferTarget::Agent {
                agent_id: AgentId::new("agent-8").unwrap(),
            },
            reason: None,
        },
    );
    assert_eq!(s.state().assignee, Some(AgentId::new("agent-8").unwrap()));
}

#[test]
fn queueing_is_for_the_router_and_supervisors() {
    let mut s = Scenario::opened();
    assert_eq!(
        s.refused(
            &agent(),
            C::Queue {
                team_id: None,
                reason: None
            }
        ),
        "forbidden"
    );
    s.ok(
        &service(),
        C::Queue {
            team_id: None,
            reason: Some("no agent online".into()),
        },
    );
    s.unchanged(
        &service(),
        C::Queue {
            team_id: None,
            reason: None,
        },
    );
}

#[test]
fn tags_and_priority_change_only_when_they_differ() {
    let mut s = Scenario::assigned();
    s.ok(
        &agent(),
        C::Tag {
            tag: label("refund"),
        },
    );
    s.unchanged(
        &agent(),
        C::Tag {
            tag: label("refund"),
        },
    );
    assert_eq!(
        s.refused(&other_agent(), C::Tag { tag: label("x") }),
        "forbidden"
    );
    s.ok(
        &agent(),
        C::Untag {
            tag: label("refund"),
        },
    );
    s.unchanged(
        &agent(),
        C::Untag {
            tag: label("refund"),
        },
    );
    let events = s.ok(
        &agent(),
        C::SetPriority {
            priority: Priority::Urgent,
        },
    );
    assert_eq!(
        events,
        vec![
            PriorityChanged {
                priority: Priority::Urgent,
                previous: Priority::Normal
            }
            .into()
        ]
    );
    s.unchanged(
        &agent(),
        C::SetPriority {
            priority: Priority::Urgent,
        },
    );
}

#[test]
fn snoozes_end_in_the_future_and_a_customer_message_wakes_them() {
    let mut s = Scenario::assigned();
    assert_eq!(
        s.refused(&agent(), C::Snooze { until: NOW }),
        "invalid_argument"
    );
    assert_eq!(
        s.refused(
            &agent(),
            C::Snooze {
                until: Timestamp(NOW.0 + 400 * 86_400_000_000)
            }
        ),
        "invalid_argument"
    );
    s.ok(
        &agent(),
        C::Snooze {
            until: Timestamp(NOW.0 + 3_600_000_000),
        },
    );
    assert_eq!(s.state().status, Status::Snoozed);
    s.ok(&customer(), post("c1", "hello?"));
    assert_eq!(s.state().status, Status::Assigned);
}

#[test]
fn resolving_and_reopening() {
    let mut s = Scenario::assigned();
    assert_eq!(s.refused(&other_agent(), C::Resolve), "forbidden");
    s.ok(&customer(), C::Resolve);
    s.unchanged(&agent(), C::Resolve);
    s.ok(
        &agent(),
        C::Reopen {
            reason: Some("customer called back".into()),
        },
    );
    s.unchanged(&agent(), C::Reopen { reason: None });
    assert_eq!(s.state().status, Status::Assigned);
}

#[test]
fn ratings_come_from_the_customer_after_resolution() {
    let mut s = Scenario::assigned();
    assert_eq!(
        s.refused(
            &customer(),
            C::Rate {
                score: 5,
                comment: None
            }
        ),
        "failed_precondition"
    );
    s.ok(&agent(), C::Resolve);
    assert_eq!(
        s.refused(
            &agent(),
            C::Rate {
                score: 5,
                comment: None
            }
        ),
        "forbidden"
    );
    assert_eq!(
        s.refused(
            &customer(),
            C::Rate {
                score: 6,
                comment: None
            }
        ),
        "invalid_argument"
    );
    let events = s.ok(
        &customer(),
        C::Rate {
            score: 4,
            comment: Some("quick".into()),
        },
    );
    let [ConversationPayload::Rated(r)] = events.as_slice() else {
        panic!()
    };
    assert_eq!(
        s.reveal(r.comment.as_ref().unwrap()),
        Revealed::Text("quick".into())
    );
    s.ok(
        &customer(),
        C::Rate {
            score: 5,
            comment: None,
        },
    );
    assert_eq!(s.state().rating, Some(5));
}

#[test]
fn after_erasure_no_personal_data_is_taken_and_old_retries_still_answer() {
    let mut s = Scenario::assigned();
    s.ok(&customer(), post("c1", "hello"));
    assert_eq!(
        s.refused(&agent(), C::EraseCustomer { reason: None }),
        "forbidden"
    );
    s.ok(
        &supervisor(),
        C::EraseCustomer {
            reason: Some("gdpr".into()),
        },
    );
    s.keys.erase(&tenant(), &CustomerId::new("cust-1").unwrap());
    s.unchanged(&supervisor(), C::EraseCustomer { reason: None });
    assert_eq!(
        s.refused(&customer(), post("c2", "hi again")),
        "customer_erased"
    );
    assert_eq!(
        s.unchanged(&customer(), post("c1", "hello")),
        Seq(3),
        "a late retry is not a new message"
    );
    let erased = s
        .keys
        .data_key(&tenant(), &CustomerId::new("cust-1").unwrap())
        .unwrap();
    assert!(erased.is_none());
}

fn any_command() -> impl Strategy<Value = (u8, C)> {
    let who = 0u8..7;
    let cmd = prop_oneof![
        (0u8..4, "[a-z ]{0,12}").prop_map(|(c, body)| post(&format!("c{c}"), &body)),
        (0u8..4, "[a-z]{1,8}").prop_map(|(c, body)| note(&format!("n{c}"), &body)),
        (1u64..12).prop_map(|s| C::MarkRead { up_to_seq: Seq(s) }),
        (7u8..9).prop_map(|a| C::Assign {
            agent_id: AgentId::new(format!("agent-{a}")).unwrap(),
            policy: AssignmentPolicy::Manual
        }),
        Just(C::Transfer {
            to: TransferTarget::Team {
                team_id: TeamId::new("billing").unwrap()
            },
            reason: None
        }),
        Just(C::Tag { tag: label("vip") }),
        Just(C::Untag { tag: label("vip") }),
        Just(C::SetPriority {
            priority: Priority::High
        }),
        Just(C::Resolve),
        Just(C::Reopen { reason: None }),
        (0i32..7).prop_map(|score| C::Rate {
            score,
            comment: None
        }),
        (1u32..6).prop_map(|m| C::RedactMessage {
            message_id: msg(&format!("m-{m}")),
            reason: None
        }),
        Just(C::EraseCustomer { reason: None }),
    ];
    (who, cmd)
}

fn principal(n: u8) -> Principal {
    match n {
        0 => customer(),
        1 => agent(),
        2 => other_agent(),
        3 => supervisor(),
        4 => service(),
        5 => stranger(),
        _ => auditor(),
    }
}

proptest! {
    /// Whatever commands arrive, the log stays a gapless, intact chain, and replaying it gives
    /// exactly the state the writer holds: a new owner decides as the old one would have.
    #[test]
    fn any_command_sequence_keeps_the_chain_and_replays_to_the_same_state(
        commands in proptest::collection::vec(any_command(), 1..40)
    ) {
        let mut s = Scenario::opened();
        for (who, command) in commands {
            let _ = s.run(&principal(who), command);
        }
        let frames: Vec<&[u8]> = s.log.iter().map(|(_, f)| f.as_slice()).collect();
        let intact = matches!(verify(frames), Verdict::Intact { .. });
        prop_assert!(intact, "the chain is intact");
        let events: Vec<ConversationEvent> = s.log.iter().map(|(e, _)| e.clone()).collect();
        let replayed = ConversationState::replay(&events).unwrap();
        prop_assert_eq!(replayed.as_ref(), s.state.as_ref());
        let decoded: Vec<ConversationEvent> =
            s.log.iter().map(|(_, f)| ConversationEvent::decode(f).unwrap()).collect();
        prop_assert_eq!(decoded, events);
    }
}
