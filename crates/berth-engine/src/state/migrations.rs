//! The schema, as a list of forward migrations. `PRAGMA user_version` is the number of
//! migrations applied; opening a database applies the missing ones in one `BEGIN IMMEDIATE`
//! transaction (all or none, and one process at a time). A database with a higher version was
//! written by a newer Berth and is refused rather than misread.

use rusqlite::{Connection, TransactionBehavior};

/// Migration `i` takes the schema from version `i` to `i + 1`. Append only: never edit one
/// that has shipped.
pub const MIGRATIONS: &[&str] = &[
    // 1: containers.
    "CREATE TABLE containers (
        id            TEXT PRIMARY KEY NOT NULL
                      CHECK (length(id) = 64 AND id NOT GLOB '*[^0-9a-f]*'),
        name          TEXT NOT NULL UNIQUE,
        image_id      TEXT NOT NULL,
        image_name    TEXT NOT NULL,
        created       TEXT NOT NULL,
        spec_path     TEXT NOT NULL,
        runtime_name  TEXT NOT NULL,
        runtime_path  TEXT NOT NULL,
        status        TEXT NOT NULL CHECK (status IN
                      ('created','running','paused','restarting','exited','dead','removing')),
        pid           INTEGER,
        monitor_pid   INTEGER,
        exit_code     INTEGER,
        exit_signal   INTEGER,
        oom_killed    INTEGER NOT NULL DEFAULT 0 CHECK (oom_killed IN (0, 1)),
        started_at    TEXT,
        finished_at   TEXT,
        restart_count INTEGER NOT NULL DEFAULT 0,
        labels        TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(labels)),
        ports         TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(ports)),
        network       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(network))
    ) STRICT;
    CREATE INDEX containers_created ON containers (created);",
    // 2: what the engine keeps beside the spec (config) and what it learns at run time
    // (details: stop and OOM figures, the last error, an unfinished creation).
    "ALTER TABLE containers ADD COLUMN config TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(config));
    ALTER TABLE containers ADD COLUMN details TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details));",
    // 3: networks, and each container's place on them (the address only while it runs: the
    // unique pairs are the IPAM, safe under concurrent starts).
    "CREATE TABLE networks (
        id        TEXT PRIMARY KEY NOT NULL,
        name      TEXT NOT NULL UNIQUE,
        driver    TEXT NOT NULL CHECK (driver IN ('bridge', 'macvlan', 'host', 'null')),
        interface TEXT NOT NULL,
        config    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(config)),
        created   TEXT NOT NULL
    ) STRICT;
    CREATE TABLE endpoints (
        container_id TEXT NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
        network_id   TEXT NOT NULL REFERENCES networks (id),
        position     INTEGER NOT NULL,
        config       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(config)),
        ip4          TEXT,
        ip6          TEXT,
        PRIMARY KEY (container_id, network_id),
        UNIQUE (network_id, ip4),
        UNIQUE (network_id, ip6)
    ) STRICT;",
    // 4: each `--userns=auto` container's host id ranges, held while the container exists
    // (chosen and written in one transaction; see containers/userns.rs).
    "CREATE TABLE userns_ranges (
        container_id TEXT PRIMARY KEY NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
        uid_start    INTEGER NOT NULL UNIQUE CHECK (uid_start >= 0),
        gid_start    INTEGER NOT NULL UNIQUE CHECK (gid_start >= 0),
        size         INTEGER NOT NULL CHECK (size > 0)
    ) STRICT;",
];

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// The file was written by a newer Berth.
    #[error(
        "schema version {found} is newer than this berth knows ({known}): it was written by a \
         newer berth; use that one (downgrading is not supported)"
    )]
    TooNew {
        /// The file's `user_version`.
        found: u32,
        /// The number of migrations this binary has.
        known: u32,
    },
    /// A migration (or reading the version) failed; nothing was applied.
    #[error("migrating the schema to version {to}: {source}")]
    Sqlite {
        /// The version being migrated to.
        to: u32,
        /// Why.
        source: rusqlite::Error,
    },
}

/// Apply the migrations `conn`'s file lacks, in one transaction. Returns the version reached.
pub fn migrate(conn: &mut Connection, migrations: &[&str]) -> Result<u32, MigrationError> {
    let known = u32::try_from(migrations.len()).unwrap_or(u32::MAX);
    let sqlite = |to| move |source| MigrationError::Sqlite { to, source };
    // Cheap check first: a database that is up to date takes no write lock.
    let found = user_version(conn).map_err(sqlite(known))?;
    if found == known {
        return Ok(found);
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite(known))?;
    // Again under the lock: another process may have migrated meanwhile.
    let found = user_version(&tx).map_err(sqlite(known))?;
    if found > known {
        return Err(MigrationError::TooNew { found, known });
    }
    for (index, sql) in migrations.iter().enumerate().skip(found as usize) {
        let to = index as u32 + 1;
        tx.execute_batch(sql).map_err(sqlite(to))?;
    }
    tx.pragma_update(None, "user_version", known)
        .map_err(sqlite(known))?;
    tx.commit().map_err(sqlite(known))?;
    Ok(known)
}

/// The file's schema version.
pub fn user_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}
