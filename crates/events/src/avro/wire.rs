//! Avro binary encoding, written by hand for the types of this crate.
//!
//! The hot path (every append, every projection, every live delivery) encodes and decodes
//! events, so it does not build apache-avro's generic `Value` tree. The bytes are the same:
//! tests decode what this module writes with apache-avro against the `.avsc` files and
//! re-encode it, byte for byte.
//!
//! The reader trusts nothing. Every length is checked against what is left of the input
//! before anything is allocated, so a hostile frame can neither panic the decoder nor make it
//! allocate more than the frame's own size.

use std::collections::BTreeMap;

use crate::error::DecodeError;

/// The most elements an array or map of ours may hold.
pub const MAX_ITEMS: usize = 4096;

/// Something that has an Avro binary encoding under the schema of its field.
pub trait Datum: Sized {
    fn write(&self, out: &mut Vec<u8>);
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

pub fn write_long(out: &mut Vec<u8>, value: i64) {
    let mut n = ((value << 1) ^ (value >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

pub fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_long(out, bytes.len() as i64);
    out.extend_from_slice(bytes);
}

/// A cursor over one datum.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn finish(self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(DecodeError::TrailingBytes { extra }),
        }
    }

    pub fn read_long(&mut self) -> Result<i64, DecodeError> {
        let mut n: u64 = 0;
        for i in 0..10 {
            let byte = *self.buf.get(self.pos).ok_or(DecodeError::Truncated)?;
            self.pos += 1;
            if i == 9 && byte > 1 {
                return Err(DecodeError::VarintOverflow);
            }
            n |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(((n >> 1) as i64) ^ -((n & 1) as i64));
            }
        }
        Err(DecodeError::VarintOverflow)
    }

    pub fn read_int(&mut self) -> Result<i32, DecodeError> {
        let n = self.read_long()?;
        i32::try_from(n).map_err(|_| DecodeError::IntOutOfRange(n))
    }

    /// A length prefix, checked against the input that is left.
    fn read_len(&mut self) -> Result<usize, DecodeError> {
        let n = self.read_long()?;
        let len = usize::try_from(n).map_err(|_| DecodeError::NegativeLength(n))?;
        if len > self.remaining() {
            return Err(DecodeError::Truncated);
        }
        Ok(len)
    }

    pub fn read_fixed<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let end = self.pos.checked_add(N).ok_or(DecodeError::Truncated)?;
        let slice = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    pub fn read_byte_slice(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.read_len()?;
        let slice = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(slice)
    }

    pub fn read_str(&mut self) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.read_byte_slice()?).map_err(|_| DecodeError::InvalidUtf8)
    }

    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        match self.read_fixed::<1>()? {
            [0] => Ok(false),
            [1] => Ok(true),
            [b] => Err(DecodeError::InvalidBool(b)),
        }
    }

    /// A union branch index or enum symbol index below `count`.
    pub fn read_index(&mut self, count: usize) -> Result<usize, DecodeError> {
        let n = self.read_long()?;
        usize::try_from(n)
            .ok()
            .filter(|&i| i < count)
            .ok_or(DecodeError::InvalidIndex { index: n, count })
    }

    /// Reads the blocks of an array or map: `item` is called once per element. Writers may
    /// split a collection into several blocks and give a block's byte size with a negative
    /// count; both forms are accepted.
    pub fn read_blocks(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<(), DecodeError>,
    ) -> Result<(), DecodeError> {
        let mut total = 0usize;
        loop {
            let mut count = self.read_long()?;
            if count == 0 {
                return Ok(());
            }
            if count < 0 {
                count = count.checked_neg().ok_or(DecodeError::VarintOverflow)?;
                let _block_bytes = self.read_len()?;
            }
            let count = usize::try_from(count).map_err(|_| DecodeError::NegativeLength(count))?;
            total = total.saturating_add(count);
            // Every element of ours takes at least one byte, so a count beyond the input is a lie.
            if total > MAX_ITEMS || count > self.remaining() {
                return Err(DecodeError::TooManyItems {
                    count: total,
                    max: MAX_ITEMS,
                });
            }
            for _ in 0..count {
                item(self)?;
            }
        }
    }
}

impl Datum for i64 {
    fn write(&self, out: &mut Vec<u8>) {
        write_long(out, *self);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_long()
    }
}

impl Datum for i32 {
    fn write(&self, out: &mut Vec<u8>) {
        write_long(out, i64::from(*self));
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_int()
    }
}

impl Datum for bool {
    fn write(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_bool()
    }
}

impl Datum for String {
    fn write(&self, out: &mut Vec<u8>) {
        write_bytes(out, self.as_bytes());
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_str().map(str::to_owned)
    }
}

impl<const N: usize> Datum for [u8; N] {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_fixed()
    }
}

/// `["null", T]`: null is the first branch, so that the field can default to null.
impl<T: Datum> Datum for Option<T> {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(value) => {
                out.push(2); // zigzag(1)
                value.write(out);
            }
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.read_index(2)? {
            0 => Ok(None),
            _ => T::read(r).map(Some),
        }
    }
}

impl<T: Datum> Datum for Vec<T> {
    fn write(&self, out: &mut Vec<u8>) {
        if !self.is_empty() {
            write_long(out, self.len() as i64);
            for item in self {
                item.write(out);
            }
        }
        out.push(0);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut items = Vec::new();
        r.read_blocks(|r| {
            items.push(T::read(r)?);
            Ok(())
        })?;
        Ok(items)
    }
}

/// Avro maps, written in key order so that the encoding of a value is canonical (the hash
/// chain depends on it).
impl Datum for BTreeMap<String, String> {
    fn write(&self, out: &mut Vec<u8>) {
        if !self.is_empty() {
            write_long(out, self.len() as i64);
            for (key, value) in self {
                key.write(out);
                value.write(out);
            }
        }
        out.push(0);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut map = BTreeMap::new();
        r.read_blocks(|r| {
            let key = String::read(r)?;
            let value = String::read(r)?;
            if map.insert(key, value).is_some() {
                return Err(DecodeError::DuplicateMapKey);
            }
            Ok(())
        })?;
        Ok(map)
    }
}

/// Implements [`Datum`] for a record whose Avro fields are the listed Rust fields, in order.
macro_rules! record {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        impl $crate::avro::wire::Datum for $ty {
            #[allow(unused_variables)]
            fn write(&self, out: &mut Vec<u8>) {
                $( $crate::avro::wire::Datum::write(&self.$field, out); )*
            }
            #[allow(unused_variables)]
            fn read(
                r: &mut $crate::avro::wire::Reader<'_>,
            ) -> Result<Self, $crate::error::DecodeError> {
                Ok(Self { $( $field: $crate::avro::wire::Datum::read(r)?, )* })
            }
        }
    };
}

/// Implements [`Datum`] for a fieldless enum whose Avro symbols are its variants, in order.
macro_rules! symbols {
    ($ty:ident { $($variant:ident),* $(,)? }) => {
        impl $ty {
            const ALL: &'static [$ty] = &[$($ty::$variant),*];
        }
        impl $crate::avro::wire::Datum for $ty {
            fn write(&self, out: &mut Vec<u8>) {
                let index = Self::ALL.iter().position(|v| v == self).unwrap_or(0);
                $crate::avro::wire::write_long(out, index as i64);
            }
            fn read(
                r: &mut $crate::avro::wire::Reader<'_>,
            ) -> Result<Self, $crate::error::DecodeError> {
                Ok(Self::ALL[r.read_index(Self::ALL.len())?])
            }
        }
    };
}

pub(crate) use {record, symbols};

#[cfg(test)]
mod tests {
    use super::*;

    fn long_bytes(value: i64) -> Vec<u8> {
        let mut out = Vec::new();
        write_long(&mut out, value);
        out
    }

    #[test]
    fn longs_are_zigzag_varints() {
        assert_eq!(long_bytes(0), [0x00]);
        assert_eq!(long_bytes(-1), [0x01]);
        assert_eq!(long_bytes(1), [0x02]);
        assert_eq!(long_bytes(-64), [0x7f]);
        assert_eq!(long_bytes(64), [0x80, 0x01]);
        for value in [i64::MIN, i64::MAX, 0, 300, -300] {
            let bytes = long_bytes(value);
            let mut r = Reader::new(&bytes);
            assert_eq!(r.read_long().unwrap(), value);
            r.finish().unwrap();
        }
    }

    #[test]
    fn overlong_varints_are_refused() {
        let bytes = [0xffu8; 11];
        assert_eq!(
            Reader::new(&bytes).read_long(),
            Err(DecodeError::VarintOverflow)
        );
        let bytes = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(
            Reader::new(&bytes).read_long(),
            Err(DecodeError::VarintOverflow)
        );
    }

    #[test]
    fn a_length_beyond_the_input_is_refused_before_allocating() {
        let mut bytes = long_bytes(1 << 40);
        bytes.extend_from_slice(b"abc");
        assert_eq!(Reader::new(&bytes).read_str(), Err(DecodeError::Truncated));
        let bytes = long_bytes(-5);
        assert_eq!(
            Reader::new(&bytes).read_str(),
            Err(DecodeError::NegativeLength(-5))
        );
    }

    #[test]
    fn arrays_in_several_blocks_with_byte_sizes_are_read() {
        // Two blocks: [1] as a plain block, then [2, 3] with a negative count and byte size.
        let mut bytes = long_bytes(1);
        bytes.extend(long_bytes(1));
        bytes.extend(long_bytes(-2));
        bytes.extend(long_bytes(2));
        bytes.extend(long_bytes(2));
        bytes.extend(long_bytes(3));
        bytes.push(0);
        let mut r = Reader::new(&bytes);
        assert_eq!(Vec::<i64>::read(&mut r).unwrap(), vec![1, 2, 3]);
        r.finish().unwrap();
    }

    #[test]
    fn a_huge_item_count_is_refused() {
        let mut bytes = long_bytes(1 << 30);
        bytes.extend_from_slice(&[2; 16]);
        let err = Vec::<i64>::read(&mut Reader::new(&bytes)).unwrap_err();
        assert!(matches!(err, DecodeError::TooManyItems { .. }), "{err:?}");
    }

    #[test]
    fn maps_are_written_in_key_order_and_refuse_duplicate_keys() {
        let map: BTreeMap<String, String> =
            [("b".into(), "2".into()), ("a".into(), "1".into())].into();
        let mut out = Vec::new();
        map.write(&mut out);
        assert_eq!(
            out,
            [0x04, 0x02, b'a', 0x02, b'1', 0x02, b'b', 0x02, b'2', 0x00]
        );

        let dup = [0x04, 0x02, b'a', 0x02, b'1', 0x02, b'a', 0x02, b'2', 0x00];
        let err = BTreeMap::<String, String>::read(&mut Reader::new(&dup)).unwrap_err();
        assert_eq!(err, DecodeError::DuplicateMapKey);
    }

    #[test]
    fn bools_and_unions_reject_out_of_range_values() {
        assert_eq!(
            Reader::new(&[2]).read_bool(),
            Err(DecodeError::InvalidBool(2))
        );
        let err = Option::<i64>::read(&mut Reader::new(&[4])).unwrap_err();
        assert_eq!(err, DecodeError::InvalidIndex { index: 2, count: 2 });
    }
}
