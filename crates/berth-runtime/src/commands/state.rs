//! `state`: print the runtime-spec state document.

use super::Error;
use crate::state::Store;

/// Print the state of `id` as indented JSON, as runc does.
pub fn run(store: &Store, id: &str) -> Result<i32, Error> {
    let container = store.peek(id)?;
    let text = serde_json::to_string_pretty(&container.oci_state())
        .map_err(|e| Error::Invalid(e.to_string()))?;
    println!("{text}");
    Ok(0)
}
