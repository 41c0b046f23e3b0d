//! The contract as code: `GET /api/openapi.json`, the route table of docs/api.md and the
//! server's routes are one set.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::TestApp;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// `METHOD /path` of every operation of the document.
fn documented(doc: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                out.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    out
}

/// The route table of docs/api.md.
fn in_the_docs() -> BTreeSet<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md"))
        .expect("docs/api.md");
    let table = text
        .split("## Routes")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/api.md has a Routes section");
    table
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|line| line.split('`').next())
        .map(str::to_owned)
        .collect()
}

async fn document(app: &TestApp) -> Value {
    let response = app.get("/api/openapi.json").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_document_the_route_table_and_the_server_agree() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let ops = documented(&doc);
    assert_eq!(
        ops,
        in_the_docs(),
        "the document against docs/api.md's Routes"
    );

    let id = "01a23b24-0000-7000-8000-000000000000";
    let mut paths: BTreeSet<&str> = BTreeSet::new();
    for op in &ops {
        let (method, path) = op.split_once(' ').unwrap();
        paths.insert(path);
        // Every documented operation is a route: never the 404 of an unknown route or a 405.
        let url = app.url(&path.replace("{id}", id).replace("{userId}", id));
        let response = app
            .client
            .request(method.parse().unwrap(), &url)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_ne!(status, 405, "{op}: {body}");
        assert!(
            !(status == 404 && body["error"]["code"] == "NOT_FOUND"),
            "{op} is documented but not routed"
        );
    }
    // And every route is documented: the methods a path answers (its 405's `Allow`) are
    // exactly the documented ones.
    for path in paths {
        let url = app.url(&path.replace("{id}", id).replace("{userId}", id));
        let response = app
            .client
            .request("TRACE".parse().unwrap(), &url)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{path}");
        let allowed: BTreeSet<String> = response.headers()["allow"]
            .to_str()
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_uppercase())
            .filter(|m| m != "HEAD")
            .map(|m| format!("{m} {path}"))
            .collect();
        let expected: BTreeSet<String> = ops
            .iter()
            .filter(|op| op.split_once(' ').unwrap().1 == path)
            .cloned()
            .collect();
        assert_eq!(
            allowed, expected,
            "{path}: served methods against documented ones"
        );
    }
}

#[tokio::test]
async fn every_operation_describes_its_answers_and_the_socket_events_are_beside_them() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path}: no success answer"
            );
            let signed_in = op["security"].as_array().is_some_and(|s| !s.is_empty());
            assert!(
                !signed_in || responses.contains_key("401"),
                "{method} {path}: a signed-in route answers 401"
            );
            if path.starts_with("/api/") && path != "/api/openapi.json" {
                for status in ["429", "503"] {
                    assert!(responses.contains_key(status), "{method} {path}: {status}");
                }
            }
            if op.get("requestBody").is_some() {
                for status in ["400", "408", "413"] {
                    assert!(responses.contains_key(status), "{method} {path}: {status}");
                }
            }
        }
    }
    let codes: BTreeSet<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for code in [
        "VALIDATION_ERROR",
        "REQUEST_TIMEOUT",
        "SERVICE_UNAVAILABLE",
        "RATE_LIMITED",
    ] {
        assert!(codes.contains(code), "{code}");
    }
    let socket = &doc["x-socketio"];
    assert_eq!(socket["path"], "/socket.io");
    for event in [
        "join-channel",
        "send-message",
        "typing-start",
        "edit-message",
    ] {
        assert!(socket["clientToServer"].get(event).is_some(), "{event}");
    }
    for event in ["new-message", "user:online", "channel:left", "error"] {
        assert!(socket["serverToClient"].get(event).is_some(), "{event}");
    }
}
