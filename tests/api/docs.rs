//! The OpenAPI document, the Swagger UI page (offline) and the dashboard page.

use ghmetrics::config::SqliteLocation;
use serde_json::Value;

use crate::helpers::TestApp;

/// Every documented operation, called as documented (required parameters
/// left out, which must give a documented 422), answers with a status its
/// document lists: the document and the router agree.
#[tokio::test]
async fn every_documented_operation_answers_as_documented() {
    let app = TestApp::spawn(SqliteLocation::Memory, None).await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let spec: Value = response.json().await.unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let paths = spec["paths"].as_object().unwrap();
    assert!(paths.len() >= 14, "{:?}", paths.keys());
    for (path, item) in paths {
        let operation = &item["get"];
        assert!(operation.is_object(), "{path}: no GET");
        let required: Vec<&str> = operation["parameters"]
            .as_array()
            .map(|parameters| {
                parameters
                    .iter()
                    .filter(|p| p["required"] == true)
                    .map(|p| p["name"].as_str().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        let status = app.get(path).await.status().as_u16();
        let documented = operation["responses"].as_object().unwrap();
        assert!(
            documented.contains_key(&status.to_string()),
            "{path} answered {status}, documented: {:?}",
            documented.keys()
        );
        // event-counts needs `offset_minutes` or `from`: either, so neither
        // is required alone, which a schema cannot say.
        let needs_a_window = path.ends_with("/event-counts");
        let expected = if required.is_empty() && !needs_a_window {
            200
        } else {
            422
        };
        assert_eq!(status, expected, "{path} (required: {required:?})");
    }
    app.stop().await;
}

/// Charts are declared as OpenAPI 3.1 declares binary bodies: a string with
/// the image's `contentMediaType`, not an array of integers.
#[tokio::test]
async fn image_answers_are_declared_as_binary_bodies() {
    let app = TestApp::spawn(SqliteLocation::Memory, None).await;
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    let mut images = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (status, response) in item["get"]["responses"].as_object().unwrap() {
            for (media_type, content) in response["content"].as_object().into_iter().flatten() {
                if media_type.starts_with("image/") {
                    let expected =
                        serde_json::json!({"type": "string", "contentMediaType": media_type});
                    assert_eq!(content["schema"], expected, "{path} {status}");
                    images += 1;
                }
            }
        }
    }
    // PNG and SVG of two charts, plain and under /v1.
    assert_eq!(images, 8);
    app.stop().await;
}

#[tokio::test]
async fn swagger_ui_is_served_from_the_binary() {
    let app = TestApp::spawn(SqliteLocation::Memory, None).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let redirect = no_redirects
        .get(format!("http://{}/docs", app.address))
        .send()
        .await
        .unwrap();
    assert!(redirect.status().is_redirection());
    assert_eq!(redirect.headers()["location"], "/docs/");
    let page = app.get("/docs/").await.text().await.unwrap();
    assert!(page.contains(r#"<div id="swagger-ui">"#), "{page}");
    let initializer = app
        .get("/docs/swagger-initializer.js")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        initializer.contains(r#""url": "/openapi.json""#),
        "{initializer}"
    );
    let bundle = app.get("/docs/swagger-ui-bundle.js").await;
    assert_eq!(bundle.status(), 200);
    assert!(bundle.bytes().await.unwrap().len() > 100_000);
    app.stop().await;
}

#[tokio::test]
async fn dashboard_is_one_self_contained_page() {
    let app = TestApp::spawn(SqliteLocation::Memory, None).await;
    let response = app.get("/").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let page = response.text().await.unwrap();
    for id in [
        "count-WatchEvent",
        "bar-chart",
        "timeline-chart",
        "repo-form",
        "top-repos",
    ] {
        assert!(page.contains(&format!(r#"id="{id}""#)), "{id}");
    }
    // Nothing is loaded from elsewhere: the page works without the internet.
    assert!(!page.contains("http://") && !page.contains("https://"));
    app.stop().await;
}
