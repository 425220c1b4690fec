//! The customers' data keys of the embedded store, wrapped under the configured KEK.
//!
//! A row of `data_keys` is `[version][state][…]`: `wrapped` holds a [`WrappedKey`], `erased`
//! nothing. Stores written before keys were wrapped hold `live` rows with the 32 key bytes in
//! clear; they are read, and at the first open with a KEK rewrapped and compacted away.
//!
//! `keks` holds one check value per KEK id the store has wrapped under. Open refuses a KEK
//! that does not open its check value. When the current KEK is new to the store (first open,
//! a rotation), every row not wrapped under it is rewrapped in one synced commit, the other
//! check values are dropped and the table is compacted: after that start the previous KEK
//! may leave the configuration.

use fjall::{AbstractTree, PersistMode};
use switchboard_events::id::{CustomerId, TenantId};
use switchboard_events::personal::DataKey;

use super::{Inner, engine_error, schema};
use crate::StoreError;
use crate::codec;
use crate::key_record::{HeldKey, KeyRecord};
use crate::keywrap::{self, KeyWrap, WrappedKey, key_context};

const KEY_LIVE: u8 = 1;
const KEY_ERASED: u8 = 2;
const KEY_WRAPPED: u8 = 3;

/// A stored row, decoded but not yet unwrapped.
enum Row {
    /// Written before wrapping: the key in clear.
    Clear(DataKey),
    Wrapped(WrappedKey),
    Erased,
}

fn decode_row(bytes: &[u8]) -> Result<Row, StoreError> {
    match bytes {
        [codec::VERSION, KEY_LIVE, key @ ..] => {
            let key: [u8; 32] = key.try_into().map_err(|_| {
                StoreError::corrupt("data_keys", format!("key is {} bytes", key.len()))
            })?;
            Ok(Row::Clear(DataKey::from_bytes(key)))
        }
        [codec::VERSION, KEY_WRAPPED, wrapped @ ..] => Ok(Row::Wrapped(
            WrappedKey::decode(wrapped).map_err(|e| StoreError::corrupt("data_keys", e))?,
        )),
        [codec::VERSION, KEY_ERASED] => Ok(Row::Erased),
        _ => Err(StoreError::corrupt("data_keys", "unknown value layout")),
    }
}

fn encode_wrapped(wrapped: &WrappedKey) -> Vec<u8> {
    let mut value = vec![codec::VERSION, KEY_WRAPPED];
    value.extend_from_slice(&wrapped.encode());
    value
}

/// `(tenant, customer)` from a row key of `data_keys`.
fn owner(key: &[u8]) -> Result<Vec<u8>, StoreError> {
    // The row key is `tenant NUL customer NUL`; the wrapping context is `tenant NUL customer`.
    match key.split_last() {
        Some((0, context)) => Ok(context.to_vec()),
        _ => Err(StoreError::corrupt(
            "data_keys",
            "key without its separator",
        )),
    }
}

/// The key of a stored row, opened with the KEK.
pub(super) fn decode_data_key(
    inner: &Inner,
    tenant: &TenantId,
    customer: &CustomerId,
    bytes: &[u8],
) -> Result<Option<DataKey>, StoreError> {
    match decode_row(bytes)? {
        Row::Clear(key) => Ok(Some(key)),
        Row::Erased => Ok(None),
        Row::Wrapped(wrapped) => Ok(Some(
            inner.kek.unwrap(&wrapped, &key_context(tenant, customer))?,
        )),
    }
}

/// Checks the KEK against the store, and rewraps under it what it did not wrap yet.
pub(super) fn open(inner: &Inner) -> Result<(), StoreError> {
    let kek: &dyn KeyWrap = &*inner.kek;
    let mut current_known = false;
    let mut others = Vec::new();
    for row in inner.t.keks.iter() {
        let (id, check) = row.map_err(engine_error("read the kek checks"))?;
        let checked = keywrap::verify_check(kek, &check)?;
        if checked.as_bytes() != &*id {
            return Err(StoreError::corrupt(
                "keks",
                "a check value under another id",
            ));
        }
        let id = checked;
        if id == kek.current_id() {
            current_known = true;
        } else {
            others.push(id);
        }
    }
    if current_known && others.is_empty() {
        return Ok(());
    }
    let mut commit = inner
        .keyspace
        .batch()
        .durability(Some(PersistMode::SyncAll));
    let mut rewrapped = 0usize;
    for row in inner.t.data_keys.iter() {
        let (key, value) = row.map_err(engine_error("scan the data keys"))?;
        let context = owner(&key)?;
        let clear = match decode_row(&value)? {
            Row::Erased => continue,
            Row::Wrapped(wrapped) if wrapped.kek_id == kek.current_id() => continue,
            Row::Wrapped(wrapped) => kek.unwrap(&wrapped, &context)?,
            Row::Clear(key) => key,
        };
        commit.insert(
            &inner.t.data_keys,
            key,
            encode_wrapped(&kek.wrap(&clear, &context)?),
        );
        rewrapped += 1;
    }
    let check = keywrap::make_check(kek)?;
    commit.insert(&inner.t.keks, kek.current_id().as_bytes(), check.encode());
    for id in others {
        commit.remove(&inner.t.keks, id.as_bytes());
    }
    commit
        .commit()
        .map_err(engine_error("rewrap the data keys"))?;
    if rewrapped > 0 {
        purge(inner)?;
    }
    Ok(())
}

pub(super) fn create_data_key(
    inner: &Inner,
    tenant: &TenantId,
    customer: &CustomerId,
) -> Result<DataKey, StoreError> {
    let key = schema::data_key(tenant.as_str(), customer.as_str());
    if let Some(stored) = inner
        .t
        .data_keys
        .get(&key)
        .map_err(engine_error("read a data key"))?
    {
        return decode_data_key(inner, tenant, customer, &stored)?.ok_or_else(|| {
            StoreError::KeyErased {
                tenant: tenant.to_string(),
                customer: customer.to_string(),
            }
        });
    }
    let data_key = DataKey::generate().map_err(|e| StoreError::Backend {
        operation: "generate a data key",
        reason: e.to_string(),
        retriable: true,
    })?;
    let wrapped = inner.kek.wrap(&data_key, &key_context(tenant, customer))?;
    let mut commit = inner
        .keyspace
        .batch()
        .durability(Some(PersistMode::SyncAll));
    commit.insert(&inner.t.data_keys, key, encode_wrapped(&wrapped));
    commit.commit().map_err(engine_error("store a data key"))?;
    Ok(data_key)
}

/// Overwrites the key with an erasure marker, synced, then purges the wrapped key from the
/// files: see [`purge`].
pub(super) fn destroy_data_key(
    inner: &Inner,
    tenant: &TenantId,
    customer: &CustomerId,
) -> Result<(), StoreError> {
    let key = schema::data_key(tenant.as_str(), customer.as_str());
    let mut commit = inner
        .keyspace
        .batch()
        .durability(Some(PersistMode::SyncAll));
    commit.insert(&inner.t.data_keys, key, [codec::VERSION, KEY_ERASED]);
    commit.commit().map_err(engine_error("erase a data key"))?;
    purge(inner)
}

/// Leaves no replaced data key in any file: every table's memtable is flushed, so the
/// journals that hold the replaced rows are fully persisted and deleted, and the key tables
/// are compacted into one run without the old versions. Costly (a flush of every table), and
/// run only on erasure and rewrapping, which are rare.
fn purge(inner: &Inner) -> Result<(), StoreError> {
    for table in inner.t.all() {
        table
            .rotate_memtable_and_wait()
            .map_err(engine_error("flush a table"))?;
    }
    // The flush worker deletes a fully flushed journal just after it reports the flush done.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while inner.keyspace.journal_count() > 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // fjall's own major compaction keeps every version older than its snapshot watermark,
    // which only moves with transactions (this store has none): so the tree is compacted
    // here with the current instant as the watermark. Nothing reads these tables through a
    // snapshot, and the writer lock is held, so no reader needs a replaced version.
    let watermark = inner.keyspace.instant();
    for table in [&inner.t.data_keys, &inner.t.keks] {
        table
            .tree
            .major_compact(u64::MAX, watermark)
            .map_err(|e| engine_error("compact the data keys")(e.into()))?;
    }
    Ok(())
}

/// What is held of a customer's key, unwrapped.
pub(super) fn held_key(
    inner: &Inner,
    tenant: &TenantId,
    customer: &CustomerId,
) -> Result<HeldKey, StoreError> {
    let key = schema::data_key(tenant.as_str(), customer.as_str());
    let Some(stored) = inner
        .t
        .data_keys
        .get(key)
        .map_err(engine_error("read a data key"))?
    else {
        return Ok(HeldKey::Unknown);
    };
    Ok(match decode_data_key(inner, tenant, customer, &stored)? {
        Some(key) => HeldKey::Key(key),
        None => HeldKey::Erased,
    })
}

/// Key records folded, and reads waiting for one.
#[derive(Debug, Default)]
pub(super) struct Folds {
    count: u64,
    pub(super) waiting: usize,
}

/// A key read when the keys are shared: one not held yet is waited for, up to `wait`, as
/// records are folded; still unknown then, it reads as absent.
pub(super) fn await_key(
    inner: &Inner,
    tenant: &TenantId,
    customer: &CustomerId,
    wait: std::time::Duration,
) -> Result<Option<DataKey>, StoreError> {
    let deadline = std::time::Instant::now() + wait;
    let mut folds = inner.folds.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        // Read under the lock: a fold that lands after this read bumps the count, so the
        // wait below cannot miss it.
        let seen = folds.count;
        match held_key(inner, tenant, customer)? {
            HeldKey::Key(key) => return Ok(Some(key)),
            HeldKey::Erased => return Ok(None),
            HeldKey::Unknown => {}
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        folds.waiting += 1;
        folds = inner
            .folded
            .wait_timeout_while(folds, left, |folds| folds.count == seen)
            .unwrap_or_else(|p| p.into_inner())
            .0;
        folds.waiting -= 1;
    }
}

pub(super) fn refuse_when_shared(inner: &Inner) -> Result<(), StoreError> {
    match inner.shared_keys.get() {
        None => Ok(()),
        Some(_) => Err(StoreError::invalid(
            "this store's data keys come from the shared keys topic: make and erase them there",
        )),
    }
}

pub(super) fn key_offset(
    inner: &Inner,
    topic: &str,
    partition: u32,
) -> Result<Option<u64>, StoreError> {
    inner
        .t
        .checkpoints
        .get(schema::key_offset(topic, partition))
        .map_err(engine_error("read a keys topic offset"))?
        .map(|v| super::read::offset(&v))
        .transpose()
}

/// Folds one key record: see [`super::EmbeddedStore::fold_key_record`]. The caller holds the
/// writer lock.
pub(super) fn fold(
    inner: &Inner,
    topic: &str,
    partition: u32,
    offset: u64,
    (tenant, customer): (&TenantId, &CustomerId),
    record: &KeyRecord,
) -> Result<(), StoreError> {
    let row = schema::data_key(tenant.as_str(), customer.as_str());
    let held = inner
        .t
        .data_keys
        .get(&row)
        .map_err(engine_error("read a data key"))?;
    let held = held.as_deref().map(decode_row).transpose()?;
    let mut commit = inner
        .keyspace
        .batch()
        .durability(Some(PersistMode::SyncAll));
    let mut erased = false;
    match (held, record) {
        // Erased stays erased; a customer's first key stays theirs.
        (Some(Row::Erased), _) | (Some(_), KeyRecord::Wrapped(_)) => {}
        (None, KeyRecord::Wrapped(wrapped)) => {
            // A key this process cannot open (another KEK) must stop the fold, not be kept.
            let context = key_context(tenant, customer);
            let clear = inner.kek.unwrap(wrapped, &context)?;
            let wrapped = if wrapped.kek_id == inner.kek.current_id() {
                wrapped.clone()
            } else {
                inner.kek.wrap(&clear, &context)?
            };
            commit.insert(&inner.t.data_keys, row, encode_wrapped(&wrapped));
        }
        (_, KeyRecord::Erased) => {
            commit.insert(&inner.t.data_keys, row, [codec::VERSION, KEY_ERASED]);
            erased = true;
        }
    }
    commit.insert(
        &inner.t.checkpoints,
        schema::key_offset(topic, partition),
        (offset + 1).to_be_bytes(),
    );
    commit.commit().map_err(engine_error("fold a key record"))?;
    if erased {
        purge(inner)?;
    }
    let mut folds = inner.folds.lock().unwrap_or_else(|p| p.into_inner());
    folds.count += 1;
    inner.folded.notify_all();
    Ok(())
}
