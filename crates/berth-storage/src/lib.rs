//! Layer store, whiteouts, overlay mounts, rootfs quotas, image and container stores. (Not built yet: issue 4.)
