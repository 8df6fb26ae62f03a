//! Small, stable hash functions. Scripted failures, embeddings and pull digests must be the same
//! on every platform and Rust version, so nothing here uses `std`'s (unspecified) hashers.

/// SplitMix64's output function applied to `x` (Steele, Lea & Flood 2014): `splitmix64(0)` is
/// `0xE220A8397B1DCDAF`, the first output of the SplitMix64 generator seeded with 0.
pub(crate) const fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Maps a hash to `[0, 1)` using its top 53 bits (every value exactly representable).
pub(crate) fn unit_interval(hash: u64) -> f64 {
    (hash >> 11) as f64 / (1_u64 << 53) as f64
}

/// 64-bit FNV-1a of `bytes`.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// A unit-length vector of `dimensions` components derived from `text` alone.
pub(crate) fn embedding(text: &str, dimensions: usize) -> Vec<f32> {
    let base = fnv1a64(text.as_bytes());
    let raw: Vec<f64> = (0..dimensions as u64)
        .map(|index| unit_interval(splitmix64(base.wrapping_add(index))) * 2.0 - 1.0)
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm == 0.0 {
        // Practically unreachable (every component would have to hash to exactly 0.5), but a
        // unit vector is promised.
        let mut unit = vec![0.0; dimensions];
        if let Some(first) = unit.first_mut() {
            *first = 1.0;
        }
        return unit;
    }
    raw.into_iter().map(|x| (x / norm) as f32).collect()
}

/// A `sha256:`-style digest of 64 hex digits derived from `name`, for pull progress.
pub(crate) fn digest(name: &str) -> String {
    let base = fnv1a64(name.as_bytes());
    let hex: String = (0..4)
        .map(|index| format!("{:016x}", splitmix64(base.wrapping_add(index))))
        .collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_generator() {
        // Reference outputs of SplitMix64 seeded with 0: state advances by the golden gamma.
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(0x9E37_79B9_7F4A_7C15), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn fnv1a64_matches_the_reference() {
        assert_eq!(fnv1a64(b""), 0xCBF2_9CE4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xAF63_DC4C_8601_EC8C);
    }

    #[test]
    fn unit_interval_stays_below_one() {
        assert_eq!(unit_interval(0), 0.0);
        assert!(unit_interval(u64::MAX) < 1.0);
    }

    #[test]
    fn embeddings_are_unit_length_and_depend_on_the_text() {
        let a = embedding("hello", 16);
        assert_eq!(a.len(), 16);
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
        assert_eq!(a, embedding("hello", 16));
        assert_ne!(a, embedding("hello!", 16));
        assert!(embedding("x", 0).is_empty());
    }

    #[test]
    fn digests_look_like_sha256() {
        let digest = digest("codellama");
        assert_eq!(digest.len(), "sha256:".len() + 64);
        assert!(digest.starts_with("sha256:"));
        assert!(digest[7..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(digest, super::digest("llama2"));
    }
}
