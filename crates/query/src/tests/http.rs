//! The HTTP API end to end on a populated store: history, lists, summaries, reports, access
//! control, and the cross-tenant matrix.

use axum::http::StatusCode;
use serde_json::Value;
use switchboard_events::fixtures;
use switchboard_events::principal::Role;

use super::{World, token};

fn seqs(page: &Value) -> Vec<u64> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect()
}

fn events() -> u64 {
    fixtures::conversation_history().len() as u64
}

#[tokio::test]
async fn staff_page_through_history_in_both_directions_and_around_a_seq() {
    let world = World::new().await;
    let agent = token("acme", Role::Agent, "agent-7");
    let newest = world
        .json("/v1/conversations/conv-a/history?limit=4", &agent)
        .await;
    let n = events();
    assert_eq!(seqs(&newest), (n - 3..=n).collect::<Vec<_>>());
    assert_eq!(newest["after"], Value::Null, "nothing newer");
    let mut seen = seqs(&newest);
    let mut before = newest["before"].as_u64();
    while let Some(cursor) = before {
        let page = world
            .json(
                &format!("/v1/conversations/conv-a/history?limit=4&before={cursor}"),
                &agent,
            )
            .await;
        let mut older = seqs(&page);
        older.extend(seen);
        seen = older;
        before = page["before"].as_u64();
    }
    assert_eq!(
        seen,
        (1..=n).collect::<Vec<_>>(),
        "every seq once, in order"
    );

    let forward = world
        .json(
            "/v1/conversations/conv-a/history?oldest=true&limit=3",
            &agent,
        )
        .await;
    assert_eq!(seqs(&forward), vec![1, 2, 3]);
    assert_eq!(forward["after"], 3);
    let next = world
        .json("/v1/conversations/conv-a/history?after=3&limit=3", &agent)
        .await;
    assert_eq!(seqs(&next), vec![4, 5, 6]);
    let around = world
        .json("/v1/conversations/conv-a/history?around=5&limit=4", &agent)
        .await;
    assert_eq!(seqs(&around), vec![4, 5, 6, 7]);
}

#[tokio::test]
async fn bodies_are_opened_for_readers_and_customers_never_see_private_notes() {
    let world = World::new().await;
    let agent = token("acme", Role::Agent, "agent-7");
    let page = world
        .json(
            "/v1/conversations/conv-a/history?oldest=true&limit=6",
            &agent,
        )
        .await;
    let note = &page["events"][4];
    assert_eq!(note["seq"], 5);
    assert_eq!(note["event"]["private_note"], true);
    assert_eq!(
        note["event"]["body"]["text"],
        "Checking the invoice; customer seems upset."
    );
    assert_eq!(
        page["events"][0]["event"]["customer_name"]["text"],
        "Ada Lovelace"
    );

    let customer = token("acme", Role::Customer, "cust-1");
    let mine = world
        .json(
            "/v1/conversations/conv-a/history?oldest=true&limit=500",
            &customer,
        )
        .await;
    assert!(!seqs(&mine).contains(&5), "the private note is hidden");
    assert!((seqs(&mine).len() as u64) < events());
    assert!(
        !String::from_utf8(serde_json::to_vec(&mine).unwrap())
            .unwrap()
            .contains("customer seems upset")
    );

    let stranger = token("acme", Role::Customer, "cust-2");
    for uri in [
        "/v1/conversations/conv-a",
        "/v1/conversations/conv-a/history",
    ] {
        let (status, _) = world.get(uri, Some(&stranger)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
    }
    let listed = world.json("/v1/conversations", &stranger).await;
    assert_eq!(listed["conversations"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn an_erased_customer_reads_as_an_explicit_marker() {
    let world = World::new().await;
    world
        .store
        .destroy_data_key(&fixtures::tenant(), &fixtures::customer())
        .await
        .unwrap();
    world.service.cache().erased();
    let agent = token("acme", Role::Agent, "agent-7");
    let page = world
        .json(
            "/v1/conversations/conv-a/history?oldest=true&limit=4",
            &agent,
        )
        .await;
    assert_eq!(
        page["events"][3]["event"]["body"],
        serde_json::json!({ "erased": true })
    );
    assert_eq!(
        page["events"][0]["event"]["customer_name"],
        serde_json::json!({ "erased": true })
    );
}

#[tokio::test]
async fn lists_filter_and_page_with_cursors() {
    let world = World::new().await;
    let sup = token("acme", Role::Supervisor, "sup-1");
    let first = world.json("/v1/conversations?limit=1", &sup).await;
    let cursor = first["next"].as_str().unwrap().to_owned();
    let second = world
        .json(&format!("/v1/conversations?limit=1&cursor={cursor}"), &sup)
        .await;
    let ids: Vec<_> = [&first, &second]
        .iter()
        .map(|p| {
            p["conversations"][0]["conversation"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, ["conv-a", "conv-a2"]);
    assert_eq!(second["next"], Value::Null);

    let summary = world.json("/v1/conversations/conv-a", &sup).await;
    let status = summary["status"].as_str().unwrap().to_lowercase();
    let by_status = world
        .json(&format!("/v1/conversations?status={status}"), &sup)
        .await;
    assert_eq!(by_status["conversations"].as_array().unwrap().len(), 2);
    let other = if status == "resolved" {
        "queued"
    } else {
        "resolved"
    };
    let none = world
        .json(&format!("/v1/conversations?status={other}"), &sup)
        .await;
    assert_eq!(none["conversations"].as_array().unwrap().len(), 0);
    let customer = world.json("/v1/conversations?customer=cust-1", &sup).await;
    assert_eq!(customer["conversations"].as_array().unwrap().len(), 2);
    if let Some(tag) = summary["tags"][0].as_str() {
        let tagged = world
            .json(&format!("/v1/conversations?tag={tag}"), &sup)
            .await;
        assert_eq!(tagged["conversations"].as_array().unwrap().len(), 2);
    }
    let untagged = world.json("/v1/conversations?tag=no-such-tag", &sup).await;
    assert_eq!(untagged["conversations"].as_array().unwrap().len(), 0);
    let future = world
        .json("/v1/conversations?updated_since=9000000000000000", &sup)
        .await;
    assert_eq!(future["conversations"].as_array().unwrap().len(), 0);
    for bad in [
        "/v1/conversations?status=lost",
        "/v1/conversations?limit=many",
    ] {
        let (status, body) = world.get(bad, Some(&sup)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "invalid_argument", "{bad}");
    }
}

#[tokio::test]
async fn reports_sum_the_tenant_and_agents_see_only_their_own() {
    let world = World::new().await;
    let sup = token("acme", Role::Supervisor, "sup-1");
    let report = world
        .json("/v1/reports?from=2025-12-31&to=2026-01-02", &sup)
        .await;
    let days = report["days"].as_array().unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!(days[0]["day"], "2026-01-01");
    assert_eq!(days[0]["counters"]["conversations_opened"], 2, "acme's two");
    let own = token("acme", Role::Agent, "agent-7");
    let (status, _) = world
        .get(
            "/v1/reports?from=2026-01-01&to=2026-01-01&agent=agent-7",
            Some(&own),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for (who, uri) in [
        (&own, "/v1/reports?from=2026-01-01&to=2026-01-01"),
        (
            &own,
            "/v1/reports?from=2026-01-01&to=2026-01-01&agent=agent-8",
        ),
        (
            &token("acme", Role::Customer, "cust-1"),
            "/v1/reports?from=2026-01-01&to=2026-01-01",
        ),
    ] {
        assert_eq!(
            world.get(uri, Some(who)).await.0,
            StatusCode::FORBIDDEN,
            "{uri}"
        );
    }
    let (status, _) = world
        .get("/v1/reports?from=2026-02-31&to=2026-03-01", Some(&sup))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn tokens_are_required_and_checked() {
    let world = World::new().await;
    let (status, body) = world.get("/v1/conversations", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "unauthenticated");
    let forged = super::token("acme", Role::Supervisor, "sup-1") + "x";
    assert_eq!(
        world.get("/v1/conversations", Some(&forged)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = world.get("/subjects", None).await;
    assert_eq!(status, StatusCode::OK, "schemas are public");
}

/// Every endpoint that names something, called with tenant A's tokens on tenant B's ids, is
/// refused, with exactly the answer a missing id gets; tenant-wide endpoints never show B.
#[tokio::test]
async fn tenant_a_never_reaches_tenant_b() {
    let world = World::new().await;
    let per_conversation = [
        "/v1/conversations/{id}",
        "/v1/conversations/{id}/history",
        "/v1/conversations/{id}/history?oldest=true",
        "/v1/conversations/{id}/history?around=3",
        "/v1/conversations/{id}/replay",
        "/v1/conversations/{id}/verify",
        "/v1/conversations/{id}/export",
        "/v1/conversations/{id}/export?format=avro",
    ];
    let tenant_wide = [
        "/v1/conversations",
        "/v1/conversations?customer=cust-1",
        "/v1/conversations?agent=agent-7",
        "/v1/replay?from=0&to=9000000000000000",
        "/v1/export?from=0&to=9000000000000000",
        "/v1/export?from=0&to=9000000000000000&format=avro",
        "/v1/reports?from=2026-01-01&to=2026-01-01",
    ];
    for role in [
        Role::Customer,
        Role::Agent,
        Role::Supervisor,
        Role::Auditor,
        Role::Service,
    ] {
        let subject = if role == Role::Customer {
            "cust-1"
        } else {
            "agent-7"
        };
        let a = token("acme", role, subject);
        for template in per_conversation {
            let theirs = world
                .get(&template.replace("{id}", "conv-b"), Some(&a))
                .await;
            let missing = world
                .get(&template.replace("{id}", "conv-zz"), Some(&a))
                .await;
            assert!(
                [StatusCode::NOT_FOUND, StatusCode::FORBIDDEN].contains(&theirs.0),
                "{role:?} {template}: {}",
                theirs.0
            );
            assert_eq!(
                theirs, missing,
                "{role:?} {template}: B's id reads as missing"
            );
        }
        for uri in tenant_wide {
            let (status, body) = world.get(uri, Some(&a)).await;
            let body = String::from_utf8_lossy(&body);
            assert!(
                !body.contains("globex") && !body.contains("conv-b"),
                "{role:?} {uri}"
            );
            assert!(
                status.is_success() || status == StatusCode::FORBIDDEN,
                "{role:?} {uri}"
            );
        }
    }
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let world = World::new().await;
    let (status, body) = world.get("/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let sup = token("acme", Role::Auditor, "audit-1");
    for path in crate::openapi::PATHS {
        assert!(doc["paths"][path]["get"].is_object(), "{path}");
        let uri = path.replace("{id}", "conv-a") + "?from=0&to=9000000000000000&from_day=1";
        let uri = uri.replace(
            "/v1/reports?from=0&to=9000000000000000&from_day=1",
            "/v1/reports?from=2026-01-01&to=2026-01-01",
        );
        let (status, _) = world.get(&uri, Some(&sup)).await;
        assert_ne!(status, StatusCode::NOT_FOUND, "{uri} is routed");
    }
}

#[tokio::test]
async fn a_reader_over_its_rate_gets_429_while_others_of_the_tenant_still_read() {
    use switchboard_events::rate::Rate;
    let limits = crate::access::ReadLimits {
        customer: Rate::new(0.001, 3.0),
        ..crate::access::ReadLimits::default()
    };
    let world = World::new().await.with_read_limits(limits);
    let flood = token("acme", Role::Customer, "cust-1");
    let page = "/v1/conversations/conv-a/history?limit=4";
    for _ in 0..3 {
        world.json(page, &flood).await;
    }
    let (status, body) = world.get(page, Some(&flood)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    let (status, _) = world.get("/v1/conversations", Some(&flood)).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "every read draws on one bucket"
    );

    let other = token("acme", Role::Customer, "cust-2");
    let (status, _) = world.get("/v1/conversations", Some(&other)).await;
    assert_eq!(status, StatusCode::OK, "another customer of the tenant");
    world
        .json(page, &token("acme", Role::Agent, "agent-7"))
        .await;
}
