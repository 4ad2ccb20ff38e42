//! Lists: pages, the search language, ordering and field selection, the same on both databases.

use maestro_tests::{TestHub, deployment, on_both_databases};
use serde_json::{Value, json};

use crate::{assert_error, bundle, consumer};

on_both_databases!(
    pages_cover_every_item_once,
    search_filters_by_fields_and_labels,
    order_by_and_fields_shape_the_list,
    bad_queries_are_refused_with_the_place_they_failed,
);

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|i| i["name"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

async fn pages_cover_every_item_once(hub: &TestHub) {
    for i in 0..25 {
        consumer(hub, &format!("c{i:02}"), json!({})).await;
    }
    let mut seen = Vec::new();
    for page in 1..=3 {
        let reply = hub.get(&format!("/api/maestro/v1/consumers?page={page}&size=10")).await;
        assert_eq!(reply.body["page"], page);
        assert_eq!(reply.body["total"], 25);
        assert_eq!(reply.body["size"], if page < 3 { 10 } else { 5 }, "size is the number of items in the page");
        seen.extend(names(&reply.body));
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 25);
    let beyond = hub.get("/api/maestro/v1/consumers?page=9&size=10").await;
    assert_eq!(beyond.body["items"], json!([]));
    let count_only = hub.get("/api/maestro/v1/consumers?size=0").await;
    assert_eq!((count_only.body["total"].clone(), count_only.body["size"].clone()), (json!(25), json!(0)));
}

async fn search_filters_by_fields_and_labels(hub: &TestHub) {
    consumer(hub, "prod-east", json!({"env": "prod", "app.kubernetes.io/part-of": "payments"})).await;
    consumer(hub, "prod-west", json!({"env": "prod"})).await;
    consumer(hub, "dev-1", json!({"env": "dev"})).await;
    let search = |q: &str| format!("/api/maestro/v1/consumers?search={}", urlencode(q));
    let found = |reply: maestro_tests::Reply| {
        assert_eq!(reply.status, 200, "{}", reply.body);
        let mut n = names(&reply.body);
        n.sort();
        n
    };
    assert_eq!(found(hub.get(&search("name like 'prod%'")).await), ["prod-east", "prod-west"]);
    assert_eq!(found(hub.get(&search("name in ('dev-1', 'prod-west')")).await), ["dev-1", "prod-west"]);
    assert_eq!(found(hub.get(&search("labels.env = 'prod' and not name = 'prod-west'")).await), ["prod-east"]);
    assert_eq!(found(hub.get(&search("labels.env != 'prod'")).await), ["dev-1"]);
    assert_eq!(found(hub.get(&search("labels.app.kubernetes.io/part-of = 'payments'")).await), ["prod-east"]);
    assert_eq!(
        found(hub.get(&search("labels.env in ('dev') or labels.app.kubernetes.io/part-of is not null")).await),
        ["dev-1", "prod-east"]
    );
    assert_eq!(
        found(hub.get(&search("name = 'x'' or 1=1 --'")).await),
        Vec::<String>::new(),
        "quotes are data, not SQL"
    );

    for (consumer_name, app) in [("prod-east", "web"), ("prod-east", "db"), ("dev-1", "web")] {
        let mut manifest = deployment(app);
        manifest["metadata"]["labels"] = json!({"app": app, "tier": "backend"});
        bundle(
            hub,
            json!({"consumer_name": consumer_name, "name": format!("{consumer_name}-{app}"), "manifests": [manifest]}),
        )
        .await;
    }
    let bundles = |q: &str| format!("/api/maestro/v1/resource-bundles?search={}", urlencode(q));
    assert_eq!(
        found(hub.get(&bundles("consumer_name = 'prod-east' and version >= 1")).await),
        ["prod-east-db", "prod-east-web"]
    );
    assert_eq!(found(hub.get(&bundles("manifest_labels.app = 'web'")).await), ["dev-1-web", "prod-east-web"]);
    assert_eq!(found(hub.get(&bundles("manifest_labels.app like 'd%' or version > 1")).await), ["prod-east-db"]);
    assert_eq!(
        found(
            hub.get(&bundles(
                "created_at > '2000-01-01T00:00:00Z' and deleted_at is null and consumer_name like 'dev%'"
            ))
            .await
        ),
        ["dev-1-web"]
    );
}

async fn order_by_and_fields_shape_the_list(hub: &TestHub) {
    for name in ["b", "c", "a"] {
        consumer(hub, name, json!({"k": name})).await;
    }
    let desc = hub.get("/api/maestro/v1/consumers?orderBy=name%20desc").await;
    assert_eq!(names(&desc.body), ["c", "b", "a"]);
    let asc = hub.get("/api/maestro/v1/consumers?orderBy=name").await;
    assert_eq!(names(&asc.body), ["a", "b", "c"]);
    let created_order = hub.get("/api/maestro/v1/consumers").await;
    assert_eq!(names(&created_order.body), ["b", "c", "a"], "the default order is creation order");

    let projected = hub.get("/api/maestro/v1/consumers?fields=name&orderBy=name").await;
    let first = projected.body["items"][0].as_object().expect("item");
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["id", "kind", "name"]);
}

async fn bad_queries_are_refused_with_the_place_they_failed(hub: &TestHub) {
    let cases = [
        ("search=name%20%3D", "search"),
        ("search=nmae%20%3D%20'x'", "nmae"),
        ("search=name%20%3D%20'unterminated", "search"),
        ("search=version%20%3D%20'x'", "search"),
        ("orderBy=labels%20desc", "orderBy"),
        ("orderBy=name%20sideways", "orderBy"),
    ];
    for (query, mentions) in cases {
        let reply = hub.get(&format!("/api/maestro/v1/consumers?{query}")).await;
        assert_error(&reply, 400, 23);
        let reason = reply.body["reason"].as_str().unwrap_or("");
        assert!(reason.contains(mentions) && reason.contains("position"), "{query}: {reason}");
    }
    let typo = hub.get("/api/maestro/v1/consumers?pageSize=10").await;
    assert_error(&typo, 400, 21);
    assert_error(&hub.get("/api/maestro/v1/consumers?size=100000").await, 400, 21);
    assert_error(&hub.get("/api/maestro/v1/consumers?page=-1").await, 400, 21);
    let deep = format!("search={}name%20%3D%20'x'{}", "(".repeat(200), ")".repeat(200));
    assert_error(&hub.get(&format!("/api/maestro/v1/consumers?{deep}")).await, 400, 23);
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
