//! A rootfs's `/dev` ([`super::Dev`]): a tmpfs with the usual nodes, a devpts of the
//! box's own, the links and `/dev/shm`. The nodes are made with `mknod` (the box owns
//! them; a chmod inside stays inside), or, where a user namespace forbids `mknod`, bound
//! from the host's `/dev` read-only (a read-only device node still reads and writes as
//! the device, but its mode and owner, the host's, cannot be changed).

use std::path::Path;

use nix::mount::MsFlags;

use super::record::Steps;
use crate::namespace::{cpath, cstr};
use crate::spawn::program::Op;
use crate::spawn::MountStep;
use crate::Result;

/// The nodes of a rootfs's /dev: name, major, minor (all mode 0666, as docker makes them).
const DEVICES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// The links of a rootfs's /dev: target, name.
const LINKS: [(&str, &str); 5] = [
    ("pts/ptmx", "ptmx"),
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
];

/// Records the rootfs's /dev; `user_ns`: the box is in a user namespace (new or
/// joined), where the nodes are bound from the host's.
pub(super) fn steps(s: &mut Steps<'_>, user_ns: bool) -> Result<()> {
    let dev = s.inside(Path::new("/dev"));
    s.mkdir(&dev)?;
    s.mount(
        MountStep::DevTmpfs,
        Some(Path::new("tmpfs")),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    for (name, major, minor) in DEVICES {
        let node = dev.join(name);
        let host = Path::new("/dev").join(name);
        if user_ns {
            s.touch(MountStep::DeviceNode, &node)?;
            let op = Op::BindReadOnly {
                src: cpath(&host)?,
                dst: cpath(&node)?,
            };
            s.command(MountStep::BindDevice, &node, op);
        } else {
            let op = Op::Mknod {
                path: cpath(&node)?,
                host: cpath(&host)?,
                dev: libc::makedev(major, minor),
                mode: 0o666,
            };
            s.command(MountStep::Mknod, &node, op);
        }
    }
    let pts = dev.join("pts");
    s.mkdir(&pts)?;
    s.devpts(&pts)?;
    for (target, link) in LINKS {
        let l = dev.join(link);
        let op = Op::Symlink {
            target: cstr(target)?,
            link: cpath(&l)?,
        };
        s.command(MountStep::Symlink, &l, op);
    }
    let shm = dev.join("shm");
    s.mkdir(&shm)?;
    s.mount(
        MountStep::DevShm,
        Some(Path::new("shm")),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777,size=65536k"),
    )
}
