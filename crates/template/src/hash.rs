//! `guid()` and `uniqueString()` exactly as ARM computes them (reference §5.4): UUIDv5 under ARM's namespace, and
//! ARM's 64-bit MurmurHash variant printed as 13 base-32 characters. Both join their arguments with `-`.

use uuid::Uuid;

/// ARM's namespace for `guid()`.
const GUID_NAMESPACE: Uuid = Uuid::from_u128(0x11fb06fb_712d_4ddd_98c7_e71bbd588830);

/// `guid(args...)`: a name-based (SHA-1, version 5) UUID of the arguments joined with `-`, lowercase.
pub fn arm_guid(parts: &[&str]) -> String {
    Uuid::new_v5(&GUID_NAMESPACE, parts.join("-").as_bytes()).hyphenated().to_string()
}

/// `uniqueString(args...)`: 13 characters of `[a-z2-7]`.
pub fn unique_string(parts: &[&str]) -> String {
    let data = parts.join("-");
    let hash = murmur64(data.as_bytes());
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut bits = hash;
    let mut out = String::with_capacity(13);
    for _ in 0..13 {
        out.push(ALPHABET[(bits >> 59) as usize & 31] as char);
        bits <<= 5;
    }
    out
}

fn le_u32(bytes: &[u8]) -> u32 {
    bytes.iter().rev().fold(0u32, |acc, b| (acc << 8) | u32::from(*b))
}

fn murmur64(data: &[u8]) -> u64 {
    const C1: u32 = 0x239b_961b;
    const C2: u32 = 0xab0e_9789;
    let (mut h1, mut h2) = (0u32, 0u32);
    let mut i = 0;
    while i + 7 < data.len() {
        let mut k1 = le_u32(&data[i..i + 4]);
        let mut k2 = le_u32(&data[i + 4..i + 8]);
        k1 = k1.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h1 ^= k1;
        h1 = h1.rotate_left(19).wrapping_add(h2).wrapping_mul(5).wrapping_add(0x561c_cd1b);
        k2 = k2.wrapping_mul(C2).rotate_left(17).wrapping_mul(C1);
        h2 ^= k2;
        h2 = h2.rotate_left(13).wrapping_add(h1).wrapping_mul(5).wrapping_add(0x0bca_a747);
        i += 8;
    }
    let tail = data.len() - i;
    if tail > 0 {
        let k1 = le_u32(&data[i..i + tail.min(4)]);
        h1 ^= k1.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        if tail > 4 {
            let k2 = le_u32(&data[i + 4..i + tail]);
            h2 ^= k2.wrapping_mul(C2).rotate_left(17).wrapping_mul(C1);
        }
    }
    // The length enters as a 32-bit value, as in ARM's implementation.
    let len = data.len() as u32;
    h1 ^= len;
    h2 ^= len;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix(h1);
    h2 = fmix(h2);
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    (u64::from(h2) << 32) | u64::from(h1)
}

fn fmix(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_matches_arm() {
        // Engine-verified vector (bicep baselines_bicepparam/Expressions).
        assert_eq!(arm_guid(&["asdf"]), "228d27cc-6fdb-5934-b7ac-1efccebade04");
        assert_eq!(arm_guid(&["a", "b", "c"]), "a98fa280-e03f-5afa-8d8e-92d0a9c201e8");
        assert_eq!(arm_guid(&["test"]), "d6a5baf1-8b9b-542a-8525-2982f1f98a0c");
    }

    #[test]
    fn unique_string_matches_arm() {
        // Engine-verified vector.
        assert_eq!(unique_string(&["asd", "asdf", "asdf"]), "iizpqit7ih3cc");
        assert_eq!(unique_string(&["test"]), "rbgf3xv4ufgzg");
        assert_eq!(unique_string(&["hello", "world"]), "a7wkljktk6wne");
        assert_eq!(unique_string(&["abc"]), "cgtzqvhu4i23s");
        assert_eq!(
            unique_string(&[
                "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/my-rg"
            ]),
            "bmg7c6xu4tw46"
        );
        assert_eq!(unique_string(&["foo", "bar", "baz"]), "xzi4ioaxtmth4");
    }

    #[test]
    fn unique_string_shape() {
        for input in ["", "a", "abcdefgh", "abcdefghi", "ünïcödé"] {
            let s = unique_string(&[input]);
            assert_eq!(s.len(), 13);
            assert!(s.chars().all(|c| c.is_ascii_lowercase() || ('2'..='7').contains(&c)), "{s}");
        }
    }
}
