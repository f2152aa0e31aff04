//! `berth create`: the record (which reserves the name), the writable layer, volumes, and the
//! OCI spec in the bundle. The record is marked incomplete until all of it is there; a
//! failure removes what was made, and a crash is cleaned up by the next command
//! (`reconcile`), which can tell a crashed creation from a running one by its lock.

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use berth_storage::RootfsOptions;

use super::config::{set_details, ContainerConfig, Details, VolumeUse};
use super::options::CreateOptions;
use super::runtime::Runtime;
use super::volumes::{copy_up, Volumes};
use super::{io_err, tools, ContainerError, Engine};
use crate::images::{ImageConfig, ImagesError};
use crate::spec::parse::{DeviceSpec, SecurityOpt};
use crate::spec::parse_mount::{VolumeSource, VolumeSpec};
use crate::spec::{
    self, BindMount, DeviceMapping, HostDevice, InitBinary, NamespaceMode, RunOptions,
    SeccompError, SeccompProfile, SpecError, ThrottleDevice,
};
use crate::state::{new_id, Container};

/// Where berth-init appears inside a container: `/dev` is a tmpfs the runtime makes, so the
/// mount point can always be created, even on a read-only rootfs.
pub const INIT_PATH: &str = "/dev/init";

/// Entrypoints that already are an init: berth-init is not put in front of them.
const INITS: &[&str] = &[
    "tini",
    "tini-static",
    "dumb-init",
    "catatonit",
    "s6-svscan",
    "systemd",
    "init",
    "berth-init",
    "docker-init",
];

impl Engine {
    /// Create a container; nothing runs yet, and its rootfs stays mounted for the `start` that
    /// usually follows (`berth create` releases it: [`Engine::release_rootfs`]). On failure
    /// nothing is left behind.
    pub fn create(&mut self, opts: &CreateOptions) -> Result<Container, ContainerError> {
        let rootless_opts = crate::rootless::create::check_create(opts)?;
        let opts: &CreateOptions = &rootless_opts;
        let userns = super::userns::plan(opts.userns.as_deref(), &opts.uidmap, &opts.gidmap)?;
        let runtime = Runtime::resolve(opts.runtime.as_deref(), &self.run_root)?;
        let image = self.images.resolve(&opts.image).map_err(|e| match e {
            ImagesError::NoSuchImage { .. } => ContainerError::NoSuchImage(opts.image.clone()),
            other => other.into(),
        })?;
        let image_config = self.images.config(&image)?;
        let rootfs_options = RootfsOptions::parse(&opts.storage_opts)?;
        let id = new_id()?;
        let dirs = self.dirs(&id);
        // Held until the record is complete: the next command's repair tells a creation that
        // died (lock free, record incomplete) from one under way.
        let lock = super::lock::lock(&self.run_root, &id)?;
        let mut record = Container::new(
            id.clone(),
            opts.name.clone().unwrap_or_default(),
            (image.id.clone(), opts.image.clone()),
            dirs.config_json(),
            (runtime.name.clone(), runtime.path.clone()),
        );
        set_details(
            &mut record,
            &Details {
                incomplete: true,
                ..Details::default()
            },
        );
        let inserted = match opts.name {
            Some(_) => self.db.create(&record),
            None => self.db.create_with_generated_name(&mut record),
        };
        if let Err(e) = inserted {
            super::lock::forget(&self.run_root, &id);
            return Err(e.into());
        }
        let mut made_volumes = Vec::new();
        // The bundle directory comes after the record, which is what a repair goes by.
        let made = super::make_private_dir(&dirs.bundle).and_then(|()| {
            self.make(
                &mut record,
                opts,
                (&image, &image_config),
                (&rootfs_options, &userns),
                &mut made_volumes,
            )
        });
        let record = match made {
            Ok(()) => {
                set_details(&mut record, &Details::default());
                let (config, labels) = (record.config.clone(), record.labels.clone());
                self.db.modify(&id, |c| {
                    c.config = config;
                    c.labels = labels;
                    c.details = serde_json::json!({});
                    Ok::<_, ContainerError>(())
                })?
            }
            Err(e) => {
                // The volumes this creation made are not in the record yet.
                let store = Volumes::new(&self.data_root);
                let mut failures: Vec<String> = made_volumes
                    .iter()
                    .filter_map(|v| store.remove(v).err().map(|e| e.to_string()))
                    .collect();
                if let Err(teardown) = self.remove_everything_locked(&record, true, &lock) {
                    failures.push(teardown.to_string());
                }
                if !failures.is_empty() {
                    return Err(ContainerError::Start(format!(
                        "{e} (and cleaning up: {})",
                        failures.join("; ")
                    )));
                }
                return Err(e);
            }
        };
        drop(lock);
        Ok(record)
    }

    /// Unmount the rootfs of a container that does not run (after `berth create`: a container
    /// that never runs holds no mount; `start` mounts it again).
    pub fn release_rootfs(&mut self, id: &str) -> Result<(), ContainerError> {
        Ok(self.images.containers.unmount(id)?)
    }

    /// The steps after the record: layer, volumes, spec.
    fn make(
        &mut self,
        record: &mut Container,
        opts: &CreateOptions,
        (image, image_config): (&berth_storage::Image, &ImageConfig),
        (rootfs_options, userns): (&RootfsOptions, &super::userns::Plan),
        made_volumes: &mut Vec<String>,
    ) -> Result<(), ContainerError> {
        let id = record.id.clone();
        let id_map = self.userns_map(&id, userns)?;
        let rootfs_options = &RootfsOptions {
            idmap: id_map.clone(),
            ..rootfs_options.clone()
        };
        {
            // Shared: a garbage collection cannot take the image's layers meanwhile.
            let _gc = self.images.gc_lock(false)?;
            let lowers = match image.top_layer() {
                Some(top) => self.images.layers.lower_dirs(top)?,
                None => Vec::new(),
            };
            let layer = self
                .images
                .containers
                .create(&id, &lowers, rootfs_options)?;
            super::userns::report_copy(&layer);
        }
        let rootfs = self.images.containers.mount(&id)?;
        let mut run = opts.run.clone();
        run.id_map = id_map;
        if run.user.is_none() {
            run.user = userns.default_user();
        }
        let mut config = ContainerConfig {
            stdin_open: run.stdin_open,
            tty: run.tty,
            stop_timeout: opts.stop_timeout.unwrap_or(10),
            auto_remove: opts.auto_remove,
            storage_opts: opts.storage_opts.clone(),
            network_mode: if opts.network.is_empty() {
                "bridge".to_owned()
            } else {
                opts.network.clone()
            },
            net: opts.net.clone(),
            exposed_ports: exposed_ports(image_config, &opts.net.expose)?,
            ..ContainerConfig::default()
        };
        self.resolve_mounts(&mut run, &mut config, &opts.volumes, &rootfs, made_volumes)?;
        resolve_devices(&mut run, opts)?;
        self.resolve_namespaces(&mut run, opts)?;
        config.joins = self.join_targets(opts)?;
        apply_security_opts(&mut run, &opts.security_opts)?;
        run.group_add.clone_from(&opts.group_add);
        run.grantable = grantable_capabilities();
        run.cgroups_path = Some(PathBuf::from(format!("/berth/{id}")));
        run.cgroup_v2 = berth_cgroups::Layout::detect()
            .map(|l| l.mode() == berth_cgroups::Mode::V2)
            .unwrap_or(false);
        if run.hostname.is_none() && run.uts == NamespaceMode::Private {
            run.hostname = Some(crate::state::short_id(&id).to_owned());
        }
        config.hostname = run.hostname.clone().unwrap_or_default();
        let bundle = self.dirs(&id).bundle;
        config.own_netns = self.join_networks(&id, &bundle, opts, &mut run)?;
        // Generated with berth-init in front (the default); again without it only when the
        // entrypoint already is an init.
        if opts.init.unwrap_or(true) && run.pid == NamespaceMode::Private {
            run.init = Some(InitBinary {
                host_path: tools::find("berth-init", "BERTH_INIT")?,
                container_path: INIT_PATH.to_owned(),
            });
        }
        let mut generated = spec::generate(image_config, &rootfs, &run)?;
        config.init = run.init.is_some();
        if config.init && is_init(&generated.spec, 2) {
            run.init = None;
            generated = spec::generate(image_config, &rootfs, &run)?;
            config.init = false;
        }
        crate::rootless::create::adapt_spec(&mut generated.spec, &run);
        let args = generated
            .spec
            .process()
            .as_ref()
            .and_then(|p| p.args().clone())
            .unwrap_or_default();
        let skip = if config.init { 2 } else { 0 };
        (config.entrypoint, config.cmd) = split_command(image_config, &run, &args[skip..]);
        config.stop_signal = generated.stop_signal.clone();
        for volume in &generated.volumes {
            let name =
                self.add_anonymous_volume(&mut generated.spec, &mut config, volume, &rootfs)?;
            made_volumes.push(name);
        }
        write_spec(&self.dirs(&id).config_json(), &generated.spec)?;
        record.config = serde_json::to_value(&config).unwrap_or_default();
        record.labels = serde_json::to_value(&generated.labels).unwrap_or_default();
        Ok(())
    }

    /// `-v` and `--mount`: binds must exist; named and anonymous volumes are made (and get
    /// the image's content when new).
    fn resolve_mounts(
        &self,
        run: &mut RunOptions,
        config: &mut ContainerConfig,
        volumes: &[VolumeSpec],
        rootfs: &Path,
        made_volumes: &mut Vec<String>,
    ) -> Result<(), ContainerError> {
        let store = Volumes::new(&self.data_root);
        for v in volumes {
            let (source, name, anonymous) = match &v.source {
                VolumeSource::Bind(path) => {
                    let abs =
                        std::path::absolute(path).map_err(io_err("resolve", Path::new(path)))?;
                    if !abs.exists() {
                        return Err(ContainerError::BindSource(path.clone()));
                    }
                    let ro = if v.read_only { ":ro" } else { "" };
                    config
                        .binds
                        .push(format!("{}:{}{ro}", abs.display(), v.target));
                    (abs, None, false)
                }
                VolumeSource::Named(name) => (
                    self.volume(&store, name, v, rootfs)?,
                    Some(name.clone()),
                    false,
                ),
                VolumeSource::Anonymous => {
                    let name = new_id()?;
                    made_volumes.push(name.clone());
                    (self.volume(&store, &name, v, rootfs)?, Some(name), true)
                }
            };
            if let Some(name) = name {
                config.volumes.push(VolumeUse {
                    name,
                    destination: v.target.clone(),
                    anonymous,
                    read_only: v.read_only,
                });
            }
            run.binds.push(BindMount {
                source,
                destination: v.target.clone(),
                read_only: v.read_only,
                propagation: Some(v.propagation),
            });
        }
        Ok(())
    }

    fn volume(
        &self,
        store: &Volumes,
        name: &str,
        v: &VolumeSpec,
        rootfs: &Path,
    ) -> Result<PathBuf, ContainerError> {
        let (data, new) = store.ensure(name)?;
        if new && !v.no_copy {
            copy_up(rootfs, &v.target, &data)?;
        }
        Ok(data)
    }

    /// An image `VOLUME` no user mount covers: a new anonymous volume, bind-mounted.
    fn add_anonymous_volume(
        &self,
        spec: &mut oci_spec::runtime::Spec,
        config: &mut ContainerConfig,
        target: &str,
        rootfs: &Path,
    ) -> Result<String, ContainerError> {
        let store = Volumes::new(&self.data_root);
        let name = new_id()?;
        let v = VolumeSpec {
            source: VolumeSource::Anonymous,
            target: target.to_owned(),
            read_only: false,
            propagation: Default::default(),
            relabel: None,
            no_copy: false,
        };
        let data = self.volume(&store, &name, &v, rootfs)?;
        config.volumes.push(VolumeUse {
            name: name.clone(),
            destination: target.to_owned(),
            anonymous: true,
            read_only: false,
        });
        let mount = oci_spec::runtime::MountBuilder::default()
            .destination(target)
            .typ("bind")
            .source(data)
            .options(vec!["rbind".to_owned(), "rprivate".to_owned()])
            .build()
            .map_err(spec::SpecError::Build)?;
        let mut mounts = spec.mounts().clone().unwrap_or_default();
        mounts.push(mount);
        spec.set_mounts(Some(mounts));
        Ok(name)
    }

    /// `--network`, `--ipc`, `--pid`, `--uts`: host, private, or another container's.
    fn resolve_namespaces(
        &mut self,
        run: &mut RunOptions,
        opts: &CreateOptions,
    ) -> Result<(), ContainerError> {
        run.network = self.namespace(&opts.network, "net")?;
        run.ipc = self.namespace(&opts.ipc, "ipc")?;
        run.pid = self.namespace(&opts.pid, "pid")?;
        run.uts = self.namespace(&opts.uts, "uts")?;
        Ok(())
    }

    fn namespace(&mut self, mode: &str, kind: &str) -> Result<NamespaceMode, ContainerError> {
        if mode == "host" {
            return Ok(NamespaceMode::Host);
        }
        let Some(other) = mode.strip_prefix("container:") else {
            return Ok(NamespaceMode::Private);
        };
        let c = self.db.get(other)?;
        Ok(NamespaceMode::Path(self.namespace_path(&c.id, kind)?))
    }
}

/// This process's bounding set (`CapBnd` in /proc/self/status): what any container can be
/// given. A host may withhold some (CAP_SYS_RESOURCE here); asking for it would fail `capset`.
fn grantable_capabilities() -> Option<Vec<String>> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))?
        .trim();
    let mask = u64::from_str_radix(hex, 16).ok()?;
    Some(
        crate::spec::ALL_CAPABILITIES
            .iter()
            .enumerate()
            .filter(|(bit, _)| *bit < 64 && mask & (1 << bit) != 0)
            .map(|(_, c)| (*c).to_owned())
            .collect(),
    )
}

/// `--device` and the throttles: look the host devices up.
fn resolve_devices(run: &mut RunOptions, opts: &CreateOptions) -> Result<(), ContainerError> {
    for d in &opts.devices {
        run.devices.push(device_mapping(d)?);
    }
    let throttle = |list: &[(String, u64)]| -> Result<Vec<ThrottleDevice>, ContainerError> {
        list.iter()
            .map(|(path, rate)| {
                let host = host_device(path)?;
                Ok(ThrottleDevice {
                    major: host.major,
                    minor: host.minor,
                    rate: *rate,
                })
            })
            .collect()
    };
    run.resources.device_read_bps = throttle(&opts.device_read_bps)?;
    run.resources.device_write_bps = throttle(&opts.device_write_bps)?;
    run.resources.device_read_iops = throttle(&opts.device_read_iops)?;
    run.resources.device_write_iops = throttle(&opts.device_write_iops)?;
    Ok(())
}

fn device_mapping(d: &DeviceSpec) -> Result<DeviceMapping, ContainerError> {
    Ok(DeviceMapping {
        host: host_device(&d.host)?,
        container_path: d.container.clone(),
        permissions: d.permissions.clone(),
    })
}

/// The device node at `path` (following symlinks, as docker does).
fn host_device(path: &str) -> Result<HostDevice, ContainerError> {
    use std::os::unix::fs::MetadataExt;
    let bad = |reason: String| ContainerError::Device {
        path: path.to_owned(),
        reason,
    };
    let meta = fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    let kind = meta.file_type();
    let typ = if kind.is_block_device() {
        oci_spec::runtime::LinuxDeviceType::B
    } else if kind.is_char_device() {
        oci_spec::runtime::LinuxDeviceType::C
    } else {
        return Err(bad("not a device node".to_owned()));
    };
    let rdev = meta.rdev();
    Ok(HostDevice {
        path: PathBuf::from(path),
        kind: typ,
        major: i64::from(rustix::fs::major(rdev)),
        minor: i64::from(rustix::fs::minor(rdev)),
        file_mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
    })
}

fn apply_security_opts(run: &mut RunOptions, opts: &[SecurityOpt]) -> Result<(), ContainerError> {
    for opt in opts {
        match opt {
            SecurityOpt::NoNewPrivileges(on) => run.no_new_privileges = *on,
            SecurityOpt::SeccompUnconfined => run.seccomp_unconfined = true,
            SecurityOpt::SeccompProfile(path) => run.seccomp_profile = Some(seccomp_profile(path)?),
            SecurityOpt::Mask(paths) => run.mask.extend(paths.iter().cloned()),
            SecurityOpt::Unmask(paths) => run.unmask.extend(paths.iter().cloned()),
            SecurityOpt::Other(_) => {}
        }
    }
    Ok(())
}

/// `--security-opt seccomp=FILE`: a profile in docker's format, read and decoded here (the
/// spec generator converts it for the container's capabilities).
fn seccomp_profile(path: &str) -> Result<SeccompProfile, ContainerError> {
    let json = fs::read_to_string(path).map_err(|e| {
        ContainerError::Spec(SpecError::Seccomp(SeccompError::Read {
            path: path.to_owned(),
            reason: e.to_string(),
        }))
    })?;
    Ok(SeccompProfile::from_json(&json, path).map_err(SpecError::Seccomp)?)
}

/// Whether the spec's program (its argument `index`: 2 after `/dev/init --`) already is an
/// init, by its file name.
fn is_init(spec: &oci_spec::runtime::Spec, index: usize) -> bool {
    let program = spec
        .process()
        .as_ref()
        .and_then(|p| p.args().as_ref())
        .and_then(|a| a.get(index).cloned())
        .unwrap_or_default();
    let name = program.rsplit('/').next().unwrap_or_default();
    INITS.contains(&name) || program.ends_with("/lib/systemd/systemd")
}

/// docker's `Config.Entrypoint` and `Config.Cmd` of the final command line.
fn split_command(
    image: &ImageConfig,
    run: &RunOptions,
    args: &[String],
) -> (Vec<String>, Vec<String>) {
    let image_entrypoint = image
        .config
        .as_ref()
        .and_then(|c| c.get("Entrypoint"))
        .and_then(|e| serde_json::from_value::<Vec<String>>(e.clone()).ok())
        .unwrap_or_default();
    let n = match &run.entrypoint {
        Some(e) => e.len(),
        None => image_entrypoint.len(),
    }
    .min(args.len());
    (args[..n].to_vec(), args[n..].to_vec())
}

/// The image's `ExposedPorts` and `--expose`, as `80/tcp`.
fn exposed_ports(image: &ImageConfig, expose: &[String]) -> Result<Vec<String>, ContainerError> {
    let mut ports: Vec<String> = image
        .config
        .as_ref()
        .and_then(|c| c.get("ExposedPorts"))
        .and_then(|p| p.as_object())
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    for e in expose {
        for spec in crate::networks::parse_publish(e)? {
            if spec.host_ip.is_some() || spec.host_port != 0 {
                return Err(crate::networks::NetworkError::Invalid(format!(
                    "invalid --expose {e:?}: a container port or range, without a host part"
                ))
                .into());
            }
            let text = format!(
                "{}/{}",
                spec.container_port,
                crate::networks::proto_name(spec.proto)
            );
            if !ports.contains(&text) {
                ports.push(text);
            }
        }
    }
    Ok(ports)
}

/// Write the spec: tmp + fsync + rename.
pub(crate) fn write_spec(
    path: &Path,
    spec: &oci_spec::runtime::Spec,
) -> Result<(), ContainerError> {
    let bytes = serde_json::to_vec_pretty(spec)
        .map_err(|e| io_err("serialize", path)(std::io::Error::other(e)))?;
    crate::containers::cleanup::write_atomic(path, &bytes)
}
