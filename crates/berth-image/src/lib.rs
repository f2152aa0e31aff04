//! References, registry client, manifests and content-addressed blobs. (Not built yet: issue 4.)
