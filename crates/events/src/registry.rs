//! The schemas of every event, as the registry serves them.
//!
//! `schemas/avro/manifest.json` lists every subject (TopicRecordNameStrategy:
//! `<topic>-<record full name>`) and every version of it, each with a schema id that never
//! changes, the `.avsc` file of the record and the files of the shared records it references
//! (envelope, actor, sealed value). The registry inlines the references, so each version is
//! one self-contained schema that standard Avro tooling can use as it is, and checks that a
//! published version has not been edited since (its canonical form's SHA-256 is in the
//! manifest).
//!
//! The files are embedded at build time and parsed once, on first use.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use apache_avro::Schema;
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::agent::AgentPayload;
use crate::conversation::ConversationPayload;
use crate::event::{Payload, Topic};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/schema_files.rs"));
}

/// The compatibility rule between all versions of a subject.
pub const COMPATIBILITY: &str = "FULL_TRANSITIVE";

/// Why a set of schema files is not a valid registry.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RegistryError {
    #[error("schema file {0} is missing")]
    MissingFile(String),
    #[error("manifest is invalid: {0}")]
    Manifest(String),
    #[error("schema {file} is invalid: {reason}")]
    Schema { file: String, reason: String },
    #[error("schema {file} refers to unknown type {name}")]
    UnknownType { file: String, name: String },
    #[error("schema id {0} is used twice")]
    DuplicateId(u32),
    #[error("subject {subject} has version {found} where version {expected} was expected")]
    VersionGap {
        subject: String,
        expected: u32,
        found: u32,
    },
    #[error("{topic} has no event kind {record}")]
    UnknownRecord { topic: String, record: String },
    #[error("event kind {record} of {topic} has no schema")]
    MissingRecord { topic: String, record: String },
    #[error(
        "published schema {subject} version {version} was changed: fingerprint {found}, manifest says {expected}"
    )]
    Changed {
        subject: String,
        version: u32,
        expected: String,
        found: String,
    },
    #[error(
        "{subject} version {newer} is not {COMPATIBILITY} compatible with version {older}: {reason}"
    )]
    Incompatible {
        subject: String,
        older: u32,
        newer: u32,
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    compatibility: String,
    subject_name_strategy: String,
    subjects: Vec<ManifestSubject>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestSubject {
    topic: String,
    record: String,
    versions: Vec<ManifestVersion>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestVersion {
    version: u32,
    id: u32,
    file: String,
    references: Vec<String>,
    fingerprint: String,
}

/// One version of one subject.
#[derive(Debug)]
pub struct SchemaVersion {
    pub id: u32,
    /// `<topic>-<record full name>`.
    pub subject: String,
    pub topic: Topic,
    pub record: String,
    pub version: u32,
    /// The self-contained schema, references inlined, as JSON text.
    pub schema_json: String,
    pub schema: Schema,
    /// SHA-256 of the schema's Parsing Canonical Form, lowercase hex.
    pub fingerprint: String,
    /// The fingerprint the manifest records ("" for a version not yet published).
    pub published_fingerprint: String,
    /// Index of the record among its topic's [`Payload::RECORDS`].
    pub kind_index: usize,
    pub file: String,
}

/// All schema versions of every subject.
pub struct Registry {
    versions: Vec<SchemaVersion>,
    by_id: HashMap<u32, usize>,
    by_subject: HashMap<String, Vec<usize>>,
    /// Per topic, per kind index: the id of the newest version, which encoders write.
    latest: HashMap<Topic, Vec<u32>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("versions", &self.versions.len())
            .finish_non_exhaustive()
    }
}

static EMBEDDED: LazyLock<Registry> = LazyLock::new(|| {
    // apache-avro only decodes data of older schema versions here; bound what it may allocate
    // to the largest frame we accept.
    apache_avro::util::max_allocation_bytes(crate::codec::MAX_FRAME_LEN);
    Registry::from_files(embedded::FILES)
        .unwrap_or_else(|e| panic!("the schemas built into this binary are invalid: {e}"))
});

/// The registry built from the schemas in `schemas/avro` at build time. The crate's tests prove
/// those schemas valid, so a failure here is a build defect and panics with its reason.
pub fn registry() -> &'static Registry {
    &EMBEDDED
}

fn records_of(topic: Topic) -> &'static [&'static str] {
    match topic {
        Topic::Conversations => ConversationPayload::RECORDS,
        Topic::Agents => AgentPayload::RECORDS,
    }
}

impl Registry {
    /// Builds a registry from `(path, content)` pairs: `manifest.json` and the `.avsc` files it
    /// names, paths relative to the schema root.
    pub fn from_files(files: &[(&str, &str)]) -> Result<Self, RegistryError> {
        let file = |name: &str| {
            files
                .iter()
                .find(|(path, _)| *path == name)
                .map(|(_, content)| *content)
                .ok_or_else(|| RegistryError::MissingFile(name.to_owned()))
        };
        let manifest: Manifest = serde_json::from_str(file("manifest.json")?)
            .map_err(|e| RegistryError::Manifest(e.to_string()))?;
        if manifest.compatibility != COMPATIBILITY
            || manifest.subject_name_strategy != "TopicRecordNameStrategy"
        {
            return Err(RegistryError::Manifest(format!(
                "expected {COMPATIBILITY} and TopicRecordNameStrategy, found {} and {}",
                manifest.compatibility, manifest.subject_name_strategy
            )));
        }

        let mut registry = Registry {
            versions: Vec::new(),
            by_id: HashMap::new(),
            by_subject: HashMap::new(),
            latest: HashMap::new(),
        };
        for subject in &manifest.subjects {
            let topic = Topic::from_name(&subject.topic).ok_or_else(|| {
                RegistryError::Manifest(format!("unknown topic {}", subject.topic))
            })?;
            let kind_index = records_of(topic)
                .iter()
                .position(|r| *r == subject.record)
                .ok_or_else(|| RegistryError::UnknownRecord {
                    topic: subject.topic.clone(),
                    record: subject.record.clone(),
                })?;
            let subject_name = format!("{}-{}", subject.topic, subject.record);
            for (i, v) in subject.versions.iter().enumerate() {
                let expected = i as u32 + 1;
                if v.version != expected {
                    return Err(RegistryError::VersionGap {
                        subject: subject_name,
                        expected,
                        found: v.version,
                    });
                }
                let schema_json = inline_references(&v.file, file(&v.file)?, &v.references, &file)?;
                let schema =
                    Schema::parse_str(&schema_json).map_err(|e| RegistryError::Schema {
                        file: v.file.clone(),
                        reason: e.to_string(),
                    })?;
                let parsed_name = match &schema {
                    Schema::Record(record) => record.name.fullname(None),
                    _ => String::new(),
                };
                if parsed_name != subject.record {
                    return Err(RegistryError::Schema {
                        file: v.file.clone(),
                        reason: format!(
                            "defines {parsed_name:?}, the manifest says {}",
                            subject.record
                        ),
                    });
                }
                let fingerprint = crate::hex::encode(&Sha256::digest(schema.canonical_form()));
                if !v.fingerprint.is_empty() && v.fingerprint != fingerprint {
                    return Err(RegistryError::Changed {
                        subject: subject_name,
                        version: v.version,
                        expected: v.fingerprint.clone(),
                        found: fingerprint,
                    });
                }
                let index = registry.versions.len();
                if registry.by_id.insert(v.id, index).is_some() {
                    return Err(RegistryError::DuplicateId(v.id));
                }
                registry
                    .by_subject
                    .entry(subject_name.clone())
                    .or_default()
                    .push(index);
                registry.versions.push(SchemaVersion {
                    id: v.id,
                    subject: subject_name.clone(),
                    topic,
                    record: subject.record.clone(),
                    version: v.version,
                    schema_json,
                    schema,
                    fingerprint,
                    published_fingerprint: v.fingerprint.clone(),
                    kind_index,
                    file: v.file.clone(),
                });
            }
            if let Some(newest) = registry
                .by_subject
                .get(&subject_name)
                .and_then(|v| v.last())
            {
                let ids = registry
                    .latest
                    .entry(topic)
                    .or_insert_with(|| vec![0; records_of(topic).len()]);
                ids[kind_index] = registry.versions[*newest].id;
            }
        }
        for topic in Topic::ALL {
            let ids = registry
                .latest
                .entry(topic)
                .or_insert_with(|| vec![0; records_of(topic).len()]);
            if let Some(missing) = ids.iter().position(|id| *id == 0) {
                return Err(RegistryError::MissingRecord {
                    topic: topic.name().to_owned(),
                    record: records_of(topic)[missing].to_owned(),
                });
            }
        }
        Ok(registry)
    }

    /// Every version of every subject, in manifest order.
    pub fn versions(&self) -> &[SchemaVersion] {
        &self.versions
    }

    pub fn by_id(&self, id: u32) -> Option<&SchemaVersion> {
        self.by_id.get(&id).map(|&i| &self.versions[i])
    }

    /// The subjects, in manifest order.
    pub fn subjects(&self) -> impl Iterator<Item = &str> {
        let mut seen = HashSet::new();
        self.versions
            .iter()
            .map(|v| v.subject.as_str())
            .filter(move |s| seen.insert(*s))
    }

    /// The versions of a subject, oldest first.
    pub fn subject_versions(&self, subject: &str) -> Option<impl Iterator<Item = &SchemaVersion>> {
        self.by_subject
            .get(subject)
            .map(|ids| ids.iter().map(|&i| &self.versions[i]))
    }

    pub fn version(&self, subject: &str, version: u32) -> Option<&SchemaVersion> {
        self.subject_versions(subject)?
            .find(|v| v.version == version)
    }

    /// The id encoders write for a kind of a topic: its newest version.
    pub fn latest_id(&self, topic: Topic, kind_index: usize) -> Option<u32> {
        self.latest.get(&topic)?.get(kind_index).copied()
    }

    pub(crate) fn is_latest(&self, version: &SchemaVersion) -> bool {
        self.latest_id(version.topic, version.kind_index) == Some(version.id)
    }

    /// Checks that every version of every subject can read, and be read by, every other
    /// version of it (FULL_TRANSITIVE).
    pub fn check_compatibility(&self) -> Result<(), RegistryError> {
        for indices in self.by_subject.values() {
            for (i, &older) in indices.iter().enumerate() {
                for &newer in &indices[i + 1..] {
                    let (a, b) = (&self.versions[older], &self.versions[newer]);
                    check_pair(&a.schema, &b.schema).map_err(|reason| {
                        RegistryError::Incompatible {
                            subject: a.subject.clone(),
                            older: a.version,
                            newer: b.version,
                            reason,
                        }
                    })?;
                }
            }
        }
        Ok(())
    }
}

/// Whether two versions of a record can each read data written with the other.
pub fn check_pair(older: &Schema, newer: &Schema) -> Result<(), String> {
    match SchemaCompatibility::mutual_read(older, newer) {
        Ok(Compatibility::Full) => Ok(()),
        Ok(Compatibility::Partial) => Err("resolution may fail for some values".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

const PRIMITIVES: [&str; 8] = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];
const NAMED: [&str; 4] = ["record", "error", "enum", "fixed"];

/// Replaces references to the shared named types by their definitions, at first use, so that
/// the schema stands alone.
fn inline_references<'a>(
    file_name: &str,
    content: &str,
    references: &[String],
    file: &impl Fn(&str) -> Result<&'a str, RegistryError>,
) -> Result<String, RegistryError> {
    let parse = |name: &str, text: &str| {
        serde_json::from_str::<Value>(text).map_err(|e| RegistryError::Schema {
            file: name.to_owned(),
            reason: e.to_string(),
        })
    };
    let mut definitions = HashMap::new();
    for reference in references {
        let value = parse(reference, file(reference)?)?;
        let name = full_name(&value, None).ok_or_else(|| RegistryError::Schema {
            file: reference.clone(),
            reason: "a referenced schema must be a named type".to_owned(),
        })?;
        definitions.insert(name, value);
    }
    let root = parse(file_name, content)?;
    let mut defined = HashSet::new();
    let inlined = inline(&root, None, &definitions, &mut defined, file_name)?;
    Ok(inlined.to_string())
}

fn full_name(value: &Value, enclosing: Option<&str>) -> Option<String> {
    let name = value.get("name")?.as_str()?;
    if name.contains('.') {
        return Some(name.to_owned());
    }
    let namespace = value.get("namespace").and_then(Value::as_str).or(enclosing);
    Some(match namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}.{name}"),
        _ => name.to_owned(),
    })
}

fn namespace_of(full: &str) -> Option<&str> {
    full.rsplit_once('.').map(|(ns, _)| ns)
}

fn inline(
    value: &Value,
    namespace: Option<&str>,
    definitions: &HashMap<String, Value>,
    defined: &mut HashSet<String>,
    file: &str,
) -> Result<Value, RegistryError> {
    match value {
        Value::String(name) if PRIMITIVES.contains(&name.as_str()) => Ok(value.clone()),
        Value::String(name) => {
            let full = match (name.contains('.'), namespace) {
                (false, Some(ns)) => format!("{ns}.{name}"),
                _ => name.clone(),
            };
            if defined.contains(&full) {
                return Ok(Value::String(full));
            }
            let definition = definitions
                .get(&full)
                .ok_or_else(|| RegistryError::UnknownType {
                    file: file.to_owned(),
                    name: full.clone(),
                })?;
            inline(definition, namespace_of(&full), definitions, defined, file)
        }
        Value::Array(branches) => branches
            .iter()
            .map(|branch| inline(branch, namespace, definitions, defined, file))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::Object(object) => {
            let mut object = object.clone();
            let kind = object
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if NAMED.contains(&kind.as_str()) {
                let full = full_name(value, namespace).ok_or_else(|| RegistryError::Schema {
                    file: file.to_owned(),
                    reason: format!("a {kind} needs a name"),
                })?;
                defined.insert(full.clone());
                let inner_ns = namespace_of(&full).map(str::to_owned);
                if let Some(Value::Array(fields)) = object.get_mut("fields") {
                    for field in fields {
                        if let Some(ty) = field.get("type") {
                            let ty = inline(ty, inner_ns.as_deref(), definitions, defined, file)?;
                            field["type"] = ty;
                        }
                    }
                }
                return Ok(Value::Object(object));
            }
            for key in ["type", "items", "values"] {
                if let Some(inner) = object.get(key) {
                    if key == "type"
                        && inner
                            .as_str()
                            .is_some_and(|t| PRIMITIVES.contains(&t) || t == "array" || t == "map")
                    {
                        continue;
                    }
                    let inlined = inline(inner, namespace, definitions, defined, file)?;
                    object.insert(key.to_owned(), inlined);
                }
            }
            Ok(Value::Object(object))
        }
        other => Err(RegistryError::Schema {
            file: file.to_owned(),
            reason: format!("unexpected {other} in a type position"),
        }),
    }
}
