//! Container IDs: 64 lowercase hex digits from the kernel's random source, shown as 12.

/// The random source failed.
#[derive(Debug, thiserror::Error)]
#[error("reading random bytes for a container ID: {0}")]
pub struct IdError(getrandom::Error);

/// A new container ID: 32 random bytes as 64 hex digits. Like docker, an ID whose short form
/// is all digits is drawn again, so that the short form never reads as a number.
pub fn new_id() -> Result<String, IdError> {
    loop {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(IdError)?;
        let id = hex::encode(bytes);
        if !short_id(&id).bytes().all(|b| b.is_ascii_digit()) {
            return Ok(id);
        }
    }
}

/// The 12-digit form `berth ps` shows.
pub fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Whether `s` is a full ID: 64 lowercase hex digits.
pub fn is_full_id(s: &str) -> bool {
    s.len() == 64 && is_hex(s)
}

/// Whether `s` is non-empty lowercase hex (could be an ID prefix).
pub fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex_and_distinct() {
        let a = new_id().expect("id");
        let b = new_id().expect("id");
        assert!(is_full_id(&a), "{a}");
        assert_ne!(a, b);
        assert_eq!(short_id(&a).len(), 12);
        assert!(!short_id(&a).bytes().all(|b| b.is_ascii_digit()));
    }

    #[test]
    fn hex_checks() {
        assert!(is_hex("0af9"));
        assert!(!is_hex("0AF9"));
        assert!(!is_hex("abc%"));
        assert!(!is_hex(""));
        assert!(!is_full_id("abc"));
    }
}
