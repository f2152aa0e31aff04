//! The engine's state: an embedded SQLite database at `<data root>/berth.db`, shared by every
//! `berth` process (there is no daemon) and by berth-monitor, which writes exit records. See
//! the crate README's "State" section.

mod containers;
mod db;
mod ids;
mod migrations;
mod names;
mod record;
mod status;

pub use containers::{ContainersError, ExitRecord};
pub use db::{DbError, StateDb, BUSY_TIMEOUT, DB_FILE};
pub use ids::{is_full_id, new_id, short_id, IdError};
pub use migrations::{migrate, user_version, MigrationError, MIGRATIONS};
pub use names::{generate as generate_name, is_valid as is_valid_name};
pub use record::{format_time, Container};
pub use status::{Status, UnknownStatus};

#[cfg(test)]
mod concurrency_tests;
#[cfg(test)]
mod tests;
