//! The contract files in `schemas/` and the Rust decoder cannot drift apart.

use std::path::{Path, PathBuf};

use perfect_order::domain::event::KNOWN_TYPES;
use perfect_order::domain::{decode, Decoded, RejectReason};
use serde_json::Value;

fn schemas() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn validator(path: &Path) -> jsonschema::Validator {
    jsonschema::validator_for(&read_json(path))
        .unwrap_or_else(|e| panic!("compile {}: {e}", path.display()))
}

/// Whether the event passes the envelope schema and the schema of its type's data.
fn schema_accepts(event: &Value) -> bool {
    let envelope = validator(&schemas().join("cloudevent.schema.json"));
    if !envelope.is_valid(event) {
        return false;
    }
    let type_name = event["type"].as_str().unwrap_or_default();
    let data_schema = schemas()
        .join("data")
        .join(format!("{type_name}.schema.json"));
    !data_schema.exists() || validator(&data_schema).is_valid(&event["data"])
}

fn example(type_name: &str) -> Value {
    read_json(&schemas().join("examples").join(format!("{type_name}.json")))
}

fn decodes(event: &Value) -> Result<Decoded, RejectReason> {
    decode(event.to_string().as_bytes()).map_err(|r| r.reason)
}

#[test]
fn every_example_validates_against_its_schemas_and_decodes() {
    for type_name in KNOWN_TYPES {
        let event = example(type_name);
        assert!(
            schema_accepts(&event),
            "{type_name} example fails its schema"
        );
        match decodes(&event) {
            Ok(Decoded::Known(e)) => assert_eq!(e.kind.type_name(), type_name),
            other => panic!("{type_name} example does not decode: {other:?}"),
        }
    }
}

#[test]
fn required_fields_of_the_schemas_are_exactly_the_ones_the_decoder_requires() {
    for type_name in KNOWN_TYPES {
        let schema = read_json(
            &schemas()
                .join("data")
                .join(format!("{type_name}.schema.json")),
        );
        let required: Vec<&str> = schema["required"]
            .as_array()
            .expect("required list")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let properties = schema["properties"].as_object().expect("properties");
        for field in properties.keys() {
            let mut event = example(type_name);
            event["data"]
                .as_object_mut()
                .expect("data object")
                .remove(field);
            let must_fail = required.contains(&field.as_str());
            assert_eq!(
                schema_accepts(&event),
                !must_fail,
                "schema of {type_name} without {field}"
            );
            match decodes(&event) {
                Err(RejectReason::MissingField) if must_fail => {}
                Ok(Decoded::Known(_)) if !must_fail => {}
                other => panic!("decoder on {type_name} without {field}: {other:?}"),
            }
        }
    }
}

#[test]
fn envelope_attributes_required_by_the_schema_are_required_by_the_decoder() {
    let schema = read_json(&schemas().join("cloudevent.schema.json"));
    for field in schema["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(Value::as_str)
    {
        let mut event = example("order.created");
        event.as_object_mut().expect("object").remove(field);
        assert!(
            !schema_accepts(&event),
            "schema accepts an event without {field}"
        );
        assert!(
            decodes(&event).is_err(),
            "decoder accepts an event without {field}"
        );
    }
}

#[test]
fn invalid_examples_are_rejected_by_schema_and_decoder_for_the_named_reason() {
    let dir = schemas().join("examples").join("invalid");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("invalid examples") {
        let path = entry.expect("entry").path();
        let event = read_json(&path);
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("name")
            .to_owned();
        assert!(!schema_accepts(&event), "schema accepts {stem}");
        let expected = match stem.as_str() {
            "bad_money" | "bad_rating" => RejectReason::BadValue,
            other => *RejectReason::ALL
                .iter()
                .find(|r| r.as_str() == other)
                .unwrap_or_else(|| panic!("{other} names no reason")),
        };
        assert_eq!(decodes(&event).err(), Some(expected), "{stem}");
        seen += 1;
    }
    assert!(seen >= 4);
}

#[test]
fn asyncapi_document_names_every_type_and_every_file_it_references_exists() {
    let text = std::fs::read_to_string(schemas().join("asyncapi.yaml")).expect("asyncapi.yaml");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("valid YAML");
    assert_eq!(doc["asyncapi"].as_str(), Some("3.0.0"));
    let messages = doc["components"]["messages"]
        .as_mapping()
        .expect("messages");
    let names: Vec<&str> = messages
        .values()
        .filter_map(|m| m["name"].as_str())
        .collect();
    for type_name in KNOWN_TYPES {
        assert!(
            names.contains(&type_name),
            "asyncapi.yaml lacks {type_name}"
        );
    }
    for line in text.lines() {
        if let Some((_, rest)) = line.split_once("$ref: './") {
            let file = rest.trim_end_matches(['\'', '}', ' ']);
            assert!(
                schemas().join(file).exists(),
                "asyncapi.yaml references missing {file}"
            );
        }
    }
}

/// Binary content mode: the headers the AsyncAPI document requires are the envelope
/// attributes the schema requires, each with the `ce_` prefix; every example sent in binary
/// mode is read as the same event; without any required header it is rejected.
#[test]
fn binary_mode_headers_follow_the_envelope_schema_and_each_example_reads_the_same_in_both_modes() {
    use perfect_order::batch::{prepare_record, Entry, Record};
    use perfect_order::domain::contract::binding::to_binary;
    let text = std::fs::read_to_string(schemas().join("asyncapi.yaml")).expect("asyncapi.yaml");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("valid YAML");
    let modes = doc["components"]["messageTraits"]["cloudEventsKafkaBinding"]["headers"]["oneOf"]
        .as_sequence()
        .expect("the binding's two modes");
    let binary = modes
        .iter()
        .find(|m| m["title"].as_str() == Some("binary mode"))
        .expect("binary mode");
    let mut headers: Vec<String> = binary["required"]
        .as_sequence()
        .expect("required headers")
        .iter()
        .filter_map(|h| h.as_str().map(str::to_owned))
        .collect();
    let envelope = read_json(&schemas().join("cloudevent.schema.json"));
    let mut attributes: Vec<String> = envelope["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(Value::as_str)
        .filter(|a| *a != "data")
        .map(|a| format!("ce_{a}"))
        .collect();
    headers.sort();
    attributes.sort();
    assert_eq!(headers, attributes);

    let read = |headers: Vec<(String, Vec<u8>)>, value: Vec<u8>| {
        let record = Record {
            topic: "shop.orders".into(),
            partition: 0,
            offset: 0,
            key: None,
            payload: Some(value),
            headers,
        };
        prepare_record(record, &perfect_order::domain::Limits::unbounded())
    };
    for type_name in KNOWN_TYPES {
        let structured = example(type_name).to_string().into_bytes();
        let (headers, value) = to_binary(&structured).expect("an object");
        let both = [
            read(Vec::new(), structured.clone()),
            read(headers.clone(), value.clone()),
        ];
        match both {
            [Entry::Known { event: a, .. }, Entry::Known { event: b, .. }] => {
                assert_eq!(a, b, "{type_name}")
            }
            other => panic!("{type_name} does not read in both modes: {other:?}"),
        }
        for required in &attributes {
            let without: Vec<_> = headers
                .iter()
                .filter(|(k, _)| k != required)
                .cloned()
                .collect();
            assert!(
                matches!(read(without, value.clone()), Entry::Rejected { .. }),
                "{type_name} in binary mode without {required} is read"
            );
        }
    }
}
