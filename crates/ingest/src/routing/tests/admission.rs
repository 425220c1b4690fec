//! The admission gate over a router: opens under way hold their place until the router has
//! folded them, whichever comes first of the acknowledgement and the fold, and never longer
//! than the grace the router has to catch up; a customer's own resolution stops counting from
//! its acknowledgement, once.

use std::time::{Duration, Instant};

use switchboard_events::principal::{Principal, Role};

use super::*;
use crate::error::CommandError;
use crate::routing::admission::UNFOLDED_GRACE;

fn config() -> RoutingConfig {
    RoutingConfig {
        customer_caps: CustomerCaps {
            max_open: 10,
            max_waiting: 2,
        },
        ..RoutingConfig::default()
    }
}

fn as_customer(id: &str) -> Principal {
    Principal::new(
        fixtures::tenant(),
        Role::Customer,
        PrincipalId::new(id).unwrap(),
    )
}

/// The gate and a router it learns from, as the driver wires them.
struct Gate {
    admission: Admission,
    g: Given,
    t0: Instant,
}

impl Gate {
    fn new() -> Self {
        Self {
            admission: Admission::new(RoutingConfigs::new(config())),
            g: given(config()),
            t0: Instant::now(),
        }
    }

    fn admit(&self, customer: &str, after: Duration) -> Result<Held, CommandError> {
        let principal = as_customer(customer);
        let id = super::customer(customer);
        self.admission.admit(&principal, &id, self.t0 + after)
    }

    /// A round of the router.
    fn round(&mut self, after: Duration) {
        self.admission.update(&mut self.g.router, self.t0 + after);
    }
}

fn code<T>(result: Result<T, CommandError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

const NOW: Duration = Duration::ZERO;

#[test]
fn concurrent_opens_hold_their_place_before_the_router_sees_them() {
    let mut gate = Gate::new();
    let first = gate.admit("cust-1", NOW).unwrap();
    let second = gate.admit("cust-1", NOW).unwrap();
    assert_eq!(
        code(gate.admit("cust-1", NOW)),
        "too_many_open_conversations",
        "two under way"
    );
    assert_eq!(code(gate.admit("cust-2", NOW)), "ok", "another customer");
    drop(second); // its append failed
    let second = gate.admit("cust-1", NOW).unwrap();

    // The first is acknowledged, then folded; the second folded before its ack is back.
    first.opened(conv("c1"), gate.t0);
    gate.g.open("c1");
    gate.round(NOW);
    gate.g.open("c2");
    gate.round(NOW);
    second.opened(conv("c2"), gate.t0);
    let refused = gate.admit("cust-1", NOW).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "the customer already has 2 waiting conversations, the limit is 2",
        "each counted once"
    );

    gate.g.online("a1", 5, &[]).route();
    gate.round(NOW);
    assert_eq!(code(gate.admit("cust-1", NOW)), "ok", "both have an agent");
}

#[test]
fn an_open_the_router_never_folds_holds_its_place_only_for_the_grace() {
    let gate = Gate::new();
    gate.admit("cust-1", NOW)
        .unwrap()
        .opened(conv("c1"), gate.t0);
    gate.admit("cust-1", NOW)
        .unwrap()
        .opened(conv("c2"), gate.t0);
    let soon = Duration::from_secs(1);
    assert_eq!(
        code(gate.admit("cust-1", soon)),
        "too_many_open_conversations"
    );
    let later = UNFOLDED_GRACE + soon;
    assert_eq!(code(gate.admit("cust-1", later)), "ok");
}

#[test]
fn a_rebuilt_router_gives_the_gate_every_customers_load() {
    let mut gate = Gate::new();
    gate.g.open("c1").open("c2");
    gate.g.open_for("c3", &customer("cust-2"));
    gate.round(NOW);
    assert_eq!(
        code(gate.admit("cust-1", NOW)),
        "too_many_open_conversations"
    );
    assert_eq!(code(gate.admit("cust-2", NOW)), "ok");
    gate.g.resolve("c1");
    gate.round(NOW);
    assert_eq!(code(gate.admit("cust-1", NOW)), "ok");
}

#[test]
fn a_customers_acknowledged_resolution_frees_its_place_before_the_router_folds_it() {
    let mut gate = Gate::new();
    gate.g.open("c1").open("c2");
    gate.round(NOW);
    assert_eq!(
        code(gate.admit("cust-1", NOW)),
        "too_many_open_conversations"
    );

    // cust-1 resolves c1: acknowledged, not folded yet, and over for the caps.
    let resolving = gate.admission.resolving(&as_customer("cust-1")).unwrap();
    resolving.resolved(conv("c1"), gate.t0);
    assert_eq!(code(gate.admit("cust-1", NOW)), "ok", "c1 is over");

    // The router folds it: taken off once, not twice.
    gate.g.resolve("c1");
    gate.round(NOW);
    let under_way = gate.admit("cust-1", NOW).unwrap();
    assert_eq!(
        code(gate.admit("cust-1", NOW)),
        "too_many_open_conversations",
        "c2 and the open under way"
    );
    drop(under_way);

    // A resolution folded before its acknowledgement comes back is not taken off again.
    let resolving = gate.admission.resolving(&as_customer("cust-1")).unwrap();
    gate.g.resolve("c2");
    gate.round(NOW);
    resolving.resolved(conv("c2"), gate.t0);
    let first = gate.admit("cust-1", NOW).unwrap();
    let second = gate.admit("cust-1", NOW).unwrap();
    assert_eq!(
        code(gate.admit("cust-1", NOW)),
        "too_many_open_conversations",
        "nothing waits but the two under way"
    );
    drop((first, second));

    // Staff resolutions wait for the router: the caps are the customer's.
    let agent = Principal::new(
        fixtures::tenant(),
        Role::Agent,
        PrincipalId::new("a1").unwrap(),
    );
    assert!(gate.admission.resolving(&agent).is_none());
}

#[test]
fn a_resolution_the_router_never_folds_counts_only_for_the_grace() {
    let mut gate = Gate::new();
    gate.g.open("c1").open("c2");
    gate.round(NOW);
    gate.admission
        .resolving(&as_customer("cust-1"))
        .unwrap()
        .resolved(conv("c1"), gate.t0);
    assert_eq!(code(gate.admit("cust-1", NOW)), "ok");
    let later = UNFOLDED_GRACE + Duration::from_secs(1);
    assert_eq!(
        code(gate.admit("cust-1", later)),
        "too_many_open_conversations",
        "back to the router's count"
    );
}

#[test]
fn a_resolution_that_changed_nothing_takes_nothing_off() {
    let mut gate = Gate::new();
    gate.g.open("c1").open("c2");
    gate.round(NOW);
    drop(gate.admission.resolving(&as_customer("cust-1")).unwrap());
    assert_eq!(
        code(gate.admit("cust-1", NOW)),
        "too_many_open_conversations"
    );
}
