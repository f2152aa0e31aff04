//! Container records: create, look up, list, change status, record an exit, rename, remove.
//! Every write is one `BEGIN IMMEDIATE` transaction ([`StateDb::write`]); name uniqueness is
//! the `UNIQUE` constraint's, so two `berth run --name x` at once give one container and one
//! docker-worded conflict.

use rusqlite::{params, OptionalExtension, Transaction};
use time::OffsetDateTime;

use super::db::StateDb;
use super::ids;
use super::names;
use super::record::{self, Container, Json, StatusSql, Time, COLUMNS};
use super::status::Status;

/// How many generated names are tried before giving up.
const NAME_TRIES: u32 = 10;

/// Why a container operation failed. The messages of the user-facing ones are docker's.
#[derive(Debug, thiserror::Error)]
pub enum ContainersError {
    /// The name belongs to another container.
    #[error(
        "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". \
         You have to remove (or rename) that container to be able to reuse that name."
    )]
    NameInUse {
        /// The name asked for.
        name: String,
        /// The container that has it.
        id: String,
    },
    /// The name has characters docker does not allow.
    #[error("Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName {
        /// The name asked for.
        name: String,
    },
    /// No generated name was free.
    #[error("no free container name after {tries} generated names")]
    NamesExhausted {
        /// How many were tried.
        tries: u32,
    },
    /// Nothing matches.
    #[error("No such container: {what}")]
    NoSuchContainer {
        /// What the user typed.
        what: String,
    },
    /// An ID prefix matches several containers.
    #[error("multiple IDs found with provided prefix: {prefix}")]
    AmbiguousPrefix {
        /// The prefix.
        prefix: String,
    },
    /// A compare-and-set status change found another status.
    #[error("container {id} is {status}, not {wanted}: cannot make it {to}")]
    WrongStatus {
        /// The container.
        id: String,
        /// Its status.
        status: Status,
        /// The statuses the change required, `|`-separated.
        wanted: String,
        /// The status asked for.
        to: Status,
    },
    /// `rm` without force on a container with a process.
    #[error(
        "cannot remove container \"/{name}\": container is {status}: stop the container before \
         removing or force remove"
    )]
    IsLive {
        /// The container's name.
        name: String,
        /// Its status.
        status: Status,
    },
    /// `rename` to the name it has.
    #[error("Renaming a container with the same name as its current name")]
    SameName,
    /// SQLite failed.
    #[error("state database ({op}): {source}")]
    Sqlite {
        /// What was being done.
        op: &'static str,
        /// Why.
        source: rusqlite::Error,
    },
}

impl From<rusqlite::Error> for ContainersError {
    fn from(source: rusqlite::Error) -> ContainersError {
        ContainersError::Sqlite {
            op: "transaction",
            source,
        }
    }
}

/// Why [`StateDb::modify`] rolled back: the database, or the caller's function.
enum Aborted<E> {
    Db(ContainersError),
    Caller(E),
}

impl<E> From<rusqlite::Error> for Aborted<E> {
    fn from(source: rusqlite::Error) -> Aborted<E> {
        Aborted::Db(source.into())
    }
}

/// What berth-monitor writes when a container's process has exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitRecord {
    /// The exit code (128 + signal for a signal, as a shell reports it).
    pub exit_code: i32,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// Whether the OOM killer did.
    pub oom_killed: bool,
    /// When.
    pub finished_at: OffsetDateTime,
}

/// A mapper for `op`'s SQLite errors.
fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> ContainersError {
    move |source| ContainersError::Sqlite { op, source }
}

impl StateDb {
    /// Store a new container. Fails with docker's conflict message if the name is taken.
    pub fn create(&mut self, c: &Container) -> Result<(), ContainersError> {
        if !names::is_valid(&c.name) {
            return Err(ContainersError::InvalidName {
                name: c.name.clone(),
            });
        }
        let name = names::normalize(&c.name);
        self.write(|tx| match insert(tx, c, name) {
            Err(e) if is_unique_violation(&e, "containers.name") => {
                let id = id_of_name(tx, name)?.unwrap_or_default();
                Err(ContainersError::NameInUse {
                    name: name.to_string(),
                    id,
                })
            }
            other => other.map(|_| ()).map_err(sql("insert container")),
        })
    }

    /// Store a new container under a generated name (set in `c.name`), retrying on conflict.
    pub fn create_with_generated_name(&mut self, c: &mut Container) -> Result<(), ContainersError> {
        for retry in 0..NAME_TRIES {
            c.name = names::generate(retry);
            match self.create(c) {
                Err(ContainersError::NameInUse { .. }) => continue,
                other => return other,
            }
        }
        Err(ContainersError::NamesExhausted { tries: NAME_TRIES })
    }

    /// Find a container as docker does: exact ID, then exact name (`/` optional), then a
    /// unique ID prefix.
    pub fn get(&mut self, what: &str) -> Result<Container, ContainersError> {
        self.read(|tx| find(tx, what))
    }

    /// Every container, newest first.
    pub fn list(&mut self) -> Result<Vec<Container>, ContainersError> {
        self.read(|tx| {
            let sql_text = format!("SELECT {COLUMNS} FROM containers ORDER BY created DESC, id");
            let mut stmt = tx.prepare(&sql_text).map_err(sql("list containers"))?;
            let rows = stmt
                .query_map([], record::from_row)
                .map_err(sql("list containers"))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(sql("list containers"))
        })
    }

    /// Compare and set: make container `id` `to` if its status is one of `from`. Returns the
    /// status it had. Concurrent transitions are serialised: exactly one of two
    /// `created -> running` wins.
    pub fn transition(
        &mut self,
        id: &str,
        from: &[Status],
        to: Status,
    ) -> Result<Status, ContainersError> {
        self.write(|tx| {
            let status = status_of(tx, id)?;
            if !from.contains(&status) {
                return Err(wrong_status(id, status, from, to));
            }
            tx.execute(
                "UPDATE containers SET status = ?1 WHERE id = ?2",
                params![StatusSql(to), id],
            )
            .map_err(sql("update status"))?;
            Ok(status)
        })
    }

    /// Read, change and write back container `id` in one transaction (no lost update). `f`
    /// may change everything but the ID, name and creation time; an error from `f` aborts.
    pub fn modify<E>(
        &mut self,
        id: &str,
        f: impl FnOnce(&mut Container) -> Result<(), E>,
    ) -> Result<Container, E>
    where
        E: From<ContainersError>,
    {
        let result = self.write(|tx| {
            let mut c = get_by_id(tx, id).map_err(Aborted::Db)?;
            f(&mut c).map_err(Aborted::Caller)?;
            update(tx, &c).map_err(Aborted::Db)?;
            Ok(c)
        });
        result.map_err(|aborted| match aborted {
            Aborted::Db(e) => E::from(e),
            Aborted::Caller(e) => e,
        })
    }

    /// What berth-monitor writes when the process exits: exit code, signal, OOM kill and
    /// time; the status becomes `exited` (unless the container is being removed) and the pids
    /// are cleared.
    pub fn record_exit(&mut self, id: &str, exit: &ExitRecord) -> Result<(), ContainersError> {
        self.write(|tx| {
            let status = status_of(tx, id)?;
            let status = if status == Status::Removing {
                status
            } else {
                Status::Exited
            };
            tx.execute(
                "UPDATE containers SET status = ?1, exit_code = ?2, exit_signal = ?3, \
                 oom_killed = ?4, finished_at = ?5, pid = NULL, monitor_pid = NULL \
                 WHERE id = ?6",
                params![
                    StatusSql(status),
                    exit.exit_code,
                    exit.signal,
                    exit.oom_killed,
                    Time(exit.finished_at),
                    id
                ],
            )
            .map_err(sql("record exit"))?;
            Ok(())
        })
    }

    /// Rename the container `what` names (ID, name or prefix) to `new_name`.
    pub fn rename(&mut self, what: &str, new_name: &str) -> Result<(), ContainersError> {
        if !names::is_valid(new_name) {
            return Err(ContainersError::InvalidName {
                name: new_name.to_string(),
            });
        }
        let new_name = names::normalize(new_name);
        self.write(|tx| {
            let c = find(tx, what)?;
            if c.name == new_name {
                return Err(ContainersError::SameName);
            }
            let renamed = tx.execute(
                "UPDATE containers SET name = ?1 WHERE id = ?2",
                params![new_name, c.id],
            );
            match renamed {
                Err(e) if is_unique_violation(&e, "containers.name") => {
                    Err(ContainersError::NameInUse {
                        name: new_name.to_string(),
                        id: id_of_name(tx, new_name)?.unwrap_or_default(),
                    })
                }
                other => other.map(|_| ()).map_err(sql("rename container")),
            }
        })
    }

    /// Remove the record of the container `what` names; one with a process only if `force`
    /// (the caller has killed it). Returns the record removed.
    pub fn remove(&mut self, what: &str, force: bool) -> Result<Container, ContainersError> {
        self.write(|tx| {
            let c = find(tx, what)?;
            if c.status.is_live() && !force {
                return Err(ContainersError::IsLive {
                    name: c.name,
                    status: c.status,
                });
            }
            tx.execute("DELETE FROM containers WHERE id = ?1", params![c.id])
                .map_err(sql("remove container"))?;
            Ok(c)
        })
    }
}

/// Insert `c` under `name`.
fn insert(tx: &Transaction, c: &Container, name: &str) -> rusqlite::Result<usize> {
    tx.execute(
        &format!(
            "INSERT INTO containers ({COLUMNS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, \
             ?19, ?20, ?21, ?22)"
        ),
        params![
            c.id,
            name,
            c.image_id,
            c.image_name,
            Time(c.created),
            c.spec_path.to_string_lossy(),
            c.runtime_name,
            c.runtime_path.to_string_lossy(),
            StatusSql(c.status),
            c.pid,
            c.monitor_pid,
            c.exit_code,
            c.exit_signal,
            c.oom_killed,
            c.started_at.map(Time),
            c.finished_at.map(Time),
            c.restart_count,
            Json::text(&c.labels),
            Json::text(&c.ports),
            Json::text(&c.network),
            Json::text(&c.config),
            Json::text(&c.details),
        ],
    )
}

/// Write back the fields [`StateDb::modify`] may change.
fn update(tx: &Transaction, c: &Container) -> Result<(), ContainersError> {
    tx.execute(
        "UPDATE containers SET image_id = ?2, image_name = ?3, spec_path = ?4, \
         runtime_name = ?5, runtime_path = ?6, status = ?7, pid = ?8, monitor_pid = ?9, \
         exit_code = ?10, exit_signal = ?11, oom_killed = ?12, started_at = ?13, \
         finished_at = ?14, restart_count = ?15, labels = ?16, ports = ?17, network = ?18, \
         config = ?19, details = ?20 WHERE id = ?1",
        params![
            c.id,
            c.image_id,
            c.image_name,
            c.spec_path.to_string_lossy(),
            c.runtime_name,
            c.runtime_path.to_string_lossy(),
            StatusSql(c.status),
            c.pid,
            c.monitor_pid,
            c.exit_code,
            c.exit_signal,
            c.oom_killed,
            c.started_at.map(Time),
            c.finished_at.map(Time),
            c.restart_count,
            Json::text(&c.labels),
            Json::text(&c.ports),
            Json::text(&c.network),
            Json::text(&c.config),
            Json::text(&c.details),
        ],
    )
    .map_err(sql("update container"))?;
    Ok(())
}

/// Docker's lookup order: exact ID, exact name, unique ID prefix.
fn find(tx: &Transaction, what: &str) -> Result<Container, ContainersError> {
    if ids::is_full_id(what) {
        if let Some(c) = query_one(tx, "id = ?1", what)? {
            return Ok(c);
        }
    }
    if let Some(c) = query_one(tx, "name = ?1", names::normalize(what))? {
        return Ok(c);
    }
    if ids::is_hex(what) {
        return by_prefix(tx, what);
    }
    Err(no_such(what))
}

/// The one container whose ID starts with `prefix` (lowercase hex, so no LIKE wildcards).
fn by_prefix(tx: &Transaction, prefix: &str) -> Result<Container, ContainersError> {
    let sql_text = format!("SELECT {COLUMNS} FROM containers WHERE id LIKE ?1 || '%' LIMIT 2");
    let mut stmt = tx.prepare(&sql_text).map_err(sql("find by prefix"))?;
    let found = stmt
        .query_map([prefix], record::from_row)
        .map_err(sql("find by prefix"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql("find by prefix"))?;
    match <[Container; 1]>::try_from(found) {
        Ok([c]) => Ok(c),
        Err(found) if found.is_empty() => Err(no_such(prefix)),
        Err(_) => Err(ContainersError::AmbiguousPrefix {
            prefix: prefix.to_string(),
        }),
    }
}

/// The container with exactly this ID.
fn get_by_id(tx: &Transaction, id: &str) -> Result<Container, ContainersError> {
    query_one(tx, "id = ?1", id)?.ok_or_else(|| no_such(id))
}

/// The status of the container with exactly this ID.
fn status_of(tx: &Transaction, id: &str) -> Result<Status, ContainersError> {
    tx.query_row("SELECT status FROM containers WHERE id = ?1", [id], |row| {
        row.get::<_, StatusSql>(0)
    })
    .optional()
    .map_err(sql("read status"))?
    .map(|s| s.0)
    .ok_or_else(|| no_such(id))
}

/// The container matching `condition` on `value`, if any.
fn query_one(
    tx: &Transaction,
    condition: &str,
    value: &str,
) -> Result<Option<Container>, ContainersError> {
    let sql_text = format!("SELECT {COLUMNS} FROM containers WHERE {condition}");
    tx.query_row(&sql_text, [value], record::from_row)
        .optional()
        .map_err(sql("find container"))
}

/// The ID of the container named `name`.
fn id_of_name(tx: &Transaction, name: &str) -> Result<Option<String>, ContainersError> {
    tx.query_row("SELECT id FROM containers WHERE name = ?1", [name], |row| {
        row.get(0)
    })
    .optional()
    .map_err(sql("find name"))
}

/// Whether `e` is a UNIQUE violation on `column` (`table.column`).
fn is_unique_violation(e: &rusqlite::Error, column: &str) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, Some(msg))
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE && msg.contains(column))
}

/// The error for nothing matching `what`.
fn no_such(what: &str) -> ContainersError {
    ContainersError::NoSuchContainer {
        what: what.to_string(),
    }
}

/// The error for a compare-and-set that found `status`.
fn wrong_status(id: &str, status: Status, from: &[Status], to: Status) -> ContainersError {
    let wanted: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    ContainersError::WrongStatus {
        id: id.to_string(),
        status,
        wanted: wanted.join("|"),
        to,
    }
}
