//! The container record and its mapping to a `containers` row.

use std::path::PathBuf;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::Row;
use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

use super::status::Status;

/// RFC 3339 in UTC with all nine digits of nanoseconds: fixed width, so the text sorts as the
/// time does.
const TIME_FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z");

/// What the state database knows of a container.
#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    /// 64 lowercase hex digits.
    pub id: String,
    /// The name, without docker's leading `/`.
    pub name: String,
    /// The image's ID (`sha256:...`).
    pub image_id: String,
    /// The image as the user named it.
    pub image_name: String,
    /// When it was created.
    pub created: OffsetDateTime,
    /// The generated OCI spec (`config.json` in the bundle).
    pub spec_path: PathBuf,
    /// The OCI runtime's name (`berth-runtime`, `runc`, `crun`).
    pub runtime_name: String,
    /// The OCI runtime's binary.
    pub runtime_path: PathBuf,
    /// Where it is in its life.
    pub status: Status,
    /// The container's init process, while it runs.
    pub pid: Option<i32>,
    /// Its berth-monitor, while it runs.
    pub monitor_pid: Option<i32>,
    /// The last exit code.
    pub exit_code: Option<i32>,
    /// The signal that ended it, if one did.
    pub exit_signal: Option<i32>,
    /// Whether the kernel's OOM killer ended it.
    pub oom_killed: bool,
    /// When it last started.
    pub started_at: Option<OffsetDateTime>,
    /// When it last finished.
    pub finished_at: Option<OffsetDateTime>,
    /// How many times its restart policy restarted it.
    pub restart_count: u32,
    /// Labels, a JSON object.
    pub labels: serde_json::Value,
    /// Published ports, JSON (placeholder until networking lands).
    pub ports: serde_json::Value,
    /// Network settings, JSON (placeholder until networking lands).
    pub network: serde_json::Value,
    /// What the engine keeps beside the spec (`containers::ContainerConfig`), JSON.
    pub config: serde_json::Value,
    /// What it learned while running (`containers::Details`), JSON.
    pub details: serde_json::Value,
}

impl Container {
    /// A `created` record with no process, labels, ports or network yet.
    pub fn new(
        id: String,
        name: String,
        image: (String, String),
        spec_path: PathBuf,
        runtime: (String, PathBuf),
    ) -> Container {
        Container {
            id,
            name,
            image_id: image.0,
            image_name: image.1,
            created: OffsetDateTime::now_utc(),
            spec_path,
            runtime_name: runtime.0,
            runtime_path: runtime.1,
            status: Status::Created,
            pid: None,
            monitor_pid: None,
            exit_code: None,
            exit_signal: None,
            oom_killed: false,
            started_at: None,
            finished_at: None,
            restart_count: 0,
            labels: serde_json::json!({}),
            ports: serde_json::json!([]),
            network: serde_json::json!({}),
            config: serde_json::json!({}),
            details: serde_json::json!({}),
        }
    }
}

/// The columns, in the order [`from_row`] reads them.
pub(crate) const COLUMNS: &str = "id, name, image_id, image_name, created, spec_path, \
    runtime_name, runtime_path, status, pid, monitor_pid, exit_code, exit_signal, oom_killed, \
    started_at, finished_at, restart_count, labels, ports, network, config, details";

/// A row read with [`COLUMNS`].
pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<Container> {
    Ok(Container {
        id: row.get(0)?,
        name: row.get(1)?,
        image_id: row.get(2)?,
        image_name: row.get(3)?,
        created: row.get::<_, Time>(4)?.0,
        spec_path: PathBuf::from(row.get::<_, String>(5)?),
        runtime_name: row.get(6)?,
        runtime_path: PathBuf::from(row.get::<_, String>(7)?),
        status: row.get::<_, StatusSql>(8)?.0,
        pid: row.get(9)?,
        monitor_pid: row.get(10)?,
        exit_code: row.get(11)?,
        exit_signal: row.get(12)?,
        oom_killed: row.get(13)?,
        started_at: row.get::<_, Option<Time>>(14)?.map(|t| t.0),
        finished_at: row.get::<_, Option<Time>>(15)?.map(|t| t.0),
        restart_count: row.get(16)?,
        labels: row.get::<_, Json>(17)?.0,
        ports: row.get::<_, Json>(18)?.0,
        network: row.get::<_, Json>(19)?.0,
        config: row.get::<_, Json>(20)?.0,
        details: row.get::<_, Json>(21)?.0,
    })
}

/// A time as stored: [`TIME_FORMAT`] text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Time(pub OffsetDateTime);

/// Format a time as stored (and as `berth inspect` shows it). Fails only for years outside
/// 0..=9999.
pub fn format_time(t: OffsetDateTime) -> Result<String, time::error::Format> {
    t.to_offset(time::UtcOffset::UTC).format(TIME_FORMAT)
}

impl ToSql for Time {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        let text = format_time(self.0)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(ToSqlOutput::from(text))
    }
}

impl FromSql for Time {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Time> {
        let text = value.as_str()?;
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .map(Time)
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

/// A JSON column: always the JSON text (a string too is stored quoted).
pub(crate) struct Json(pub serde_json::Value);

impl Json {
    /// The stored text of `value`.
    pub(crate) fn text(value: &serde_json::Value) -> String {
        value.to_string()
    }
}

impl FromSql for Json {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Json> {
        serde_json::from_str(value.as_str()?)
            .map(Json)
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

/// A status as stored: its lowercase name.
pub(crate) struct StatusSql(pub Status);

impl ToSql for StatusSql {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.0.as_str()))
    }
}

impl FromSql for StatusSql {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<StatusSql> {
        value
            .as_str()?
            .parse()
            .map(StatusSql)
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_keep_nanoseconds_and_sort_as_text() {
        let t =
            OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_000_000_001).expect("a time");
        let text = format_time(t).expect("format");
        assert_eq!(text, "2023-11-14T22:13:20.000000001Z");
        let later = format_time(t + time::Duration::nanoseconds(999_999_999)).expect("format");
        assert!(later > text);
    }
}
