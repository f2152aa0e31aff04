//! Running inside a user namespace that is not the initial one (rootless Berth, or any rootless
//! caller): mknod is refused, and cgroups may not be creatable.

use oci_spec::runtime::Spec;

/// Is this process in a user namespace other than the initial one?
pub fn in_user_namespace() -> bool {
    static IN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *IN.get_or_init(|| {
        let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
        let fields: Vec<&str> = map.split_whitespace().collect();
        fields != ["0", "0", "4294967295"]
    })
}

/// EACCES, EPERM or EROFS: the user may not create the cgroup.
pub fn is_permission_error(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EACCES | libc::EPERM | libc::EROFS)
    )
}

/// Does the spec ask for any resource limit (device rules aside, which need no cgroup to be
/// safe here: a user namespace cannot mknod)?
pub fn has_limits(spec: &Spec) -> bool {
    let Some(resources) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) else {
        return false;
    };
    let mut without_devices = resources.clone();
    without_devices.set_devices(None);
    without_devices != oci_spec::runtime::LinuxResources::default()
}
