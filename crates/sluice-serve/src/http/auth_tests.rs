use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::Utc;

use crate::auth::{AuthMode, Role, create_token, revoke_token};
use crate::test_support::Served;

fn with_token(method: &str, uri: &str, authorization: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, authorization)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap()
}

#[tokio::test]
async fn a_required_token_guards_the_api_but_not_the_probes_or_the_ui_files() {
    let mut served = Served::new().await;
    // Open (the development mode): no token needed.
    assert_eq!(served.get("/api/assets", "").await.status, StatusCode::OK);

    served.state.auth = AuthMode::Required;
    let reader = create_token(&served.state.state, "ana", Role::Reader, None, Utc::now()).unwrap();
    let operator =
        create_token(&served.state.state, "ops", Role::Operator, None, Utc::now()).unwrap();

    let denied = served.get("/api/assets", "").await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        denied.headers[header::WWW_AUTHENTICATE],
        "Bearer realm=\"sluice\""
    );
    assert!(
        denied.json()["error"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer")
    );
    for open in ["/api/health", "/api/ready", "/", "/ui/js/signin.js"] {
        assert_eq!(served.get(open, "").await.status, StatusCode::OK, "{open}");
    }
    for bad in ["Basic YTpi", "Bearer", "Bearer slu_nope", "slu_nope"] {
        let r = served.send(with_token("GET", "/api/runs", bad)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{bad}");
        assert!(
            r.headers[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .contains("invalid_token"),
            "{bad}"
        );
    }

    let bearer = format!("Bearer {}", reader.secret);
    let ok = served.send(with_token("GET", "/api/assets", &bearer)).await;
    assert_eq!(ok.status, StatusCode::OK);
    // A reader may query but not operate.
    let sql = Request::post("/api/sql")
        .header(header::AUTHORIZATION, &bearer)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"sql": "select 1 as x"}"#))
        .unwrap();
    assert_eq!(served.send(sql).await.status, StatusCode::OK);
    let refused = served.send(with_token("POST", "/api/runs", &bearer)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.json()["error"].as_str().unwrap().contains("reader"));
    let cancel = served
        .send(with_token(
            "POST",
            "/api/runs/nope/cancel",
            &format!("bearer {}", operator.secret),
        ))
        .await;
    assert_eq!(cancel.status, StatusCode::NOT_FOUND, "past the check");

    // Revoked: refused from the next request on.
    assert!(revoke_token(&served.state.state, &reader.record.id).unwrap());
    let r = served.send(with_token("GET", "/api/assets", &bearer)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.json()["error"].as_str().unwrap().contains("revoked"));
}
