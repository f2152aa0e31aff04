//! Container names: checked as docker checks them, and generated as `adjective_surname`.

/// Adjectives for generated names.
const ADJECTIVES: &[&str] = &[
    "amber", "ancient", "bold", "brave", "bright", "calm", "clever", "cosmic", "crisp", "curious",
    "daring", "eager", "fearless", "gentle", "golden", "happy", "humble", "jolly", "keen", "kind",
    "lively", "lucid", "merry", "mighty", "nimble", "noble", "patient", "placid", "proud", "quiet",
    "rapid", "serene", "sharp", "steady", "sunny", "swift", "tender", "tidy", "vivid", "witty",
];

/// Surnames (scientists, engineers, seafarers) for generated names.
const SURNAMES: &[&str] = &[
    "ada",
    "agnesi",
    "babbage",
    "bell",
    "bohr",
    "boole",
    "cerf",
    "curie",
    "darwin",
    "dijkstra",
    "euler",
    "faraday",
    "fermi",
    "franklin",
    "galileo",
    "gauss",
    "hamilton",
    "hopper",
    "hypatia",
    "johnson",
    "kepler",
    "knuth",
    "lamarr",
    "liskov",
    "lovelace",
    "maxwell",
    "meitner",
    "newton",
    "noether",
    "pascal",
    "planck",
    "ritchie",
    "shannon",
    "somerville",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "volta",
    "wozniak",
];

/// A random `adjective_surname`; from the second retry on, a digit is appended (as docker
/// does) so that a crowded namespace still converges.
pub fn generate(retry: u32) -> String {
    let adjective = ADJECTIVES[random_below(ADJECTIVES.len())];
    let surname = SURNAMES[random_below(SURNAMES.len())];
    if retry > 0 {
        return format!("{adjective}_{surname}{}", random_below(10));
    }
    format!("{adjective}_{surname}")
}

/// A random index below `n`, from the kernel (a failure falls back to the clock: a name only
/// has to be unlikely to collide, and a collision is retried).
fn random_below(n: usize) -> usize {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        bytes[..4].copy_from_slice(&nanos.to_le_bytes());
    }
    (u64::from_le_bytes(bytes) % n as u64) as usize
}

/// Whether `name` is a valid container name: docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, with an
/// optional leading `/` (stripped by [`normalize`]).
pub fn is_valid(name: &str) -> bool {
    let name = normalize(name);
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    let rest: Vec<u8> = bytes.collect();
    first_ok
        && !rest.is_empty()
        && rest
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The name without docker's leading `/`.
pub fn normalize(name: &str) -> &str {
    name.strip_prefix('/').unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_valid() {
        for retry in 0..50 {
            let name = generate(retry);
            assert!(is_valid(&name), "{name}");
            assert!(name.contains('_'));
        }
    }

    #[test]
    fn validity() {
        assert!(is_valid("web-1"));
        assert!(is_valid("/web.1_a"));
        assert!(!is_valid("a"));
        assert!(!is_valid("-web"));
        assert!(!is_valid("web/1"));
        assert!(!is_valid(""));
    }
}
