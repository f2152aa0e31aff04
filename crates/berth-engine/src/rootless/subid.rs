//! The user's subordinate id ranges (/etc/subuid, /etc/subgid) and the id maps built on them.

use std::path::Path;

use crate::containers::userns::parse_subid;

/// A subordinate id range: `count` ids from `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First host id.
    pub start: u32,
    /// How many ids.
    pub count: u32,
}

/// The ranges of `file` (`name:start:count` lines, the name or the numeric id) for a user.
pub fn ranges(file: &Path, name: &str, id: u32) -> Vec<Range> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    parse(&text, name, id)
}

fn parse(text: &str, name: &str, id: u32) -> Vec<Range> {
    let id = id.to_string();
    parse_subid(text)
        .into_iter()
        .filter(|e| e.owner == name || e.owner == id)
        .map(|e| Range {
            start: e.start,
            count: e.count,
        })
        .collect()
}

/// newuidmap/newgidmap's arguments after the pid: 0 -> `own` (size 1), then the ranges from
/// id 1 upward, back to back.
pub fn map_args(own: u32, ranges: &[Range]) -> Vec<String> {
    let mut args = vec!["0".to_string(), own.to_string(), "1".to_string()];
    let mut inside: u32 = 1;
    for r in ranges {
        args.extend([inside.to_string(), r.start.to_string(), r.count.to_string()]);
        inside = inside.saturating_add(r.count);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_match_name_or_uid() {
        let text = "alice:100000:65536\nbob:200000:10\n1000:300000:5\nbad line\n";
        assert_eq!(
            parse(text, "alice", 1000),
            vec![
                Range {
                    start: 100000,
                    count: 65536
                },
                Range {
                    start: 300000,
                    count: 5
                }
            ]
        );
        assert!(parse(text, "carol", 1001).is_empty());
    }

    #[test]
    fn map_args_put_own_id_at_zero() {
        let args = map_args(
            1000,
            &[Range {
                start: 100000,
                count: 65536,
            }],
        );
        assert_eq!(args, ["0", "1000", "1", "1", "100000", "65536"]);
    }
}
