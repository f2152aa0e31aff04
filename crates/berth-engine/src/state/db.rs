//! The connection to `<data root>/berth.db`: how it is opened, and the one way to write.
//!
//! - `journal_mode=WAL`: readers never block the writer nor the writer the readers, so
//!   `berth ps` stays fast while other commands write. The mode is stored in the file.
//! - `busy_timeout` (10 s): there is no daemon, so concurrent `berth` processes share the file
//!   and wait for SQLite's write lock instead of failing with "database is locked".
//! - `synchronous=NORMAL`: in WAL mode the database cannot be corrupted by a crash or a power
//!   loss; a process killed mid-write loses nothing it committed (the WAL is in the page
//!   cache). Only a power loss can roll back the last commits, and after a reboot every
//!   container is dead anyway and is reconciled from the monitor's records. `FULL` would add
//!   an fsync to every `berth` command for no state that matters.
//! - `foreign_keys=ON`: per connection in SQLite; the schema relies on it.
//! - Every write is `BEGIN IMMEDIATE` ([`StateDb::write`]): the write lock is taken before the
//!   first read, so a read-modify-write cannot be overtaken (no lost update), and the busy
//!   timeout applies (a deferred transaction that upgrades to a write gets `SQLITE_BUSY` at
//!   once, without waiting).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::migrations::{self, MigrationError, MIGRATIONS};

/// How long a command waits for another one's write lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The database's file name inside the data root.
pub const DB_FILE: &str = "berth.db";

/// Why the state database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The data root could not be created.
    #[error("creating the data root {path}: {source}")]
    CreateRoot {
        /// The data root.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// SQLite could not open or set up the file.
    #[error("opening the state database {path} ({step}): {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        step: &'static str,
        /// Why.
        source: rusqlite::Error,
    },
    /// The schema could not be brought up to date.
    #[error("state database {path}: {source}")]
    Migrate {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: MigrationError,
    },
}

/// An open state database: one connection, for one thread.
#[derive(Debug)]
pub struct StateDb {
    conn: Connection,
    path: PathBuf,
}

impl StateDb {
    /// Open (creating it if needed) `<data_root>/berth.db` and bring its schema up to date.
    pub fn open(data_root: &Path) -> Result<StateDb, DbError> {
        std::fs::create_dir_all(data_root).map_err(|source| DbError::CreateRoot {
            path: data_root.to_path_buf(),
            source,
        })?;
        StateDb::open_file(&data_root.join(DB_FILE))
    }

    /// Open the database file at `path` and bring its schema up to date.
    pub fn open_file(path: &Path) -> Result<StateDb, DbError> {
        let mut conn = connect(path)?;
        migrations::migrate(&mut conn, MIGRATIONS).map_err(|source| DbError::Migrate {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(StateDb {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `f` in a `BEGIN IMMEDIATE` transaction, committed if `f` succeeds and rolled back
    /// otherwise. Every write goes through here.
    pub fn write<T, E>(&mut self, f: impl FnOnce(&Transaction) -> Result<T, E>) -> Result<T, E>
    where
        E: From<rusqlite::Error>,
    {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Run `f` in a read transaction: one consistent snapshot for several queries.
    pub fn read<T, E>(&mut self, f: impl FnOnce(&Transaction) -> Result<T, E>) -> Result<T, E>
    where
        E: From<rusqlite::Error>,
    {
        let tx = self.conn.transaction()?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// The raw connection, for checks (`integrity_check`) and tests.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// Open `path` and set the connection up: busy timeout first, so that even switching to WAL
/// waits for a concurrent opener instead of failing.
pub(crate) fn connect(path: &Path) -> Result<Connection, DbError> {
    let err = |step: &'static str| {
        let path = path.to_path_buf();
        move |source| DbError::Open { path, step, source }
    };
    let conn = Connection::open(path).map_err(err("open"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(err("busy_timeout"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
        .map_err(err("journal_mode=WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(err("journal_mode=WAL")(rusqlite::Error::InvalidQuery));
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(err("synchronous=NORMAL"))?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(err("foreign_keys=ON"))?;
    Ok(conn)
}
