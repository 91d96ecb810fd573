//! One container's bundle: the overlay root, the etc files and
//! `config.json`, made from the pulled image and the instance's spec.

use std::path::Path;

use atoll_sdk::cluster::InstanceSpec;

use super::cgroup::cgroups_path;
use super::{ContainerError, volumes};
use crate::container::network::Attachment;
use crate::container::rootfs;
use crate::container::spec::{self, EtcFiles, SpecInput, user};
use crate::oci::pull::PulledImage;

/// What one container's bundle is made from.
pub(crate) struct Inputs<'a> {
    /// Where named volumes live (`<data>/volumes`).
    pub volumes_root: &'a Path,
    pub bundle: &'a Path,
    /// The unpacked image (the overlay's lower layer).
    pub lower: &'a Path,
    pub spec: &'a InstanceSpec,
    pub image: &'a PulledImage,
    pub host: &'a str,
    pub net: &'a Attachment,
    /// The host's init binary, for `init: true`.
    pub init: Option<&'a Path>,
    /// Its secrets and configs with their values.
    pub files: &'a [crate::file_values::Mounted],
}

pub(crate) fn prepare(inputs: &Inputs) -> Result<(), ContainerError> {
    let Inputs {
        volumes_root,
        bundle,
        lower,
        spec,
        image,
        host,
        net,
        init,
        files,
    } = *inputs;
    let io = |what: String| move |source| ContainerError::Io { what, source };
    let config = image.config.clone().unwrap_or_default();
    // In a user namespace, the shared image is seen through an idmapped
    // mount (its owners as in the image), and the container's own layer
    // belongs to its root.
    let userns = net.userns.as_ref();
    let merged = match userns {
        Some((pin, base)) => {
            let mapped = bundle.join("lower");
            super::userns::idmapped_bind(lower, &mapped, pin).map_err(io(
                "mapping the image's owners into the user namespace".into(),
            ))?;
            // Before the overlay is mounted: it takes its root's owner
            // from the upper layer then.
            let upper = bundle.join("upper");
            std::fs::create_dir_all(&upper).map_err(io("making the container's layer".into()))?;
            std::os::unix::fs::chown(&upper, Some(*base), Some(*base))
                .map_err(io("giving the container's layer to its root".into()))?;
            // Its output goes to this file, which it may open again
            // (`/dev/stdout` is a link to it): its root must own it.
            let log = bundle.join(super::LOG_FILE);
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .and_then(|_| std::os::unix::fs::chown(&log, Some(*base), Some(*base)))
                .map_err(io("giving the container's log to its root".into()))?;
            rootfs::mount_overlay(&mapped, bundle)?
        }
        None => rootfs::mount_overlay(lower, bundle)?,
    };
    let opts = &spec.container;
    let args = spec::args(&config, opts)?;
    let env: Vec<(String, String)> = spec
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .chain([
            ("ATOLL_APP".into(), spec.app.clone()),
            ("ATOLL_SERVICE".into(), spec.service.clone()),
            ("ATOLL_INSTANCE".into(), spec.id.clone()),
            ("ATOLL_HOST".into(), host.to_string()),
        ])
        .collect();
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .or_else(|| {
            config
                .env
                .iter()
                .find_map(|kv| kv.strip_prefix("PATH=").map(str::to_string))
        })
        .unwrap_or_else(|| spec::DEFAULT_PATH.to_string());
    let cwd = opts
        .working_dir
        .clone()
        .or(config.working_dir.clone())
        .unwrap_or_else(|| "/".into());
    spec::find_executable(&merged, &args[0], &path, &cwd)?;
    let resolved = user::resolve(&merged, opts.user.as_deref().or(config.user.as_deref()))?;

    let etc = EtcFiles {
        hosts: bundle.join("hosts"),
        resolv_conf: bundle.join("resolv.conf"),
        hostname: bundle.join("hostname"),
    };
    let mut hosts = format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n{}\t{}\n",
        net.address, spec.id
    );
    // The app's services by name: each at its virtual IP, where the host
    // proxies to its instances wherever they run.
    for service in &spec.app_services {
        let vip = (spec.service_vips.get(service).copied())
            .unwrap_or_else(|| atoll_sdk::cluster::service_vip(&spec.app, service));
        hosts.push_str(&format!("{vip}\t{service}\n"));
    }
    std::fs::write(&etc.hosts, hosts).map_err(io("writing /etc/hosts".into()))?;
    std::fs::write(&etc.resolv_conf, resolv_conf()).map_err(io("writing resolv.conf".into()))?;
    std::fs::write(&etc.hostname, format!("{}\n", spec.id))
        .map_err(io("writing /etc/hostname".into()))?;

    let mut volumes = Vec::new();
    let plan = volumes::plan(volumes_root, bundle, spec, &config.volumes);
    for (i, v) in plan.into_iter().enumerate() {
        volumes::make(&v, lower, &spec.id)
            .map_err(io(format!("making the volume at {}", v.target)))?;
        let source = match userns {
            // Kept on disk with the container's view of owners.
            Some((pin, _)) => {
                let mapped = bundle.join("maps").join(i.to_string());
                super::userns::idmapped_bind(&v.dir, &mapped, pin)
                    .map_err(io(format!("mapping the volume at {}", v.target)))?;
                mapped
            }
            None => v.dir,
        };
        volumes.push((source, v.target, v.read_only));
    }
    let shift = userns.map_or(0, |(_, base)| *base);
    volumes.extend(super::secret_files::write(
        bundle,
        files,
        (resolved.uid, resolved.gid),
        shift,
    )?);
    let init = match (spec.container.init, init) {
        (false, _) => None,
        (true, Some(path)) => Some(path.to_path_buf()),
        (true, None) => return Err(ContainerError::NoInit),
    };
    let limits = spec::effective_limits(&spec.limits, &spec.reservations);
    let input = SpecInput {
        hostname: &spec.id,
        image: &config,
        options: opts,
        limits: &limits,
        env: &env,
        user: &resolved,
        args,
        netns: Some(net.netns.clone()),
        userns: net.userns.as_ref().map(|(pin, _)| pin.clone()),
        cgroups_path: cgroups_path(&spec.id),
        etc_files: Some(etc),
        nofile: spec::nofile_limit(),
        volumes,
        init,
    };
    super::facts::Facts::of(&config, opts, spec.health.is_some())
        .write(bundle)
        .map_err(io("writing facts.json".into()))?;
    let oci = spec::build(&input)?;
    let json = serde_json::to_vec_pretty(&oci)?;
    // The spec holds the container's environment: owner only.
    let config = bundle.join("config.json");
    std::fs::write(&config, json).map_err(io("writing config.json".into()))?;
    std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(io("restricting config.json".into()))?;
    Ok(())
}

/// The host's resolvers, minus loopback ones (unreachable from the
/// container's namespace).
fn resolv_conf() -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    host.lines()
        .filter(|l| {
            !l.split_whitespace().nth(1).is_some_and(|a| {
                l.starts_with("nameserver") && (a.starts_with("127.") || a == "::1")
            })
        })
        .map(|l| format!("{l}\n"))
        .collect()
}
