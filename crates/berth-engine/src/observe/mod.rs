//! Observing running containers: `docker stats`-like figures for many containers in one
//! sampling pass ([`stats`]), the processes of one container with their CPU and memory
//! ([`top`]), and reading k8s-file container logs ([`logs`]). The formulas are in
//! `docs/stats.md`.

pub mod logs;
pub mod procns;
pub mod stats;
pub mod top;

/// Serializes a time as [`logs::format_timestamp`] writes it (RFC 3339, UTC, nanoseconds).
fn serialize_time<S: serde::Serializer>(
    time: &time::OffsetDateTime,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&logs::format_timestamp(*time))
}

#[cfg(test)]
mod testutil;
