//! Where Berth keeps its state: `/var/lib/berth` and `/run/berth` for root, the XDG data and
//! runtime directories for anyone else.

use std::path::PathBuf;

/// The default data root: `/var/lib/berth` for root, `$XDG_DATA_HOME/berth` (or
/// `~/.local/share/berth`) otherwise.
pub fn default_data_root() -> PathBuf {
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/berth");
    }
    let xdg = std::env::var_os("XDG_DATA_HOME").map(PathBuf::from);
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share"));
    xdg.or(home)
        .unwrap_or_else(|| PathBuf::from("/tmp"))
        .join("berth")
}

/// The storage root (blobs, layers, images, container layers) inside a data root.
pub fn storage_root(data_root: &std::path::Path) -> PathBuf {
    data_root.join("storage")
}
