//! Unit tests of the state database on a tempdir file.

use std::path::PathBuf;

use time::OffsetDateTime;

use super::*;

/// A fresh database in its own tempdir (removed when the guard drops).
pub(super) fn temp_db() -> (tempfile::TempDir, StateDb) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = StateDb::open(dir.path()).expect("open state db");
    (dir, db)
}

/// A `created` record named `name` with a fresh ID.
pub(super) fn record(name: &str) -> Container {
    Container::new(
        new_id().expect("id"),
        name.to_string(),
        ("sha256:abc".to_string(), "busybox:latest".to_string()),
        PathBuf::from("/run/berth/containers/x/config.json"),
        (
            "berth-runtime".to_string(),
            PathBuf::from("/usr/bin/berth-runtime"),
        ),
    )
}

/// A record with a chosen ID.
fn record_with_id(name: &str, id: &str) -> Container {
    let mut c = record(name);
    c.id = id.to_string();
    c
}

#[test]
fn open_sets_wal_and_schema_version() {
    let (_dir, db) = temp_db();
    let conn = db.connection();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("journal_mode");
    assert_eq!(mode, "wal");
    let fk: i64 = conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .expect("foreign_keys");
    assert_eq!(fk, 1);
    let sync: i64 = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .expect("synchronous");
    assert_eq!(sync, 1, "NORMAL");
    assert_eq!(
        user_version(conn).expect("version") as usize,
        MIGRATIONS.len()
    );
}

#[test]
fn create_and_get_round_trip_every_field() {
    let (_dir, mut db) = temp_db();
    let mut c = record("web");
    c.labels = serde_json::json!({"a": "b"});
    c.pid = Some(42);
    c.started_at = Some(OffsetDateTime::now_utc());
    db.create(&c).expect("create");
    assert_eq!(db.get("web").expect("get"), c);
    assert_eq!(db.get("/web").expect("get with slash"), c);
    assert_eq!(db.get(&c.id).expect("get by id"), c);
    assert_eq!(db.get(short_id(&c.id)).expect("get by short id"), c);
}

#[test]
fn a_taken_name_is_docker_s_conflict() {
    let (_dir, mut db) = temp_db();
    let first = record("web");
    db.create(&first).expect("create");
    let err = db.create(&record("/web")).expect_err("name taken");
    assert_eq!(
        err.to_string(),
        format!(
            "Conflict. The container name \"/web\" is already in use by container \"{}\". You \
             have to remove (or rename) that container to be able to reuse that name.",
            first.id
        )
    );
    assert_eq!(db.list().expect("list").len(), 1);
}

#[test]
fn invalid_names_are_refused() {
    let (_dir, mut db) = temp_db();
    let err = db.create(&record("bad/name")).expect_err("invalid");
    assert!(matches!(err, ContainersError::InvalidName { .. }), "{err}");
}

#[test]
fn lookup_order_is_id_then_name_then_prefix() {
    let (_dir, mut db) = temp_db();
    let a = record_with_id("first", &format!("abc1{}", "0".repeat(60)));
    let b = record_with_id("second", &format!("abc2{}", "0".repeat(60)));
    // A container whose name is a prefix of another's ID: the name wins.
    let c = record_with_id("abc1", &format!("def{}", "0".repeat(61)));
    for x in [&a, &b, &c] {
        db.create(x).expect("create");
    }
    assert_eq!(db.get("abc1").expect("by name").id, c.id);
    assert_eq!(db.get("abc2").expect("by prefix").id, b.id);
    let err = db.get("abc").expect_err("ambiguous");
    assert_eq!(
        err.to_string(),
        "multiple IDs found with provided prefix: abc"
    );
    let err = db.get("nothing").expect_err("none");
    assert_eq!(err.to_string(), "No such container: nothing");
    assert!(db.get("%").is_err(), "no LIKE wildcard");
}

#[test]
fn transition_is_compare_and_set() {
    let (_dir, mut db) = temp_db();
    let c = record("web");
    db.create(&c).expect("create");
    let before = db
        .transition(&c.id, &[Status::Created, Status::Exited], Status::Running)
        .expect("created -> running");
    assert_eq!(before, Status::Created);
    let err = db
        .transition(&c.id, &[Status::Created], Status::Running)
        .expect_err("already running");
    assert!(
        matches!(
            err,
            ContainersError::WrongStatus {
                status: Status::Running,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(db.get("web").expect("get").status, Status::Running);
}

#[test]
fn record_exit_stores_the_monitor_s_record() {
    let (_dir, mut db) = temp_db();
    let mut c = record("web");
    c.status = Status::Running;
    c.pid = Some(100);
    c.monitor_pid = Some(99);
    db.create(&c).expect("create");
    let exit = ExitRecord {
        exit_code: 137,
        signal: Some(9),
        oom_killed: true,
        finished_at: OffsetDateTime::now_utc(),
    };
    db.record_exit(&c.id, &exit).expect("record exit");
    let got = db.get(&c.id).expect("get");
    assert_eq!(got.status, Status::Exited);
    assert_eq!(
        (got.exit_code, got.exit_signal, got.oom_killed),
        (Some(137), Some(9), true)
    );
    assert_eq!(got.finished_at, Some(exit.finished_at));
    assert_eq!((got.pid, got.monitor_pid), (None, None));
}

#[test]
fn modify_writes_back_and_rolls_back_on_error() {
    let (_dir, mut db) = temp_db();
    let c = record("web");
    db.create(&c).expect("create");
    db.modify::<ContainersError>(&c.id, |c| {
        c.restart_count += 1;
        Ok(())
    })
    .expect("modify");
    let err = db
        .modify(&c.id, |c| {
            c.restart_count += 10;
            Err(ContainersError::SameName)
        })
        .expect_err("aborted");
    assert!(matches!(err, ContainersError::SameName));
    assert_eq!(db.get("web").expect("get").restart_count, 1);
}

#[test]
fn rename_checks_conflicts() {
    let (_dir, mut db) = temp_db();
    let a = record("a1");
    let b = record("b1");
    db.create(&a).expect("create");
    db.create(&b).expect("create");
    let err = db.rename("a1", "b1").expect_err("taken");
    assert!(err.to_string().contains(&b.id), "{err}");
    assert!(matches!(
        db.rename("a1", "a1"),
        Err(ContainersError::SameName)
    ));
    db.rename("a1", "c1").expect("rename");
    assert_eq!(db.get("c1").expect("renamed").id, a.id);
    db.create(&record("a1")).expect("old name is free");
}

#[test]
fn remove_refuses_a_live_container_unless_forced() {
    let (_dir, mut db) = temp_db();
    let mut c = record("web");
    c.status = Status::Running;
    db.create(&c).expect("create");
    let err = db.remove("web", false).expect_err("running");
    assert_eq!(
        err.to_string(),
        "cannot remove container \"/web\": container is running: stop the container before \
         removing or force remove"
    );
    assert_eq!(db.remove("web", true).expect("forced").id, c.id);
    assert!(matches!(
        db.get("web"),
        Err(ContainersError::NoSuchContainer { .. })
    ));
}

#[test]
fn list_is_newest_first_and_generated_names_are_unique() {
    let (_dir, mut db) = temp_db();
    let mut ids = Vec::new();
    for _ in 0..30 {
        let mut c = record("placeholder");
        db.create_with_generated_name(&mut c)
            .expect("generated name");
        ids.push(c.id);
    }
    let listed: Vec<String> = db.list().expect("list").into_iter().map(|c| c.id).collect();
    ids.reverse();
    assert_eq!(listed, ids);
}

#[test]
fn a_newer_database_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = StateDb::open(dir.path()).expect("open");
    db.connection()
        .pragma_update(None, "user_version", 999)
        .expect("set version");
    drop(db);
    let err = StateDb::open(dir.path()).expect_err("too new");
    assert!(err.to_string().contains("newer berth"), "{err}");
}

#[test]
fn migrations_apply_forward_in_one_transaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(DB_FILE);
    // A database written by a berth that knew only the first migration.
    let mut conn = rusqlite::Connection::open(&path).expect("open");
    assert_eq!(migrate(&mut conn, &MIGRATIONS[..1]).expect("v1"), 1);
    let mut db = StateDb::open_file(&path).expect("open at v1");
    let c = record("kept");
    db.create(&c).expect("create");
    drop(db);
    // A later berth adds a column: the row survives and the version moves.
    let v2: Vec<&str> = MIGRATIONS
        .iter()
        .copied()
        .chain(["ALTER TABLE containers ADD COLUMN extra TEXT NOT NULL DEFAULT 'x'"])
        .collect();
    assert_eq!(migrate(&mut conn, &v2).expect("v2") as usize, v2.len());
    let extra: String = conn
        .query_row("SELECT extra FROM containers WHERE id = ?1", [&c.id], |r| {
            r.get(0)
        })
        .expect("new column");
    assert_eq!(extra, "x");
    // A failing migration leaves nothing behind: neither its first statement nor the version.
    let broken: Vec<&str> = v2
        .iter()
        .copied()
        .chain(["CREATE TABLE half (x INTEGER); SELECT * FROM no_such_table"])
        .collect();
    let err = migrate(&mut conn, &broken).expect_err("broken migration");
    assert!(
        err.to_string()
            .contains(&format!("version {}", broken.len())),
        "{err}"
    );
    assert_eq!(user_version(&conn).expect("version") as usize, v2.len());
    let half: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'half'",
            [],
            |r| r.get(0),
        )
        .expect("schema");
    assert_eq!(half, 0);
}
