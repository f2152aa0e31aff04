//! Many writers at once (threads with their own connections, and other processes: this test
//! binary run again), and a writer killed with SIGKILL in the middle of its transactions.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::tests::record;
use super::*;

/// The environment variable that makes [`child_process_entry_point`] do a child's work.
const CHILD_ENV: &str = "BERTH_STATE_TEST_CHILD";
/// Threads and processes in the concurrency test.
const THREADS: usize = 8;
const PROCESSES: usize = 4;
/// Names every writer tries to take, and counter increments each writer makes.
const NAMES: usize = 20;
const INCREMENTS: u32 = 25;

/// What one writer did.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    names_won: usize,
    transitions_won: usize,
}

/// One writer: take shared names, increment the counter by read-modify-write, race for one
/// `created -> running` transition. Any error but a name conflict or a lost race is a failure.
fn writer(db_path: &Path) -> Tally {
    let mut db = StateDb::open_file(db_path).expect("open (racing the others)");
    let mut tally = Tally::default();
    for i in 0..NAMES {
        match db.create(&record(&format!("shared-{i}"))) {
            Ok(()) => tally.names_won += 1,
            Err(ContainersError::NameInUse { .. }) => {}
            Err(e) => panic!("create shared-{i}: {e}"),
        }
        for _ in 0..INCREMENTS.div_ceil(NAMES as u32) {
            increment(&mut db);
        }
    }
    let flag = db.get("flag").expect("flag").id;
    match db.transition(&flag, &[Status::Created], Status::Running) {
        Ok(_) => tally.transitions_won += 1,
        Err(ContainersError::WrongStatus { .. }) => {}
        Err(e) => panic!("transition: {e}"),
    }
    tally
}

/// Increments per writer, as [`writer`] makes them.
fn increments_per_writer() -> u32 {
    NAMES as u32 * INCREMENTS.div_ceil(NAMES as u32)
}

/// One lost-update-prone read-modify-write of the counter's restart count.
fn increment(db: &mut StateDb) {
    let id = db.get("counter").expect("counter").id;
    db.modify::<ContainersError>(&id, |c| {
        c.restart_count += 1;
        Ok(())
    })
    .expect("increment");
}

/// Run this test binary again as a child doing `work`.
fn spawn_child(work: &str) -> Child {
    let exe = std::env::current_exe().expect("test binary");
    Command::new(exe)
        .args([
            "--exact",
            "state::concurrency_tests::child_process_entry_point",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, work)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn child test process")
}

/// A child that is killed and reaped if the test fails before it ends.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Not a test: the entry point of the child processes the tests below start. Without
/// [`CHILD_ENV`] it does nothing.
#[test]
fn child_process_entry_point() {
    let Ok(work) = std::env::var(CHILD_ENV) else {
        return;
    };
    match work.split_once(':') {
        Some(("writer", out)) => {
            let tally = writer(&PathBuf::from(out).with_file_name(DB_FILE));
            let text = format!("{} {}", tally.names_won, tally.transitions_won);
            std::fs::write(out, text).expect("write tally");
        }
        Some(("crash", db_path)) => crash_loop(Path::new(db_path), false),
        Some(("crash-hold", db_path)) => crash_loop(Path::new(db_path), true),
        _ => panic!("unknown child work {work:?}"),
    }
}

#[test]
fn concurrent_writers_keep_names_unique_and_lose_no_update() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db_path = dir.path().join(DB_FILE);
    let mut db = StateDb::open_file(&db_path).expect("open");
    db.create(&record("counter")).expect("counter");
    db.create(&record("flag")).expect("flag");
    let started = Instant::now();
    let children: Vec<(ChildGuard, PathBuf)> = (0..PROCESSES)
        .map(|k| {
            let out = dir.path().join(format!("child-{k}"));
            let child = spawn_child(&format!("writer:{}", out.display()));
            (ChildGuard(child), out)
        })
        .collect();
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let path = db_path.clone();
            std::thread::spawn(move || writer(&path))
        })
        .collect();
    let mut tallies: Vec<Tally> = threads
        .into_iter()
        .map(|t| t.join().expect("writer thread"))
        .collect();
    for (mut child, out) in children {
        let status = child.0.wait().expect("wait child");
        assert!(status.success(), "child writer failed: {status}");
        let text = std::fs::read_to_string(out).expect("child tally");
        let mut numbers = text.split(' ').map(|n| n.parse::<usize>().expect("number"));
        tallies.push(Tally {
            names_won: numbers.next().expect("names"),
            transitions_won: numbers.next().expect("transitions"),
        });
    }
    let elapsed = started.elapsed();
    let writers = (THREADS + PROCESSES) as u32;
    eprintln!(
        "{writers} writers ({THREADS} threads, {PROCESSES} processes): {} creates, {} \
         increments in {elapsed:?}",
        writers as usize * NAMES,
        writers * increments_per_writer()
    );
    assert_eq!(tallies.iter().map(|t| t.names_won).sum::<usize>(), NAMES);
    assert_eq!(tallies.iter().map(|t| t.transitions_won).sum::<usize>(), 1);
    let shared = db
        .list()
        .expect("list")
        .into_iter()
        .filter(|c| c.name.starts_with("shared-"));
    assert_eq!(shared.count(), NAMES);
    let counter = db.get("counter").expect("counter");
    assert_eq!(counter.restart_count, writers * increments_per_writer());
    assert_eq!(db.get("flag").expect("flag").status, Status::Running);
}

#[test]
fn concurrent_first_opens_create_the_schema_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("fresh");
    let threads: Vec<_> = (0..THREADS + PROCESSES)
        .map(|_| {
            let root = root.clone();
            std::thread::spawn(move || StateDb::open(&root).map(|_| ()))
        })
        .collect();
    for t in threads {
        t.join()
            .expect("opener")
            .expect("open a fresh database concurrently");
    }
    let db = StateDb::open(&root).expect("open");
    assert_eq!(
        user_version(db.connection()).expect("version") as usize,
        MIGRATIONS.len()
    );
}

/// The crash child: forever, one transaction that adds a container and counts it in the
/// ledger's restart count (so the two always agree), with big labels so that commits write
/// many WAL pages. Inside its first transaction it tells the parent it has started; with
/// `hold` it then stays in that transaction (until killed), so that the kill surely lands in
/// one.
fn crash_loop(db_path: &Path, hold: bool) {
    let mut db = StateDb::open_file(db_path).expect("open");
    let marker = db_path.with_extension("in-transaction");
    let labels = serde_json::json!({ "filler": "x".repeat(64 * 1024) });
    for n in 0.. {
        let mut c = record(&format!("crash-{n}"));
        c.labels = labels.clone();
        db.write::<_, ContainersError>(|tx| {
            tx.execute(
                "INSERT INTO containers (id, name, image_id, image_name, created, spec_path, \
                 runtime_name, runtime_path, status, labels) \
                 VALUES (?1, ?2, 'i', 'i', ?3, 'p', 'r', 'r', 'created', ?4)",
                rusqlite::params![
                    c.id,
                    c.name,
                    format_time(c.created).expect("time"),
                    c.labels.to_string()
                ],
            )?;
            if n == 0 {
                std::fs::write(&marker, b"").expect("marker");
                if hold {
                    std::thread::sleep(Duration::from_secs(60));
                }
            }
            tx.execute(
                "UPDATE containers SET restart_count = restart_count + 1 WHERE name = 'ledger'",
                [],
            )?;
            Ok(())
        })
        .expect("crash loop transaction");
    }
}

/// Start a crash child (`work` is `crash` or `crash-hold`), kill it `delay` after it has
/// started its first transaction, then check the database. Returns the transactions committed.
fn kill_and_check(db_path: &Path, work: &str, delay: Duration) -> u32 {
    let marker = db_path.with_extension("in-transaction");
    let _ = std::fs::remove_file(&marker);
    let mut child = ChildGuard(spawn_child(&format!("{work}:{}", db_path.display())));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "crash child never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(delay);
    child.0.kill().expect("SIGKILL the writer");
    let status = child.0.wait().expect("reap the writer");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "the writer died of SIGKILL, not of its own failure: {status}"
    );
    let db = StateDb::open_file(db_path).expect("open after the crash");
    let conn = db.connection();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(check, "ok");
    let crashed: u32 = conn
        .query_row(
            "SELECT count(*) FROM containers WHERE name LIKE 'crash-%'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    let ledger: u32 = conn
        .query_row(
            "SELECT restart_count FROM containers WHERE name = 'ledger'",
            [],
            |r| r.get(0),
        )
        .expect("ledger");
    assert_eq!(crashed, ledger, "a transaction was half-applied");
    ledger
}

#[test]
fn a_writer_killed_mid_transaction_leaves_a_consistent_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db_path = dir.path().join(DB_FILE);
    let mut db = StateDb::open_file(&db_path).expect("open");
    db.create(&record("ledger")).expect("ledger");
    drop(db);
    // Inside the first transaction (the child holds it open), then at arbitrary points of the
    // commit loop.
    let first = kill_and_check(&db_path, "crash-hold", Duration::from_millis(50));
    assert_eq!(
        first, 0,
        "killed inside the first transaction, nothing committed"
    );
    let mut committed = first;
    for delay_ms in [300, 450, 725] {
        // Names restart at crash-0 in each child: clear the previous round's.
        let mut db = StateDb::open_file(&db_path).expect("open");
        db.write::<_, ContainersError>(|tx| {
            tx.execute("DELETE FROM containers WHERE name LIKE 'crash-%'", [])?;
            tx.execute(
                "UPDATE containers SET restart_count = 0 WHERE name = 'ledger'",
                [],
            )?;
            Ok(())
        })
        .expect("reset");
        drop(db);
        committed += kill_and_check(&db_path, "crash", Duration::from_millis(delay_ms));
    }
    eprintln!("crash test: {committed} transactions committed across 4 kills, database ok");
    assert!(
        committed > 0,
        "the writer never committed: the test proved little"
    );
}
