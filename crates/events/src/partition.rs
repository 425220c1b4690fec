//! Kafka's default key → partition mapping.
//!
//! The Java client hashes the serialized key with murmur2 (seed `0x9747b28c`), clears the
//! sign bit and takes the remainder by the partition count. librdkafka's default partitioner
//! differs (`consistent_random`, CRC32), so every producer of ours — the Kafka adapter sets
//! `partitioner=murmur2_random` and the embedded log calls [`partition_for_key`] — must agree
//! with this function bit for bit, or a conversation's events would split across partitions.

/// murmur2 as implemented by `org.apache.kafka.common.utils.Utils.murmur2`.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    let length = data.len() as u32;
    let mut h: u32 = SEED ^ length;

    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }

    // The Java implementation mixes the tail with signed bytes widened to int and masked.
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }

    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner picks for `key` among `partitions`.
///
/// # Panics
/// Never: a partition count of zero is a configuration error the callers reject before they
/// get here, and it maps to partition 0 rather than dividing by zero.
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    if partitions == 0 {
        return 0;
    }
    ((murmur2(key) & 0x7fff_ffff) as u32) % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors of Kafka's own `UtilsTest.testMurmur2`.
    #[test]
    fn murmur2_matches_the_java_client() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (key, expected) in cases {
            assert_eq!(
                murmur2(key),
                expected,
                "key {:?}",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn partition_is_the_positive_hash_modulo_the_count() {
        // toPositive(-790332482) = 1357151166; 1357151166 % 12 = 6
        assert_eq!(partition_for_key(b"foobar", 12), 1_357_151_166 % 12);
        assert_eq!(partition_for_key(b"abc", 7), 479_470_107 % 7);
        assert_eq!(partition_for_key(b"", 1), 0);
        assert_eq!(partition_for_key(b"anything", 0), 0);
    }
}
