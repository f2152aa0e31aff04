//! Pure parsers for the text files under /proc/self. No I/O here, so every
//! function is unit-tested on literal samples.

/// The value of `Name:` in /proc/self/status, with surrounding whitespace trimmed.
pub fn status_field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key == name).then(|| value.trim())
    })
}

/// One line of /proc/self/mountinfo (see proc(5)); paths are unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub id: u64,
    pub parent_id: u64,
    pub major_minor: String,
    pub root: String,
    pub target: String,
    pub options: String,
    /// Optional fields such as `shared:1`, `master:2`, `unbindable`.
    pub optional: Vec<String>,
    pub fstype: String,
    pub source: String,
    pub super_options: String,
}

impl MountInfo {
    /// "shared", "slave", "shared,slave", "unbindable" or "private".
    pub fn propagation(&self) -> String {
        let has = |prefix: &str| self.optional.iter().any(|f| f.starts_with(prefix));
        if has("unbindable") {
            return "unbindable".to_string();
        }
        match (has("shared:"), has("master:")) {
            (true, true) => "shared,slave".to_string(),
            (true, false) => "shared".to_string(),
            (false, true) => "slave".to_string(),
            (false, false) => "private".to_string(),
        }
    }
}

/// Parses all of /proc/self/mountinfo. Errors name the 1-based line that failed.
pub fn parse_mountinfo(text: &str) -> Result<Vec<MountInfo>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            parse_mountinfo_line(line).ok_or_else(|| format!("mountinfo line {}: {line:?}", n + 1))
        })
        .collect()
}

fn parse_mountinfo_line(line: &str) -> Option<MountInfo> {
    let (head, tail) = line.split_once(" - ")?;
    let mut head = head.split(' ');
    let id = head.next()?.parse().ok()?;
    let parent_id = head.next()?.parse().ok()?;
    let major_minor = head.next()?.to_string();
    let root = unescape(head.next()?);
    let target = unescape(head.next()?);
    let options = head.next()?.to_string();
    let optional = head.filter(|f| !f.is_empty()).map(str::to_string).collect();
    let mut tail = tail.split(' ');
    let fstype = tail.next()?.to_string();
    let source = unescape(tail.next()?);
    let super_options = tail.next().unwrap_or("").to_string();
    Some(MountInfo {
        id,
        parent_id,
        major_minor,
        root,
        target,
        options,
        optional,
        fstype,
        source,
        super_options,
    })
}

/// Undoes the kernel's octal escapes (`\040` for space, `\011`, `\012`, `\134`).
pub fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() && is_octal_escape(&bytes[i + 1..i + 4]) {
            let value = bytes[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            out.push(u8::try_from(value).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_octal_escape(digits: &[u8]) -> bool {
    digits.len() == 3 && digits.iter().all(|d| (b'0'..=b'7').contains(d))
}

/// Maps `NOFILE`, `nofile` or `RLIMIT_NOFILE` to the canonical `RLIMIT_NOFILE`
/// name used by the OCI spec, if it is a known resource.
pub fn rlimit_name(name: &str) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    let short = upper.strip_prefix("RLIMIT_").unwrap_or(&upper);
    RLIMIT_NAMES
        .iter()
        .copied()
        .find(|full| full.strip_prefix("RLIMIT_") == Some(short))
}

/// Every RLIMIT_* resource, in the kernel's numbering order.
pub const RLIMIT_NAMES: [&str; 16] = [
    "RLIMIT_CPU",
    "RLIMIT_FSIZE",
    "RLIMIT_DATA",
    "RLIMIT_STACK",
    "RLIMIT_CORE",
    "RLIMIT_RSS",
    "RLIMIT_NPROC",
    "RLIMIT_NOFILE",
    "RLIMIT_MEMLOCK",
    "RLIMIT_AS",
    "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
];

/// Parses a duration in seconds ("1", "0.5"); 0 or "inf" mean forever (None).
pub fn parse_seconds(text: &str) -> Result<Option<std::time::Duration>, String> {
    if text == "inf" {
        return Ok(None);
    }
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("not a number of seconds: {text:?}"))?;
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("not a number of seconds: {text:?}"));
    }
    Ok((secs > 0.0).then(|| std::time::Duration::from_secs_f64(secs)))
}

/// CPU numbers (ascending) as the kernel's list format of `Cpus_allowed_list`: `0-2,5`.
pub fn cpu_list(cpus: &[usize]) -> String {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for &cpu in cpus {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == cpu => *end = cpu,
            _ => ranges.push((cpu, cpu)),
        }
    }
    ranges
        .iter()
        .map(|&(start, end)| {
            if start == end {
                start.to_string()
            } else {
                format!("{start}-{end}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tprobe\nUmask:\t0022\nState:\tR (running)\nUid:\t0\t0\t0\t0\n\
        Groups:\t1 2 \nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\n\
        CapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\nSigCgt:\t0000000000004a02\n";

    #[test]
    fn status_field_finds_exact_key() {
        assert_eq!(status_field(STATUS, "Umask"), Some("0022"));
        assert_eq!(status_field(STATUS, "Seccomp"), Some("2"));
        assert_eq!(status_field(STATUS, "Seccomp_filters"), Some("1"));
        assert_eq!(status_field(STATUS, "CapEff"), Some("000001ffffffffff"));
        assert_eq!(status_field(STATUS, "Groups"), Some("1 2"));
        assert_eq!(status_field(STATUS, "State"), Some("R (running)"));
        assert_eq!(status_field(STATUS, "CapAmb"), None);
        assert_eq!(status_field(STATUS, "Cap"), None);
    }

    #[test]
    fn mountinfo_line_with_optional_fields() {
        let text =
            "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n";
        let mounts = parse_mountinfo(text).expect("parses");
        assert_eq!(
            mounts,
            vec![MountInfo {
                id: 36,
                parent_id: 35,
                major_minor: "98:0".into(),
                root: "/mnt1".into(),
                target: "/mnt2".into(),
                options: "rw,noatime".into(),
                optional: vec!["master:1".into()],
                fstype: "ext3".into(),
                source: "/dev/root".into(),
                super_options: "rw,errors=continue".into(),
            }]
        );
        assert_eq!(mounts[0].propagation(), "slave");
    }

    #[test]
    fn mountinfo_without_optional_fields_is_private() {
        let text = "22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n\n";
        let mounts = parse_mountinfo(text).expect("parses");
        assert_eq!(mounts.len(), 1);
        assert!(mounts[0].optional.is_empty());
        assert_eq!(mounts[0].propagation(), "private");
        assert_eq!(mounts[0].fstype, "proc");
    }

    #[test]
    fn mountinfo_propagation_kinds() {
        let line = |opt: &str| format!("1 0 0:1 / / rw {opt} - tmpfs tmpfs rw");
        let prop = |opt: &str| parse_mountinfo(&line(opt)).expect("parses")[0].propagation();
        assert_eq!(prop("shared:5"), "shared");
        assert_eq!(prop("shared:5 master:3"), "shared,slave");
        assert_eq!(prop("unbindable"), "unbindable");
    }

    #[test]
    fn mountinfo_unescapes_paths_and_keeps_dash_in_names() {
        let text =
            r"40 22 0:50 /a\040b /mnt/x\040-\040y rw shared:7 - overlay my\011src rw,lowerdir=/l";
        let mounts = parse_mountinfo(text).expect("parses");
        assert_eq!(mounts[0].root, "/a b");
        assert_eq!(mounts[0].target, "/mnt/x - y");
        assert_eq!(mounts[0].source, "my\tsrc");
        assert_eq!(mounts[0].super_options, "rw,lowerdir=/l");
    }

    #[test]
    fn mountinfo_rejects_garbage_with_line_number() {
        let err =
            parse_mountinfo("22 1 0:21 / /proc rw - proc proc rw\nnonsense\n").expect_err("fails");
        assert!(err.starts_with("mountinfo line 2:"), "{err}");
    }

    #[test]
    fn unescape_leaves_incomplete_escapes() {
        assert_eq!(unescape(r"a\04"), r"a\04");
        assert_eq!(unescape(r"a\\"), r"a\\");
        assert_eq!(unescape(r"\134x"), r"\x");
    }

    #[test]
    fn rlimit_names_accept_short_and_long_forms() {
        assert_eq!(rlimit_name("NOFILE"), Some("RLIMIT_NOFILE"));
        assert_eq!(rlimit_name("nproc"), Some("RLIMIT_NPROC"));
        assert_eq!(rlimit_name("RLIMIT_AS"), Some("RLIMIT_AS"));
        assert_eq!(rlimit_name("FILES"), None);
    }

    #[test]
    fn seconds_zero_and_inf_mean_forever() {
        assert_eq!(parse_seconds("0"), Ok(None));
        assert_eq!(parse_seconds("inf"), Ok(None));
        assert_eq!(
            parse_seconds("1.5"),
            Ok(Some(std::time::Duration::from_millis(1500)))
        );
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("x").is_err());
    }

    #[test]
    fn cpu_lists_use_ranges_like_the_kernel() {
        assert_eq!(cpu_list(&[1]), "1");
        assert_eq!(cpu_list(&[0, 1]), "0-1");
        assert_eq!(cpu_list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(cpu_list(&[]), "");
    }
}
