//! Lock keys as file names: deterministic, distinct for distinct keys, always one plain name.

/// Longest encoded key kept as is; longer ones are cut and suffixed with a hash.
const MAX_ENCODED: usize = 200;
const KEPT_WHEN_CUT: usize = 180;

/// `<encoded key>.lock`. Bytes outside `[A-Za-z0-9_.-]` (and a leading `.`) become `%XX`,
/// so `/`, `:` and `@` are safe and no two keys share a name. An encoding longer than
/// [`MAX_ENCODED`] is cut and given `~` plus a stable hash of the whole key (`~` never appears
/// in an uncut encoding, so cut names cannot collide with uncut ones).
pub(crate) fn lock_file_name(key: &str) -> String {
    let mut encoded = String::with_capacity(key.len());
    for (index, byte) in key.bytes().enumerate() {
        let plain =
            byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' || (byte == b'.' && index > 0);
        if plain {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    if encoded.len() > MAX_ENCODED {
        encoded.truncate(KEPT_WHEN_CUT);
        encoded.push_str(&format!("~{:016x}", fnv1a(key.as_bytes())));
    }
    encoded.push_str(".lock");
    encoded
}

/// FNV-1a, 64 bits: stable across Rust versions, unlike `DefaultHasher`, so every engine
/// version agrees on a key's file.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_keys_stay_readable() {
        assert_eq!(lock_file_name("web"), "web.lock");
        assert_eq!(lock_file_name("web.service"), "web.service.lock");
        assert_eq!(lock_file_name("a_b-c"), "a_b-c.lock");
    }

    #[test]
    fn separators_are_escaped() {
        assert_eq!(lock_file_name("unit/web"), "unit%2Fweb.lock");
        assert_eq!(lock_file_name("me@host:web"), "me%40host%3Aweb.lock");
        assert_eq!(lock_file_name("100%"), "100%25.lock");
        assert_eq!(lock_file_name("é"), "%C3%A9.lock");
    }

    #[test]
    fn no_key_makes_a_dot_name() {
        assert_eq!(lock_file_name(".."), "%2E..lock");
        assert_eq!(lock_file_name("."), "%2E.lock");
        assert_eq!(lock_file_name(""), ".lock");
    }

    #[test]
    fn distinct_keys_get_distinct_names() {
        let keys = ["a/b", "a:b", "a@b", "a%2Fb", "a_b", "a.b", "a-b", "ab", ""];
        let mut names: Vec<String> = keys.iter().map(|k| lock_file_name(k)).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), keys.len());
    }

    #[test]
    fn long_keys_are_cut_with_a_stable_hash() {
        let long = "x/".repeat(300);
        let other = format!("{long}y");
        let name = lock_file_name(&long);
        assert!(name.len() <= 255, "{}", name.len());
        assert_eq!(name, lock_file_name(&long));
        assert_ne!(name, lock_file_name(&other));
        assert!(name.ends_with(".lock"));
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
