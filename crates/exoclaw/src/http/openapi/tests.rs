//! The document against the route table: the same routes, each with its
//! access, and the error answers of the API.

use super::*;
use std::collections::BTreeSet;

fn table() -> Vec<RouteSpec> {
    let (_, table) = super::super::api_routes().finish();
    table.as_ref().clone()
}

/// `(METHOD, path)` of every operation of `doc`.
fn operations(doc: &OpenApi) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in &doc.paths.paths {
        for (method, op) in [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
            ("HEAD", &item.head),
            ("OPTIONS", &item.options),
            ("TRACE", &item.trace),
        ] {
            if op.is_some() {
                out.insert((method.to_owned(), path.clone()));
            }
        }
    }
    out
}

#[test]
fn every_route_of_the_table_is_documented_and_nothing_else() {
    let routes: BTreeSet<(String, String)> = table()
        .iter()
        .map(|s| (s.method.clone(), s.path.to_owned()))
        .collect();
    // The handlers' own documentation, before the table is applied: a
    // route missing from `paths(...)` of `ApiDoc`, or a path documented
    // that the router does not serve, fails here.
    let documented = operations(&ApiDoc::openapi());
    let missing: Vec<_> = routes.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routes).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "not documented: {missing:?}; documented but not routed: {extra:?} \
         (add the handler to `paths(...)` in src/http/openapi.rs)"
    );
}

#[test]
fn each_operation_names_its_access_and_answers_errors_with_the_error_body() {
    let table = table();
    let mut doc = document(&table);
    let mut ids = BTreeSet::new();
    for spec in &table {
        let item = doc.paths.paths.get_mut(spec.path).unwrap();
        let op = operation_mut(item, &spec.method).unwrap();
        let description = op.description.clone().unwrap_or_default();
        let security = op.security.clone().unwrap();
        match spec.access {
            Access::Public => {
                assert!(description.contains("Public"), "{}", spec.path);
                assert!(security.is_empty(), "{}", spec.path);
            }
            Access::SelfAuth => assert_eq!(security.len(), 2),
            Access::Perm(p) => {
                assert!(
                    description.contains(&format!("`{p}`")),
                    "{} {}: {description}",
                    spec.method,
                    spec.path
                );
                assert_eq!(security.len(), 1);
                for status in ["401", "403", "429", "500"] {
                    assert!(
                        op.responses.responses.contains_key(status),
                        "{} {} lacks {status}",
                        spec.method,
                        spec.path
                    );
                }
            }
        }
        assert!(ids.insert(op.operation_id.clone().unwrap()), "duplicate id");
    }
    let json = serde_json::to_value(&doc).unwrap();
    assert_eq!(json["openapi"], "3.1.0");
    assert_eq!(
        json["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let codes = &json["components"]["schemas"]["ErrorCode"]["enum"];
    assert_eq!(
        codes.as_array().unwrap().len(),
        ErrorCode::wire_strings().len()
    );
    // The tool invocation's own refusal body, or the API's error body.
    let invoke = &json["paths"]["/v1/tools/invoke"]["post"]["responses"]["403"];
    let schema = &invoke["content"]["application/json"]["schema"];
    assert_eq!(
        schema["anyOf"].as_array().map(Vec::len),
        Some(2),
        "{invoke}"
    );
}

#[expect(
    clippy::disallowed_methods,
    reason = "the regeneration switch is the developer's variable"
)]
fn updating() -> bool {
    std::env::var("UPDATE_OPENAPI").as_deref() == Ok("1")
}

/// The binary serves docs/openapi.json as compiled in; it must be what the
/// types and the route table generate.
#[test]
fn docs_openapi_json_is_what_the_types_generate() {
    let generated = render(&table());
    if updating() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
        std::fs::write(&path, &generated).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    assert!(
        CHECKED_IN == generated,
        "docs/openapi.json is not what the types generate: regenerate it with \
         `UPDATE_OPENAPI=1 cargo nextest run -p exoclaw --lib openapi` and commit it"
    );
}

#[test]
fn rendering_is_stable() {
    let table = table();
    assert_eq!(render(&table), render(&table));
    assert!(render(&table).ends_with("}\n"));
}
