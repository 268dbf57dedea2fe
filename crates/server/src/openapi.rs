//! The OpenAPI 3.0 document served at `/openapi.json`. Written by hand; the query parameters of
//! `/v1/places` come from the same table the handler parses with, and a test checks that every
//! route of [`crate::app`] is described and every described route answers.

use serde_json::{json, Map, Value};

use crate::error::ERROR_CODES;
use crate::params::{ParamSpec, PLACES};

/// Every route the document describes, as `(method, path)`.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/v1/places"),
    ("get", "/v1/places/{id}"),
    ("get", "/v1/districts"),
    ("get", "/v1/cuisines"),
    ("get", "/v1/stats"),
    ("get", "/v1/export.geojson"),
    ("get", "/v1/export/{kind}.csv"),
    ("post", "/v1/admin/imports"),
    ("get", "/v1/admin/jobs"),
    ("get", "/v1/admin/jobs/{id}"),
    ("get", "/v1/admin/status"),
    ("post", "/v1/admin/services/{service}/restart"),
    ("get", "/admin/status"),
    ("get", "/health"),
    ("get", "/ready"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/"),
];

fn nullable(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.insert("nullable".into(), Value::Bool(true));
    }
    v
}

fn string() -> Value {
    json!({"type": "string"})
}

fn object(props: &[(&str, Value)]) -> Value {
    let required: Vec<&str> = props.iter().map(|p| p.0).collect();
    let properties: Map<String, Value> = props
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    json!({"type": "object", "required": required, "properties": properties})
}

fn param(p: &ParamSpec) -> Value {
    let schema = (p.schema)();
    if p.list {
        json!({
            "name": p.name, "in": "query", "required": false, "description": p.description,
            "style": "form", "explode": false,
            "schema": {"type": "array", "items": schema, "minItems": 1},
        })
    } else {
        json!({"name": p.name, "in": "query", "required": false, "description": p.description, "schema": schema})
    }
}

fn place_schema(with_location: bool) -> Value {
    let s = || nullable(string());
    let mut props = vec![
        ("id", json!({"type": "integer", "format": "int64"})),
        (
            "kind",
            json!({"type": "string", "enum": ["restaurant", "parking", "toilet"]}),
        ),
        ("name", string()),
        ("name_kana", s()),
        ("name_en", s()),
        ("address", s()),
        ("postal_code", s()),
        (
            "locality",
            json!({"type": "string", "enum": ["district", "unknown", "outside"]}),
        ),
        ("district", s()),
        ("town", s()),
        ("cuisine", s()),
        ("cuisine_label_ja", s()),
        ("marker_group", s()),
        (
            "price_level",
            nullable(json!({"type": "integer", "minimum": 1, "maximum": 4})),
        ),
        ("price_label_ja", s()),
        (
            "rating",
            nullable(json!({"type": "number", "minimum": 0, "maximum": 5})),
        ),
        (
            "rating_count",
            nullable(json!({"type": "integer", "minimum": 0})),
        ),
        (
            "status",
            json!({"type": "string", "enum": ["operational", "temporarily_closed", "permanently_closed", "unknown"]}),
        ),
        ("open_now", nullable(json!({"type": "boolean"}))),
        (
            "hours",
            nullable(object(&[
                (
                    "periods",
                    json!({"type": "array", "items": string(), "description": "`mon 11:00-14:00`, `fri 18:00-sat 02:00`, `sun 00:00-` (around the clock)"}),
                ),
                (
                    "week",
                    json!({"type": "array", "items": object(&[
                        ("day", json!({"type": "integer", "minimum": 0, "maximum": 6})),
                        ("label_ja", string()),
                        ("label_en", string()),
                        ("text", string()),
                    ])}),
                ),
                ("notes", json!({"type": "array", "items": string()})),
            ])),
        ),
        ("phone", s()),
        ("website", s()),
        ("description", s()),
        ("features", json!({"type": "array", "items": string()})),
        ("google_place_id", s()),
        ("google_maps_url", s()),
        ("sources", json!({"type": "array", "items": string()})),
        (
            "updated_at",
            json!({"type": "string", "format": "date-time"}),
        ),
        ("demo", json!({"type": "boolean"})),
        (
            "distance_m",
            nullable(json!({"type": "number", "minimum": 0})),
        ),
    ];
    if with_location {
        props.push((
            "location",
            nullable(object(&[
                (
                    "lat",
                    json!({"type": "number", "minimum": -90, "maximum": 90}),
                ),
                (
                    "lng",
                    json!({"type": "number", "minimum": -180, "maximum": 180}),
                ),
            ])),
        ));
    }
    object(&props)
}

fn schemas() -> Value {
    let count = || json!({"type": "integer", "minimum": 0});
    let counts =
        || json!({"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}});
    let version = || json!({"type": "integer", "minimum": 0});
    let codes: Vec<&str> = ERROR_CODES.iter().map(|c| c.0).collect();
    json!({
        "Error": object(&[
            ("error", json!({"type": "string", "enum": codes})),
            ("field", nullable(string())),
            ("message", string()),
        ]),
        "Place": place_schema(true),
        "PlaceList": object(&[
            ("places", json!({"type": "array", "items": {"$ref": "#/components/schemas/Place"}})),
            ("total", nullable(count())),
            ("next_cursor", nullable(string())),
            ("data_version", version()),
        ]),
        "PlaceFeatureCollection": object(&[
            ("type", json!({"type": "string", "enum": ["FeatureCollection"]})),
            ("features", json!({"type": "array", "items": object(&[
                ("type", json!({"type": "string", "enum": ["Feature"]})),
                ("id", json!({"type": "integer", "format": "int64"})),
                ("geometry", nullable(object(&[
                    ("type", json!({"type": "string", "enum": ["Point"]})),
                    ("coordinates", json!({"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2})),
                ]))),
                ("properties", place_schema(false)),
            ])})),
            ("total", nullable(count())),
            ("next_cursor", nullable(string())),
            ("data_version", version()),
        ]),
        "GeoJsonExport": object(&[
            ("type", json!({"type": "string", "enum": ["FeatureCollection"]})),
            ("features", json!({"type": "array", "items": {"type": "object"}})),
        ]),
        "Districts": object(&[
            ("districts", json!({"type": "array", "items": object(&[
                ("name", string()),
                ("kana", nullable(string())),
                ("former_municipality", nullable(string())),
                ("centroid", nullable(object(&[("lat", json!({"type": "number"})), ("lng", json!({"type": "number"}))]))),
                ("count", count()),
            ])})),
            ("unknown", count()),
            ("outside", count()),
            ("data_version", version()),
        ]),
        "Cuisines": object(&[
            ("cuisines", json!({"type": "array", "items": object(&[
                ("id", string()),
                ("label_ja", string()),
                ("label_en", string()),
                ("marker_group", string()),
                ("count", count()),
            ])})),
            ("marker_groups", json!({"type": "array", "items": string()})),
            ("data_version", version()),
        ]),
        "Stats": object(&[
            ("total", count()),
            ("data_version", version()),
            ("by_kind", counts()),
            ("by_district", counts()),
            ("unknown_district", count()),
            ("outside", count()),
            ("by_cuisine", counts()),
            ("index_bytes", count()),
        ]),
        "ImportRequest": {
            "type": "object",
            "required": ["path"],
            "additionalProperties": false,
            "properties": {
                "path": {"type": "string", "minLength": 1, "description": "A file on the server."},
                "format": {"type": "string", "enum": ["csv", "geojson", "osm-pbf", "overpass", "jsonl"]},
                "kind": {"type": "string", "enum": ["restaurant", "parking", "toilet"]},
            },
        },
        "Job": object(&[
            ("id", json!({"type": "integer", "minimum": 1})),
            ("kind", json!({"type": "string", "enum": ["import"]})),
            ("state", json!({"type": "string", "enum": ["queued", "running", "succeeded", "failed"]})),
            ("files", json!({"type": "array", "items": string()})),
            ("created_at", json!({"type": "string", "format": "date-time"})),
            ("finished_at", nullable(json!({"type": "string", "format": "date-time"}))),
            ("report", nullable(object(&[
                ("read", count()), ("inserted", count()), ("updated", count()),
                ("unchanged", count()), ("id_conflicts", count()),
            ]))),
            ("error", nullable(string())),
            ("href", string()),
        ]),
        "SupervisorOverview": object(&[
            ("generated_at", json!({"type": "string", "format": "date-time"})),
            ("status", json!({"type": "object", "description": "Services, their instances (state, restarts and the last reason, probe history with latency, CPU and memory), desired replicas, queue depth and forecast error."})),
            ("events", json!({"type": "array", "items": {"type": "object"}, "description": "Recent restarts, failures, scaling decisions and protective-mode changes, oldest first."})),
            ("queues", json!({"type": "array", "items": {"type": "object"}, "description": "Each queue's ready, scheduled, running and dead jobs."})),
        ]),
        "RestartAccepted": object(&[("accepted", string())]),
        "JobList": object(&[("jobs", json!({"type": "array", "items": {"$ref": "#/components/schemas/Job"}}))]),
        "Health": object(&[("status", json!({"type": "string", "enum": ["ok"]}))]),
        "Ready": object(&[
            ("status", json!({"type": "string", "enum": ["ready"]})),
            ("places", count()),
            ("data_version", version()),
            ("store_data_version", version()),
        ]),
    })
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// A 200 with a JSON body, the conditional-request headers, and the error answers.
fn data_op(summary: &str, content: Value, params: Vec<Value>) -> Value {
    json!({
        "summary": summary,
        "parameters": params,
        "responses": {
            "200": {
                "description": "OK",
                "headers": {
                    "ETag": {"schema": {"type": "string"}},
                    "Cache-Control": {"schema": {"type": "string"}},
                },
                "content": content,
            },
            "304": {"description": "Not modified (If-None-Match matched the ETag)"},
            "400": {"description": "A bad parameter, named in `field`", "content": {"application/json": {"schema": schema_ref("Error")}}},
            "default": {"description": "An error", "content": {"application/json": {"schema": schema_ref("Error")}}},
        },
    })
}

fn simple_op(summary: &str, content: Value) -> Value {
    let mut op = data_op(summary, content, Vec::new());
    if let Some(r) = op["responses"].as_object_mut() {
        r.remove("304");
        if let Some(h) = r.get_mut("200").and_then(|v| v.as_object_mut()) {
            h.remove("headers");
        }
    }
    op
}

fn json_of(name: &str) -> Value {
    json!({"application/json": {"schema": schema_ref(name)}})
}

fn path_param(name: &str, schema: Value) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": schema})
}

fn admin(mut op: Value) -> Value {
    op["security"] = json!([{"bearerAuth": []}]);
    if let Some(r) = op["responses"].as_object_mut() {
        for (code, what) in [
            ("401", "No bearer token"),
            ("403", "Wrong token, or admin is off"),
        ] {
            r.insert(
                code.into(),
                json!({"description": what, "content": json_of("Error")}),
            );
        }
    }
    op
}

/// The document.
pub fn document() -> Value {
    let places = data_op(
        "Places matching every given filter, one page",
        json!({
            "application/json": {"schema": schema_ref("PlaceList")},
            "application/geo+json": {"schema": schema_ref("PlaceFeatureCollection")},
        }),
        PLACES.iter().map(param).collect(),
    );
    let id_param = path_param(
        "id",
        json!({"type": "integer", "format": "int64", "minimum": i64::MIN, "maximum": i64::MAX}),
    );
    let mut place = data_op("One place", json_of("Place"), vec![id_param]);
    place["responses"]["404"] =
        json!({"description": "No such place", "content": json_of("Error")});
    let mut csv = data_op(
        "Every place of one kind in the original sheet layout (CSV)",
        json!({"text/csv; charset=utf-8": {"schema": {"type": "string"}}}),
        vec![path_param(
            "kind",
            json!({"type": "string", "enum": ["restaurant", "parking", "toilet"]}),
        )],
    );
    csv["responses"]["404"] = json!({"description": "No such export", "content": json_of("Error")});
    let mut import = admin(simple_op(
        "Import a file on the server in the background",
        json_of("Job"),
    ));
    if let Some(r) = import["responses"].as_object_mut() {
        let accepted = r.remove("200").unwrap_or(Value::Null);
        r.insert("202".into(), accepted);
        r["202"]["description"] = json!("Accepted: the job runs; poll the link in Location");
        r["202"]["headers"] = json!({"Location": {"schema": {"type": "string"}}});
    }
    import["requestBody"] = json!({"required": true, "content": json_of("ImportRequest")});
    let mut job = admin(simple_op("One job", json_of("Job")));
    job["parameters"] = json!([path_param(
        "id",
        json!({"type": "integer", "minimum": 1, "maximum": u64::MAX})
    )]);
    let mut sup_status = admin(simple_op(
        "The supervisor running this server: services, probe history, restarts, queues, scaling",
        json_of("SupervisorOverview"),
    ));
    sup_status["responses"]["404"] =
        json!({"description": "Not run by `sadomap up`", "content": json_of("Error")});
    sup_status["responses"]["503"] =
        json!({"description": "The supervisor did not answer", "content": json_of("Error")});
    let mut sup_restart = admin(simple_op(
        "Restart a service one instance at a time (api: one side at a time)",
        json_of("RestartAccepted"),
    ));
    if let Some(r) = sup_restart["responses"].as_object_mut() {
        let accepted = r.remove("200").unwrap_or(Value::Null);
        r.insert("202".into(), accepted);
        r["202"]["description"] = json!("Accepted: the restart runs");
        r.insert("404".into(), json!({"description": "Unknown service, or not run by `sadomap up`", "content": json_of("Error")}));
        r.insert(
            "503".into(),
            json!({"description": "The supervisor did not answer", "content": json_of("Error")}),
        );
    }
    sup_restart["parameters"] = json!([path_param(
        "service",
        json!({"type": "string", "minLength": 1})
    )]);
    let mut ready = simple_op("Store reachable and index loaded", json_of("Ready"));
    ready["responses"]["503"] = json!({"description": "Not ready", "content": json_of("Error")});
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "sadomap",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Restaurants, parking lots and public toilets of Sado Island. Errors are {error, field, message}; every bad parameter answers 400 naming it; data responses carry an ETag and honour If-None-Match; clients are rate limited (429 with Retry-After).",
        },
        "paths": {
            "/v1/places": {"get": places},
            "/v1/places/{id}": {"get": place},
            "/v1/districts": {"get": data_op("Districts with place counts", json_of("Districts"), vec![])},
            "/v1/cuisines": {"get": data_op("Cuisines with marker groups and counts", json_of("Cuisines"), vec![])},
            "/v1/stats": {"get": data_op("Counts by kind, district and cuisine", json_of("Stats"), vec![])},
            "/v1/export.geojson": {"get": data_op("Every place as GeoJSON", json!({"application/geo+json": {"schema": schema_ref("GeoJsonExport")}}), vec![])},
            "/v1/export/{kind}.csv": {"get": csv},
            "/v1/admin/imports": {"post": import},
            "/v1/admin/jobs": {"get": admin(simple_op("Jobs, newest first", json_of("JobList")))},
            "/v1/admin/jobs/{id}": {"get": job},
            "/v1/admin/status": {"get": sup_status},
            "/v1/admin/services/{service}/restart": {"post": sup_restart},
            "/admin/status": {"get": simple_op("The supervisor's live status page (its data needs the admin token)", json!({"text/html; charset=utf-8": {"schema": {"type": "string"}}}))},
            "/health": {"get": simple_op("The process is alive", json_of("Health"))},
            "/ready": {"get": ready},
            "/metrics": {"get": simple_op("Prometheus metrics", json!({"text/plain; version=0.0.4; charset=utf-8": {"schema": {"type": "string"}}}))},
            "/openapi.json": {"get": simple_op("This document", json!({"application/json": {"schema": {"type": "object"}}}))},
            "/": {"get": simple_op("The map page", json!({"text/html; charset=utf-8": {"schema": {"type": "string"}}}))},
        },
        "components": {
            "schemas": schemas(),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_described_with_its_parameters() {
        let doc = document();
        for (method, path) in ROUTES {
            assert!(doc["paths"][path][method].is_object(), "{method} {path}");
        }
        assert_eq!(doc["paths"].as_object().unwrap().len(), ROUTES.len());
        let names: Vec<&str> = doc["paths"]["/v1/places"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(names, PLACES.iter().map(|p| p.name).collect::<Vec<_>>());
    }
}
