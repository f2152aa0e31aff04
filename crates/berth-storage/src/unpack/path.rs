//! Lexical cleaning of tar entry names: `.` and empty components are dropped and `..` removes the
//! previous component, like docker's `pkg/archive`. Unlike docker (which strips a leading `/`),
//! an absolute name is an error: layer entries are relative to the layer root, and an absolute
//! one is either a broken or a hostile layer. A `..` with nothing left to remove would escape the
//! layer and is an error too.

use std::ffi::CString;

/// A cleaned entry path: components with no `/`, `.` or `..`, and no NUL. Empty means the layer root.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntryPath {
    components: Vec<Vec<u8>>,
}

/// Why an entry name cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadPath {
    /// A `..` would leave the layer, or the name is absolute (starts with `/`).
    Escapes,
    /// The name contains a NUL byte.
    Nul,
}

impl EntryPath {
    /// Clean `raw` lexically; see the module docs.
    pub fn clean(raw: &[u8]) -> Result<EntryPath, BadPath> {
        if raw.starts_with(b"/") {
            return Err(BadPath::Escapes);
        }
        let mut components: Vec<Vec<u8>> = Vec::new();
        for part in raw.split(|&b| b == b'/') {
            match part {
                b"" | b"." => {}
                b".." => {
                    components.pop().ok_or(BadPath::Escapes)?;
                }
                _ if part.contains(&0) => return Err(BadPath::Nul),
                _ => components.push(part.to_vec()),
            }
        }
        Ok(EntryPath { components })
    }

    /// The layer root.
    pub fn root() -> EntryPath {
        EntryPath {
            components: Vec::new(),
        }
    }

    /// True for the layer root itself (`./`, `.`).
    pub fn is_root(&self) -> bool {
        self.components.is_empty()
    }

    /// The last component, if any.
    pub fn file_name(&self) -> Option<&[u8]> {
        self.components.last().map(Vec::as_slice)
    }

    /// The path without its last component.
    pub fn parent(&self) -> EntryPath {
        let mut components = self.components.clone();
        components.pop();
        EntryPath { components }
    }

    /// The parent with `name` as the last component instead.
    pub fn with_file_name(&self, name: &[u8]) -> EntryPath {
        let mut path = self.parent();
        path.components.push(name.to_vec());
        path
    }

    /// The components, outermost first.
    pub fn components(&self) -> &[Vec<u8>] {
        &self.components
    }

    /// The relative path as a C string for `*at` calls (`.` for the root).
    pub fn to_cstring(&self) -> CString {
        let joined = if self.is_root() {
            b".".to_vec()
        } else {
            self.components.join(&b'/')
        };
        // Components never contain NUL (checked in `clean`), so this cannot fail; fall back to
        // "." rather than panic.
        CString::new(joined).unwrap_or_else(|_| c".".to_owned())
    }
}

impl std::fmt::Display for EntryPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}",
            String::from_utf8_lossy(&self.to_cstring().into_bytes())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(raw: &str) -> Result<String, BadPath> {
        EntryPath::clean(raw.as_bytes()).map(|p| p.to_string())
    }

    #[test]
    fn cleans_like_docker_but_rejects_absolute_names() {
        assert_eq!(show("./a/b/").unwrap(), "a/b");
        assert_eq!(show("/abs"), Err(BadPath::Escapes));
        assert_eq!(show("/"), Err(BadPath::Escapes));
        assert_eq!(show("//a"), Err(BadPath::Escapes));
        assert_eq!(show("a/../b").unwrap(), "b");
        assert_eq!(show("./").unwrap(), ".");
        assert_eq!(show("../escape"), Err(BadPath::Escapes));
        assert_eq!(show("a/../../x"), Err(BadPath::Escapes));
        assert_eq!(show("/../x"), Err(BadPath::Escapes));
    }
}
