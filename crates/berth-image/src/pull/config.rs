//! What a pull needs from the image config: the layers' diffIDs, and their chainIDs.

use crate::digest::Digest;

#[derive(serde::Deserialize)]
struct Config {
    rootfs: RootFs,
}

#[derive(serde::Deserialize)]
struct RootFs {
    diff_ids: Vec<Digest>,
}

/// `rootfs.diff_ids` of the config `bytes`, which must have `layers` entries.
pub(super) fn diff_ids(bytes: &[u8], layers: usize) -> Result<Vec<Digest>, String> {
    let config: Config = serde_json::from_slice(bytes)
        .map_err(|e| format!("not an image config with rootfs.diff_ids: {e}"))?;
    let diff_ids = config.rootfs.diff_ids;
    if diff_ids.len() != layers {
        return Err(format!(
            "the manifest has {layers} layers but rootfs.diff_ids has {}",
            diff_ids.len()
        ));
    }
    Ok(diff_ids)
}

/// The chainID of each layer (OCI image spec): the base layer's diffID, then
/// `sha256(parent chainID + " " + diffID)`.
pub(super) fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut chain: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match chain.last() {
            None => diff_id.clone(),
            Some(parent) => Digest::of(format!("{parent} {diff_id}").as_bytes()),
        };
        chain.push(next);
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_ids_must_match_the_layer_count() {
        let a = Digest::of(b"a");
        let config = format!(r#"{{"rootfs":{{"type":"layers","diff_ids":["{a}"]}}}}"#);
        assert_eq!(diff_ids(config.as_bytes(), 1), Ok(vec![a]));
        let err = diff_ids(config.as_bytes(), 2).expect_err("count");
        assert!(err.contains("2 layers but rootfs.diff_ids has 1"), "{err}");
        let err = diff_ids(b"{}", 0).expect_err("no rootfs");
        assert!(err.contains("rootfs"), "{err}");
    }

    #[test]
    fn chain_ids_follow_the_image_spec() {
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        let chain = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(chain[0], a);
        assert_eq!(chain[1], Digest::of(format!("{a} {b}").as_bytes()));
    }
}
