//! Helpers shared by the contract tests.

#![allow(dead_code)]

use apache_avro::types::Value as Avro;
use serde_json::{Map, Value as Json};
use switchboard_events::hex;

/// apache-avro's decoded value as the JSON our types serialize to: records as objects, unions
/// unwrapped, bytes and fixed as hex, enums as their symbols, uuids as text.
pub fn avro_to_json(value: &Avro) -> Json {
    match value {
        Avro::Null => Json::Null,
        Avro::Boolean(b) => Json::Bool(*b),
        Avro::Int(n) => Json::from(*n),
        Avro::Long(n) | Avro::TimestampMicros(n) => Json::from(*n),
        Avro::String(s) => Json::String(s.clone()),
        Avro::Uuid(u) => Json::String(u.hyphenated().to_string()),
        Avro::Bytes(b) | Avro::Fixed(_, b) => Json::String(hex::encode(b)),
        Avro::Enum(_, symbol) => Json::String(symbol.clone()),
        Avro::Union(_, inner) => avro_to_json(inner),
        Avro::Array(items) => Json::Array(items.iter().map(avro_to_json).collect()),
        Avro::Map(map) => {
            let mut keys: Vec<_> = map.keys().collect();
            keys.sort();
            Json::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), avro_to_json(&map[k])))
                    .collect(),
            )
        }
        Avro::Record(fields) => Json::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), avro_to_json(v)))
                .collect::<Map<_, _>>(),
        ),
        other => panic!("the contract uses no {other:?}"),
    }
}

/// Whether every key of `expected` is in `actual` with an equal value (recursively): what an
/// older golden file promises of a newer decoder, which may add fields with defaults.
pub fn json_contains(actual: &Json, expected: &Json) -> bool {
    match (actual, expected) {
        (Json::Object(a), Json::Object(e)) => e
            .iter()
            .all(|(k, ev)| a.get(k).is_some_and(|av| json_contains(av, ev))),
        (Json::Array(a), Json::Array(e)) => {
            a.len() == e.len() && a.iter().zip(e).all(|(av, ev)| json_contains(av, ev))
        }
        _ => actual == expected,
    }
}
