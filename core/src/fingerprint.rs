//! A stable fingerprint of bytes (64-bit FNV-1a, as hex): the same on every machine and in
//! every version, so it can name things that are stored (a config's text, a stored
//! environment). Not a defence against a crafted collision: users of it compare contents where
//! a collision would matter.

/// The fingerprint of `bytes`: 16 lowercase hex digits.
pub fn fingerprint(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_fnv1a_64() {
        // Reference values of FNV-1a 64: what journals already hold must keep its name.
        assert_eq!(fingerprint(b""), "cbf29ce484222325");
        assert_eq!(fingerprint(b"a"), "af63dc4c8601ec8c");
        assert_eq!(fingerprint(b"foobar"), "85944171f73967e8");
    }
}
