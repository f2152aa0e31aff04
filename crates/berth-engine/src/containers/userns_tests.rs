#![allow(clippy::unwrap_used)]

use super::*;

fn r(container: u32, host: u32, size: u32) -> IdRange {
    IdRange {
        container,
        host,
        size,
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_owned()).collect()
}

#[test]
fn modes_parse_like_podman() {
    assert_eq!(parse(None, &[], &[]).unwrap(), Mode::Host);
    assert_eq!(parse(Some("host"), &[], &[]).unwrap(), Mode::Host);
    assert_eq!(parse(Some("auto"), &[], &[]).unwrap(), Mode::Auto(65536));
    assert_eq!(
        parse(Some("auto:size=1024"), &[], &[]).unwrap(),
        Mode::Auto(1024)
    );
    assert_eq!(
        parse(Some("keep-id:uid=5,gid=6"), &[], &[]).unwrap(),
        Mode::KeepId {
            uid: Some(5),
            gid: Some(6)
        }
    );
    for bad in [
        "bogus",
        "auto:size=0",
        "auto:size=x",
        "auto:foo=1",
        "keep-id:who=1",
        "host:x",
    ] {
        assert!(parse(Some(bad), &[], &[]).is_err(), "{bad}");
    }
}

#[test]
fn uidmap_alone_implies_the_same_gidmap() {
    let Mode::Maps(map) = parse(None, &s(&["0:100000:1000"]), &[]).unwrap() else {
        panic!("not maps");
    };
    assert_eq!(map.uids, vec![r(0, 100000, 1000)]);
    assert_eq!(map.gids, map.uids);
    let Mode::Maps(map) = parse(None, &s(&["0:1:2"]), &s(&["0:5:2", "2:9:1"])).unwrap() else {
        panic!("not maps");
    };
    assert_eq!(map.gids, vec![r(0, 5, 2), r(2, 9, 1)]);
}

#[test]
fn bad_maps_are_refused() {
    for bad in [
        "0:1",
        "0:1:2:3",
        "a:1:2",
        "0:1:0",
        "-1:1:2",
        "0:4294967290:10",
        "",
    ] {
        assert!(parse_maps(&s(&[bad]), "--uidmap").is_err(), "{bad:?}");
    }
    let inside = parse_maps(&s(&["0:100000:10", "5:200000:10"]), "--uidmap");
    assert!(inside
        .unwrap_err()
        .to_string()
        .contains("inside the container"));
    let outside = parse_maps(&s(&["0:100000:10", "10:100005:10"]), "--uidmap");
    assert!(outside.unwrap_err().to_string().contains("on the host"));
    assert!(parse_maps(&s(&["0:100000:10", "10:100010:10"]), "--uidmap").is_ok());
    assert!(parse(Some("auto"), &s(&["0:1:1"]), &[]).is_err());
}

#[test]
fn proc_maps_parse_and_the_initial_namespace_is_recognised() {
    let initial = parse_proc_map("         0          0 4294967295\n");
    assert!(is_initial(&initial));
    let rootless = parse_proc_map("0 1000 1\n1 100000 65536\n");
    assert_eq!(rootless, vec![r(0, 1000, 1), r(1, 100000, 65536)]);
    assert!(!is_initial(&rootless));
}

#[test]
fn keep_id_maps_the_user_to_itself() {
    // A rootless engine: its 0 is the user (1000 on the host), 1..=65536 subordinate ids.
    let outer = parse_proc_map("0 1000 1\n1 100000 65536\n");
    let map = keep_id_ranges(&outer, 1000).unwrap();
    assert_eq!(
        map,
        vec![r(0, 1, 1000), r(1000, 0, 1), r(1001, 1001, 65537 - 1001)]
    );
    let total: u32 = map.iter().map(|x| x.size).sum();
    assert_eq!(total, 65537, "every id the engine has, once");
    // Keeping 0: no range below it.
    assert_eq!(
        keep_id_ranges(&outer, 0).unwrap(),
        vec![r(0, 0, 1), r(1, 1, 65536)]
    );
    // Rootful (the initial namespace) and out-of-range ids: refused.
    assert_eq!(
        keep_id_ranges(&parse_proc_map("0 0 4294967295"), 1000),
        None
    );
    assert_eq!(keep_id_ranges(&outer, 70000), None);
}

#[test]
fn subid_files_parse_and_a_free_range_is_found() {
    let text = "# comment\nalice:100000:65536\nbad line\nbob:165536:x\nberth:300000:65536\n\n";
    let entries = parse_subid(text);
    assert_eq!(entries.len(), 2);
    assert_eq!(
        entries[1],
        SubIdEntry {
            owner: "berth".into(),
            start: 300000,
            count: 65536
        }
    );
    // podman's convention when it is free.
    assert_eq!(free_range(&entries), Some((2147483647, 2147483648)));
    // Taken: the largest gap above 100000 instead.
    let taken = parse_subid("x:2147483000:1000\ny:100000:65536\n");
    let (start, count) = free_range(&taken).unwrap();
    assert_eq!(start, 2147484000);
    assert_eq!(count, 4294967295 - 2147484000);
    // Nothing free.
    assert_eq!(free_range(&parse_subid("x:0:4294967295\n")), None);
}

#[test]
fn first_fit_skips_used_ranges() {
    let pool = parse_subid("berth:1000:300\n");
    assert_eq!(store::first_fit(&pool, &[], 100), Some(1000));
    assert_eq!(store::first_fit(&pool, &[(1000, 100)], 100), Some(1100));
    assert_eq!(store::first_fit(&pool, &[(1050, 10)], 100), Some(1060));
    assert_eq!(
        store::first_fit(&pool, &[(1000, 100), (1150, 100)], 100),
        None
    );
    assert_eq!(store::first_fit(&pool, &[], 301), None);
}

#[test]
fn berth_entry_is_made_once_keeping_other_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("subuid");
    fs::write(&path, "alice:100000:65536").unwrap();
    let made = berth_entries(&path).unwrap();
    assert_eq!(made[0].start, 2147483647);
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text, "alice:100000:65536\nberth:2147483647:2147483648\n");
    assert_eq!(berth_entries(&path).unwrap(), made);
    assert_eq!(fs::read_to_string(&path).unwrap(), text, "not added twice");
    assert!(!dir.path().join("subuid.lock").exists(), "lock released");
}
