//! Hardening, checked from inside a box: this test binary re-executed in the box as a
//! probe ([`probe`], run only with `ISOL_SECURITY_PROBE=1`) reports what the kernel lets
//! it do — capabilities, no_new_privs and seccomp from /proc/self/status, raw keyctl and
//! kexec_load, mknod of a block device, opening a disk node made outside, the masked and
//! read-only /proc paths — as `key=value` lines. A default box must be refused each;
//! a privileged one must not (which proves each check can fail).
//!
//! The box: new mnt, pid, net, ipc and uts namespaces and a cgroup created through the
//! backend that fits the host (v1 devices controller or v2 eBPF program).
//!
//! # Safety
//!
//! The probe makes raw system calls (keyctl, kexec_load, mknod) with integer arguments
//! and C strings it owns, to see the errno the kernel or the filter returns.
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use isol_ns_core::namespace::Mount;
use isol_ns_core::security::{CapSet, SecurityPolicy};
use isol_ns_core::spawn::{CgroupSpec, Command, ExitStatus, Stdio};
use isol_ns_core::{registry, Backend, NamespacePlan, NamespaceSet, Resources};
use isol_testkit::{require_root, Scratch};

use crate::common::output;

const PROBE: &str = "ISOL_SECURITY_PROBE";
const DIR: &str = "ISOL_SECURITY_DIR";
/// A directory of the host's that the box is not given: it tries to write there.
const HOST: &str = "ISOL_SECURITY_HOST";

/// The device nodes made outside the box, in the temp dir: a block node of the host's
/// first disk (loop0 when there is none) and `/dev/net/tun`'s char node, which nothing
/// on the allow-list covers.
const NODES: [(&str, u32, u32, u32); 2] = [
    ("open_disk", libc::S_IFBLK, 0, 0),
    ("open_char", libc::S_IFCHR, 10, 200),
];

fn nodes_in(dir: &str) -> Vec<(&'static str, String)> {
    NODES
        .iter()
        .map(|(n, ..)| (*n, format!("{dir}/{n}")))
        .collect()
}

/// `open(path, O_RDONLY)`: `0` or the errno.
fn open_errno(path: &str) -> String {
    match std::fs::File::open(path) {
        Ok(_) => "0".into(),
        Err(e) => e.raw_os_error().unwrap_or(0).to_string(),
    }
}

fn errno_of(r: libc::c_long) -> String {
    if r < 0 {
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(0)
            .to_string()
    } else {
        "0".into()
    }
}

fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| "absent".into())
}

/// How a path looks: `absent`, `null` (a bind of /dev/null), `tmpfs` (an empty one),
/// `dir`, `file`.
fn shape(path: &str) -> String {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Ok(md) = std::fs::metadata(path) else {
        return "absent".into();
    };
    if md.file_type().is_char_device() && md.rdev() == libc::makedev(1, 3) {
        return "null".into();
    }
    if md.is_dir() {
        let fs = nix::sys::statfs::statfs(path).map(|s| s.filesystem_type());
        return if fs == Ok(nix::sys::statfs::TMPFS_MAGIC) {
            "tmpfs".into()
        } else {
            "dir".into()
        };
    }
    "file".into()
}

/// `open(path, O_WRONLY)` (nothing is written): its errno, or `absent`.
fn open_for_write(path: &str) -> String {
    if std::fs::symlink_metadata(path).is_err() {
        return "absent".into();
    }
    match std::fs::OpenOptions::new().write(true).open(path) {
        Ok(_) => "0".into(),
        Err(e) => e.raw_os_error().unwrap_or(0).to_string(),
    }
}

/// The probe, run inside the box. A no-op unless `ISOL_SECURITY_PROBE=1`.
#[test]
fn probe() {
    if std::env::var_os(PROBE).is_none() {
        return;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let mut out = BTreeMap::new();
    for (k, f) in [
        ("capeff", "CapEff:"),
        ("capbnd", "CapBnd:"),
        ("capamb", "CapAmb:"),
        ("nonewprivs", "NoNewPrivs:"),
        ("seccomp", "Seccomp:"),
    ] {
        out.insert(k, status_field(&status, f));
    }
    // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0): harmless, needs no privilege.
    // SAFETY: integer arguments.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, 0, -4, 0) };
    out.insert("keyctl", errno_of(r));
    // kexec_load with flags no kernel knows: EINVAL once permitted, loads nothing.
    // SAFETY: integer arguments and a NULL segment list of length 0.
    let r = unsafe {
        libc::syscall(
            libc::SYS_kexec_load,
            0usize,
            0usize,
            std::ptr::null::<u8>(),
            0x00ad_0000usize,
        )
    };
    out.insert("kexec", errno_of(r));
    // socket(AF_VSOCK): the hypervisor's services, outside any network namespace.
    // SAFETY: integer arguments; a socket made is closed at once.
    let r = unsafe { libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM, 0) };
    out.insert("vsock", errno_of(r as libc::c_long));
    if r >= 0 {
        // SAFETY: `r` is the socket just made, which nothing else holds.
        unsafe { libc::close(r) };
    }
    // ioctl(TIOCSTI) on stdin (not a terminal here: ENOTTY when the filter lets it by),
    // with bits above the 32 the tty layer reads.
    let c = b'x';
    #[allow(clippy::unnecessary_cast)] // an unsigned long on glibc, an int on musl
    let request = libc::TIOCSTI as u64 | 1 << 32;
    // SAFETY: TIOCSTI reads one byte at the pointer, which points at `c`.
    let r = unsafe { libc::ioctl(0, request as _, &c) };
    out.insert("tiocsti", errno_of(r as libc::c_long));
    let dir = std::env::var(DIR).unwrap();
    let node = CString::new(format!("{dir}/blk-inside")).unwrap();
    // SAFETY: a valid C string.
    let r = unsafe { libc::mknod(node.as_ptr(), libc::S_IFBLK | 0o600, libc::makedev(7, 0)) };
    out.insert("mknod_block", errno_of(r as libc::c_long));
    let _ = std::fs::remove_file(format!("{dir}/blk-inside"));
    let host = std::env::var(HOST).unwrap();
    let r = std::fs::write(format!("{host}/written-inside"), "x");
    out.insert(
        "host_write",
        r.map_or_else(|e| e.raw_os_error().unwrap_or(-1), |()| 0)
            .to_string(),
    );
    for (name, path) in nodes_in(&dir) {
        out.insert(name, open_errno(&path));
    }
    out.insert("sysrq", open_for_write("/proc/sysrq-trigger"));
    // The box's pid 1, isol's init: its cwd (a directory of the caller's, outside a
    // rootfs) and ptrace (which would let the box run code as it).
    // The init moves to / only once the command has exec'd (it shares the command's
    // memory until then), so a readable cwd is looked at until it is / or 2 s pass.
    let init_cwd = || match std::fs::read_link("/proc/1/cwd") {
        Ok(p) => p.display().to_string(),
        Err(e) => e.raw_os_error().unwrap_or(0).to_string(),
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let mut cwd = init_cwd();
    while cwd.starts_with('/') && cwd != "/" && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
        cwd = init_cwd();
    }
    out.insert("init_cwd", cwd);
    // SAFETY: integer arguments; a tracee stopped by a successful attach is waited for
    // and let go at once.
    let r = unsafe { libc::ptrace(libc::PTRACE_ATTACH, 1, 0, 0) };
    out.insert("ptrace_init", errno_of(r));
    if r == 0 {
        // SAFETY: integer arguments and a NULL status pointer: waits for the tracee's
        // stop, then lets it go.
        unsafe {
            libc::waitpid(1, std::ptr::null_mut(), libc::__WALL);
            libc::ptrace(libc::PTRACE_DETACH, 1, 0, 0);
        }
    }
    let sys_flags = nix::sys::statvfs::statvfs("/sys").map(|s| s.flags());
    out.insert(
        "sys",
        match sys_flags {
            Ok(f) if f.contains(nix::sys::statvfs::FsFlags::ST_RDONLY) => "ro".into(),
            Ok(_) => "rw".into(),
            Err(e) => format!("error {e}"),
        },
    );
    out.insert("procsys", open_for_write("/proc/sys/kernel/hostname"));
    out.insert("kcore", shape("/proc/kcore"));
    out.insert("keys", shape("/proc/keys"));
    out.insert("acpi", shape("/proc/acpi"));
    out.insert(
        "kcore_len",
        std::fs::read("/proc/kcore")
            .map(|b| b.len().min(1).to_string())
            .unwrap_or_else(|e| format!("error {e}")),
    );
    for (k, v) in out {
        println!("PROBE {k}={v}");
    }
}

struct Seen {
    out: BTreeMap<String, String>,
    /// What opening the nodes gave outside the box.
    outside: BTreeMap<String, String>,
}

impl Seen {
    fn get(&self, k: &str) -> &str {
        self.out
            .get(k)
            .unwrap_or_else(|| panic!("probe reported no {k}: {:?}", self.out))
    }
    fn errno(&self, k: &str) -> i32 {
        self.get(k)
            .parse()
            .unwrap_or_else(|_| panic!("{k}={} is not an errno", self.get(k)))
    }
    fn caps(&self, k: &str) -> CapSet {
        CapSet::from_bits(u64::from_str_radix(self.get(k), 16).unwrap())
    }
}

fn backend() -> Arc<dyn Backend> {
    Arc::from(registry::open("auto", &isol_testkit::host()).expect("the auto backend"))
}

/// Makes [`NODES`] in `dir`, outside any box; what opening each gives out here.
fn make_nodes(dir: &std::path::Path) -> BTreeMap<String, String> {
    let parts = std::fs::read_to_string("/proc/partitions").unwrap_or_default();
    let disk: (u32, u32) = parts
        .lines()
        .skip(2)
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.first()?.parse().ok()?, f.get(1)?.parse().ok()?))
        })
        .unwrap_or((7, 0));
    let mut outside = BTreeMap::new();
    for (name, kind, maj, min) in NODES {
        let (maj, min) = if kind == libc::S_IFBLK {
            disk
        } else {
            (maj, min)
        };
        let path = dir.join(name);
        let c = CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid C string.
        let r = unsafe { libc::mknod(c.as_ptr(), kind | 0o600, libc::makedev(maj, min)) };
        assert_eq!(
            r,
            0,
            "mknod {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
        outside.insert(name.to_string(), open_errno(path.to_str().unwrap()));
    }
    outside
}

/// Runs the probe in a box with `policy` and returns what it saw.
/// A temp dir on a filesystem that honours device nodes: the usual one, or one under
/// `/dev` (devtmpfs) where that is mounted `nodev` (the VM's /tmp).
fn node_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let nodev = nix::sys::statvfs::statvfs(dir.path())
        .map(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_NODEV))
        .unwrap_or(false);
    if nodev {
        tempfile::Builder::new()
            .prefix("isol-test-sec")
            .tempdir_in("/dev")
            .unwrap()
    } else {
        dir
    }
}

fn run_box(scratch: &Scratch, name: &str, policy: Option<SecurityPolicy>) -> Seen {
    let dir = node_dir();
    let outside = make_nodes(dir.path());
    let host = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(&exe);
    cmd.args([
        "--exact",
        "security::probe",
        "--nocapture",
        "--test-threads=1",
        "-q",
    ])
    .env(PROBE, "1")
    .env(DIR, dir.path())
    .env(HOST, host.path())
    // Never a terminal: the probe tries TIOCSTI on its stdin.
    .stdin(Stdio::Null)
    .stdout(Stdio::Piped)
    .stderr(Stdio::Piped)
    .namespaces(NamespacePlan::new_kinds(
        "mnt,pid,net,ipc,uts".parse::<NamespaceSet>().unwrap(),
    ))
    // The node directory, writable (the host's other files are read-only in a default box).
    .mount(Mount::bind(dir.path(), dir.path()))
    .cgroup(CgroupSpec::Create {
        backend: backend(),
        parent: scratch.parent(),
        name: name.into(),
        resources: Resources::default(),
    });
    if let Some(p) = policy {
        cmd.security(p);
    }
    let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
    let (st, out, err) = output(child);
    assert_eq!(
        st,
        ExitStatus::Exited(0),
        "probe in {name}\nstdout: {out}\nstderr: {err}"
    );
    let out = out
        .lines()
        .filter_map(|l| l.strip_prefix("PROBE "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<BTreeMap<_, _>>();
    Seen { out, outside }
}

fn host_has(path: &str) -> bool {
    std::path::Path::new(path).exists()
}

#[test]
fn a_default_box_cannot_reach_the_host() {
    if !require_root("a_default_box_cannot_reach_the_host") {
        return;
    }
    let _serial = crate::common::serial();
    let scratch = Scratch::new(backend_box(), "sec");
    let b = run_box(&scratch, "default", Some(SecurityPolicy::default()));
    assert_eq!(b.caps("capeff"), CapSet::docker_default(), "{:?}", b.out);
    assert_eq!(b.caps("capbnd"), CapSet::docker_default());
    assert_eq!(b.get("capamb"), "0000000000000000");
    assert_eq!(b.get("nonewprivs"), "1");
    assert_eq!(b.get("seccomp"), "2");
    // The caller's files, /sys among them, read-only in the box's mount namespace.
    assert_eq!(b.get("sys"), "ro");
    assert_eq!(b.errno("host_write"), libc::EROFS);
    // Its init cannot be traced, nor its cwd followed.
    assert_eq!(b.errno("ptrace_init"), libc::EPERM);
    assert_eq!(b.errno("init_cwd"), libc::EACCES);
    // keyctl needs no privilege: only seccomp refuses it.
    assert_eq!(b.errno("keyctl"), libc::EPERM);
    assert_eq!(b.errno("kexec"), libc::EPERM);
    assert_eq!(b.errno("vsock"), libc::EPERM);
    assert_eq!(b.errno("tiocsti"), libc::EPERM);
    // CAP_MKNOD is kept: the device cgroup refuses the block node.
    assert_eq!(b.errno("mknod_block"), libc::EPERM);
    // The device cgroup refuses before any driver is asked, so EPERM even where the
    // node has no driver here (ENXIO, ENODEV outside); at least one node must open, or
    // fail otherwise, outside, or this would prove nothing.
    assert!(
        b.outside
            .values()
            .any(|e| e != &libc::EPERM.to_string() && e != &libc::EACCES.to_string()),
        "{:?}",
        b.outside
    );
    for (node, ..) in NODES {
        assert_eq!(b.errno(node), libc::EPERM, "{node}");
    }
    assert_eq!(b.errno("procsys"), libc::EROFS);
    if host_has("/proc/sysrq-trigger") {
        assert_eq!(b.errno("sysrq"), libc::EROFS);
    } else {
        assert_eq!(b.get("sysrq"), "absent");
    }
    if host_has("/proc/kcore") {
        assert_eq!(b.get("kcore"), "null");
        assert_eq!(b.get("kcore_len"), "0");
    } else {
        assert_eq!(b.get("kcore"), "absent");
    }
    assert_eq!(
        b.get("keys"),
        if host_has("/proc/keys") {
            "null"
        } else {
            "absent"
        }
    );
    assert_eq!(
        b.get("acpi"),
        if host_has("/proc/acpi") {
            "tmpfs"
        } else {
            "absent"
        }
    );
}

fn backend_box() -> Box<dyn Backend> {
    registry::open("auto", &isol_testkit::host()).expect("the auto backend")
}

#[test]
fn a_privileged_box_gets_it_all_back() {
    if !require_root("a_privileged_box_gets_it_all_back") {
        return;
    }
    let _serial = crate::common::serial();
    let scratch = Scratch::new(backend_box(), "sec");
    let b = run_box(&scratch, "privileged", Some(SecurityPolicy::privileged()));
    let all = std::fs::read_to_string("/proc/self/status").unwrap();
    let mine = u64::from_str_radix(&status_field(&all, "CapBnd:"), 16).unwrap();
    assert_eq!(b.caps("capeff").bits(), mine, "{:?}", b.out);
    assert_eq!(b.get("nonewprivs"), "0");
    assert_eq!(b.get("seccomp"), "0");
    assert_eq!(b.get("sys"), "rw");
    assert_eq!(b.errno("host_write"), 0);
    // With CAP_SYS_PTRACE, the init's cwd: "/" (it leaves the caller's directory).
    assert_eq!(b.get("init_cwd"), "/");
    assert_ne!(b.errno("keyctl"), libc::EPERM);
    assert_ne!(b.errno("vsock"), libc::EPERM);
    assert_eq!(b.errno("tiocsti"), libc::ENOTTY);
    let kexec_disabled = std::fs::read_to_string("/proc/sys/kernel/kexec_load_disabled")
        .is_ok_and(|v| v.trim() == "1");
    if !kexec_disabled {
        assert_ne!(b.errno("kexec"), libc::EPERM);
    }
    assert_eq!(b.errno("mknod_block"), 0);
    for (node, _) in NODES.iter().map(|(n, ..)| (*n, ())) {
        assert_eq!(
            b.get(node),
            b.outside[node],
            "{node} opens as it does outside"
        );
    }
    assert_eq!(b.errno("procsys"), 0);
    if host_has("/proc/sysrq-trigger") {
        assert_eq!(b.errno("sysrq"), 0);
    }
    if host_has("/proc/kcore") {
        assert_eq!(b.get("kcore"), "file");
    }
    assert_eq!(
        b.get("keys"),
        if host_has("/proc/keys") {
            "file"
        } else {
            "absent"
        }
    );
    if host_has("/proc/acpi") {
        assert_eq!(b.get("acpi"), "dir");
    }
}

/// Raises `cap` in the calling thread's inheritable and ambient sets (it must be
/// permitted): capget, capset, `PR_CAP_AMBIENT_RAISE`.
fn raise_ambient(cap: u32) {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut hdr = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: a v3 header and the two data words it fills or reads, on our stack.
    unsafe {
        assert_eq!(
            libc::syscall(libc::SYS_capget, &mut hdr as *mut Header, data.as_mut_ptr()),
            0
        );
        data[(cap / 32) as usize].inheritable |= 1 << (cap % 32);
        assert_eq!(
            libc::syscall(libc::SYS_capset, &hdr as *const Header, data.as_ptr()),
            0
        );
        let raise = libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong;
        assert_eq!(
            libc::prctl(libc::PR_CAP_AMBIENT, raise, cap as libc::c_ulong, 0, 0),
            0
        );
    }
}

/// A creator's ambient capabilities do not reach a hardened box: the capset that
/// empties the inheritable set takes them with it (the kernel keeps no ambient
/// capability that is not both permitted and inheritable). Without a policy the box
/// keeps them, which shows the creator's reach its children. Run in a thread of its own,
/// as capabilities are per thread.
#[test]
fn a_creators_ambient_capabilities_do_not_reach_a_box() {
    if !require_root("a_creators_ambient_capabilities_do_not_reach_a_box") {
        return;
    }
    let _serial = crate::common::serial();
    std::thread::spawn(|| {
        let scratch = Scratch::new(backend_box(), "sec");
        raise_ambient(13); // CAP_NET_RAW
        let mine = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        assert_eq!(status_field(&mine, "CapAmb:"), "0000000000002000");
        let plain = run_box(&scratch, "ambient-plain", None);
        assert_eq!(plain.get("capamb"), "0000000000002000", "{:?}", plain.out);
        let b = run_box(&scratch, "ambient", Some(SecurityPolicy::default()));
        assert_eq!(b.get("capamb"), "0000000000000000", "{:?}", b.out);
        assert_eq!(b.caps("capeff"), CapSet::docker_default());
    })
    .join()
    .unwrap();
}

#[test]
fn cap_drop_all_leaves_no_capability() {
    if !require_root("cap_drop_all_leaves_no_capability") {
        return;
    }
    let _serial = crate::common::serial();
    let scratch = Scratch::new(backend_box(), "sec");
    let mut p = SecurityPolicy::default();
    p.cap_drop("all").unwrap();
    let b = run_box(&scratch, "capless", Some(p));
    assert_eq!(b.get("capeff"), "0000000000000000", "{:?}", b.out);
    assert_eq!(b.get("capbnd"), "0000000000000000");
    // Without CAP_MKNOD the kernel refuses mknod before the device cgroup does.
    assert_eq!(b.errno("mknod_block"), libc::EPERM);
    assert_eq!(b.get("seccomp"), "2");
}

#[test]
fn without_a_policy_nothing_changes() {
    if !require_root("without_a_policy_nothing_changes") {
        return;
    }
    let _serial = crate::common::serial();
    let scratch = Scratch::new(backend_box(), "sec");
    let b = run_box(&scratch, "plain", None);
    assert_eq!(b.get("seccomp"), "0", "{:?}", b.out);
    assert_eq!(b.get("nonewprivs"), "0");
    assert_eq!(b.errno("mknod_block"), 0);
}

#[test]
fn rlimits_apply_inside() {
    if !require_root("rlimits_apply_inside") {
        return;
    }
    let _serial = crate::common::serial();
    let mut p = SecurityPolicy::default();
    p.rlimit("nofile=64:128".parse().unwrap());
    p.rlimit("core=0".parse().unwrap());
    let mut cmd = crate::common::sh("ulimit -n; ulimit -H -n; ulimit -c");
    cmd.namespaces(NamespacePlan::new_kinds(
        "mnt,pid".parse::<NamespaceSet>().unwrap(),
    ))
    .security(p);
    let out = crate::common::run_ok(&mut cmd);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["64", "128", "0"]
    );
}

#[test]
fn a_uid_change_keeps_the_bounding_set_and_execs_without_capabilities() {
    if !require_root("a_uid_change_keeps_the_bounding_set_and_execs_without_capabilities") {
        return;
    }
    let _serial = crate::common::serial();
    let mut cmd =
        crate::common::sh("grep -E '^(Cap(Eff|Prm|Bnd)|Uid|NoNewPrivs):' /proc/self/status");
    cmd.namespaces(NamespacePlan::new_kinds(
        "mnt,pid".parse::<NamespaceSet>().unwrap(),
    ))
    .uid(65534)
    .gid(65534)
    .security(SecurityPolicy::default());
    let out = crate::common::run_ok(&mut cmd);
    let field = |k: &str| status_field(&out, k);
    assert!(field("Uid:").starts_with("65534"), "{out}");
    // As under docker: a non-root command holds nothing after exec; the bounding set
    // is the box's.
    assert_eq!(field("CapEff:"), "0000000000000000", "{out}");
    assert_eq!(field("CapPrm:"), "0000000000000000", "{out}");
    assert_eq!(
        u64::from_str_radix(&field("CapBnd:"), 16).unwrap(),
        CapSet::docker_default().bits()
    );
    assert_eq!(field("NoNewPrivs:"), "1");
}

/// Marks the run of this test binary in a box as [`syscall_probe`].
const SYSCALL_PROBE: &str = "ISOL_SYSCALL_PROBE";

/// The calls docker's default profile decides on by name, number, argument or
/// capability, made raw in a box: `PROBE name=errno` lines (`0`: the call went through).
/// Run only with `ISOL_SYSCALL_PROBE=1`. Each call is harmless where it goes through: it
/// fails in the kernel (bad pointers, sizes, fds or flag sets) or changes this short-lived
/// process alone (its persona, set back at once) or a child of it (a user namespace).
#[test]
fn syscall_probe() {
    if std::env::var_os(SYSCALL_PROBE).is_none() {
        return;
    }
    let null = std::ptr::null::<libc::c_void>();
    let mut out: Vec<(&str, String)> = Vec::new();
    // SAFETY: integer arguments, NULL pointers (the kernel answers EFAULT where it would
    // read one) and flag sets the kernel refuses (EINVAL) where the filter lets them by.
    unsafe {
        let personality = |p: u64| libc::syscall(libc::SYS_personality, p);
        out.push(("persona_query", errno_of(personality(0xffff_ffff))));
        out.push(("persona_linux32", errno_of(personality(0x0008))));
        out.push(("persona_linux", errno_of(personality(0))));
        // ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, both: docker allows neither.
        for (k, p) in [
            ("persona_no_randomize", 0x0004_0000),
            ("persona_read_implies_exec", 0x0040_0000),
            ("persona_both", 0x0044_0000),
        ] {
            out.push((k, errno_of(personality(p))));
            personality(0);
        }
        // A number no kernel has, and the first after the table (Linux 6.17's
        // file_getattr, which the table does not know).
        out.push(("nr_1000", errno_of(libc::syscall(1000))));
        out.push(("nr_468", errno_of(libc::syscall(468))));
        out.push((
            "open_by_handle_at",
            errno_of(libc::syscall(libc::SYS_open_by_handle_at, -1, null, 0)),
        ));
        out.push((
            "add_key",
            errno_of(libc::syscall(libc::SYS_add_key, null, null, null, 0, 0)),
        ));
        out.push((
            "io_uring_setup",
            errno_of(libc::syscall(libc::SYS_io_uring_setup, 0, null)),
        ));
        // clone3 with size 0 (EINVAL where allowed); clone of a new user namespace
        // sharing fs (EINVAL: the kernel refuses NEWUSER with FS).
        out.push(("clone3", errno_of(libc::syscall(libc::SYS_clone3, null, 0))));
        out.push((
            "clone_newuser",
            errno_of(libc::syscall(
                libc::SYS_clone,
                libc::CLONE_NEWUSER | libc::CLONE_FS,
                0,
                0,
                0,
                0,
            )),
        ));
        // In a forked child: the kernel refuses a new user namespace to a process with
        // threads (EINVAL), which the test harness may have.
        let pid = libc::fork();
        if pid == 0 {
            let r = libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER);
            let e = std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(255);
            libc::_exit(if r == 0 { 0 } else { e });
        }
        let mut st = 0;
        libc::waitpid(pid, &mut st, 0);
        let unshare = if libc::WIFEXITED(st) {
            libc::WEXITSTATUS(st).to_string()
        } else {
            format!("died {st:#x}")
        };
        out.push(("unshare_newuser", unshare));
    }
    for (k, v) in out {
        println!("PROBE {k}={v}");
    }
}

/// Runs [`syscall_probe`] in a box (new mnt, pid, net, ipc and uts namespaces) with
/// `policy`: `name → errno`.
fn probe_syscalls(policy: SecurityPolicy) -> BTreeMap<String, i32> {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(&exe);
    cmd.args([
        "--exact",
        "security::syscall_probe",
        "--nocapture",
        "--test-threads=1",
        "-q",
    ])
    .env(SYSCALL_PROBE, "1")
    .stdin(Stdio::Null)
    .stdout(Stdio::Piped)
    .stderr(Stdio::Piped)
    .namespaces(NamespacePlan::new_kinds(
        "mnt,pid,net,ipc,uts".parse::<NamespaceSet>().unwrap(),
    ))
    .security(policy);
    let (st, out, err) = output(cmd.spawn().expect("spawn the probe"));
    assert_eq!(st, ExitStatus::Exited(0), "stdout: {out}\nstderr: {err}");
    let seen: BTreeMap<String, i32> = out
        .lines()
        .filter_map(|l| l.strip_prefix("PROBE "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
        .collect();
    assert_eq!(seen.len(), 14, "{out}");
    seen
}

/// Docker's default profile is an allow-list: in a default box the calls it does not
/// allow fail with EPERM, call numbers newer than isol's table with ENOSYS (clone3 too,
/// so that a libc falls back to clone), and the personas and clone flags it does not
/// allow with EPERM, while the ones it allows go through. CAP_SYS_ADMIN gives back what
/// docker gives it back (clone3, namespaces); a privileged box has no filter, where each
/// refused call reaches the kernel (so each check can fail).
#[test]
fn a_default_box_has_dockers_allow_list() {
    if !require_root("a_default_box_has_dockers_allow_list") {
        return;
    }
    let _serial = crate::common::serial();
    let (eperm, enosys, einval) = (libc::EPERM, libc::ENOSYS, libc::EINVAL);

    let b = probe_syscalls(SecurityPolicy::default());
    for k in ["persona_query", "persona_linux32", "persona_linux"] {
        assert_eq!(b[k], 0, "{k}: {b:?}");
    }
    for k in [
        "persona_no_randomize",
        "persona_read_implies_exec",
        "persona_both",
        "open_by_handle_at",
        "add_key",
        "io_uring_setup",
        "clone_newuser",
        // Needs no capability in the kernel: only the filter refuses it.
        "unshare_newuser",
    ] {
        assert_eq!(b[k], eperm, "{k}: {b:?}");
    }
    for k in ["nr_1000", "nr_468", "clone3"] {
        assert_eq!(b[k], enosys, "{k}: {b:?}");
    }

    let mut admin = SecurityPolicy::default();
    admin.cap_add("SYS_ADMIN").unwrap();
    let b = probe_syscalls(admin);
    assert_eq!(b["clone3"], einval, "{b:?}");
    assert_eq!(b["clone_newuser"], einval, "{b:?}");
    assert_eq!(b["unshare_newuser"], 0, "{b:?}");
    for k in ["persona_no_randomize", "open_by_handle_at", "add_key"] {
        assert_eq!(b[k], eperm, "{k}: {b:?}");
    }
    assert_eq!(b["nr_1000"], enosys, "{b:?}");

    let b = probe_syscalls(SecurityPolicy::privileged());
    for k in [
        "persona_no_randomize",
        "persona_read_implies_exec",
        "persona_both",
        "unshare_newuser",
    ] {
        assert_eq!(b[k], 0, "{k}: {b:?}");
    }
    assert_eq!(b["clone3"], einval, "{b:?}");
    assert_eq!(b["clone_newuser"], einval, "{b:?}");
    assert_ne!(b["open_by_handle_at"], eperm, "{b:?}");
    assert_eq!(b["add_key"], libc::EFAULT, "{b:?}");
    assert_eq!(b["nr_1000"], enosys, "{b:?}");
}
