#!/bin/busybox sh
# isol's init for `cargo xtask test-vm`, packed into the initramfs as /init.
#
# Stage 1 runs on the initramfs (rootfs), where pivot_root(2) fails with EINVAL, so
# tests that pivot would fail only here. It moves everything onto a tmpfs and
# switch_roots into it. Stage 2 mounts the filesystems and the cgroup hierarchies of
# the mode named on the kernel command line (isol.mode=unified|legacy|hybrid), runs
# every test binary in /isol/tests with the arguments in /isol/args (the workspace's
# programs are linked to from their host paths, listed in /isol/programs.list), prints one
# ISOL-BINARY line per binary and exactly one ISOL-VERDICT line, and powers off.
# The host trusts the verdict only together with qemu's exit status.
#
# With a tools disk (/isol/tools.list names its packages), stage 2 also loads the
# modules in /isol/modules.list, mounts the disk read-only at /isol/tools, makes its
# /usr, /lib*, /sbin and /etc usable from /, and runs /isol/smoke.sh before the
# tests. In every mode it sets up the unprivileged test user; in the unified mode it
# delegates a cgroup to that user as systemd's Delegate=yes does. /isol/script, when
# packed, runs instead of the test binaries.

if [ "$1" != stage2 ]; then
    bb=/bin/busybox
    $bb mount -t tmpfs -o mode=0755 tmpfs /newroot || exit 1
    $bb cp -a /bin /newroot/ || exit 1
    # switch_root insists on finding /init in the old root: copy it, move the rest.
    $bb cp -a /init /newroot/ || exit 1
    bb=/newroot/bin/busybox
    for f in /*; do
        case "$f" in
        /newroot | /bin | /init) ;;
        *) $bb mv "$f" /newroot/ || exit 1 ;;
        esac
    done
    exec $bb switch_root /newroot /init stage2
fi

# busybox first: the tools disk's GNU programs (mount, unshare, sed, tar…) do not
# change what the tests' plain commands mean; they are found at /usr/bin/NAME.
export PATH=/bin:/usr/sbin:/usr/bin HOME=/root
/bin/busybox --install -s /bin

mode=unknown nonce=none
n=0 P=0 F=0 I=0

# verdict STATUS [REASON…]: the one line the host looks for; then power off.
verdict() {
    st=$1
    shift
    echo "ISOL-VERDICT nonce=$nonce mode=$mode binaries=$n passed=$P failed=$F ignored=$I status=$st${1:+ reason=$*}"
    sync
    poweroff -f
    sleep 10
    exit 1
}

die() {
    echo "ISOL-INIT error: $*"
    dmesg | tail -n 20
    verdict error "$*"
}

mount -t proc -o nosuid,nodev,noexec proc /proc || die "mount /proc"
for w in $(cat /proc/cmdline); do
    case "$w" in
    isol.mode=*) mode=${w#isol.mode=} ;;
    isol.nonce=*) nonce=${w#isol.nonce=} ;;
    esac
done
[ -e /isol/complete ] || die "the initramfs was not unpacked whole (too big for the guest's memory? ISOL_VM_MEMORY)"
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys || die "mount /sys"
mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev || die "mount /dev"
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o nosuid,noexec,newinstance,ptmxmode=0666 devpts /dev/pts || die "mount /dev/pts"
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /dev/shm || die "mount /dev/shm"
mount -t mqueue -o nosuid,nodev,noexec mqueue /dev/mqueue || die "mount /dev/mqueue"
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /tmp || die "mount /tmp"
mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs /run || die "mount /run"
hostname isol-vm

# Hundredths of a second since boot, and the seconds since such a mark.
now_cs() { awk '{ printf "%d", $1 * 100 }' /proc/uptime; }
since() { awk -v a="$1" -v b="$(now_cs)" 'BEGIN { printf "%.2fs", (b - a) / 100 }'; }

# The tools disk: modules first (virtio is not built in), then the disk once the
# kernel has probed it, then its tree made usable from /. The root stays the
# tmpfs; /usr is the disk's (read-only), /lib, /lib64 and /sbin link into it
# unless the initramfs has its own (glibc builds pack /lib), and its /etc is
# copied beside ours (ours wins).
tools=$(cat /isol/tools.list)
setup_tools() {
    t0=$(now_cs)
    while IFS= read -r m; do
        [ -n "$m" ] || continue
        insmod "/isol/modules/$m.ko" || die "insmod $m"
    done </isol/modules.list
    # As udev leaves them on a distribution: usable by everyone (rootless
    # slirp4netns and fuse-overlayfs open them).
    for dev in /dev/net/tun /dev/fuse; do
        [ ! -c $dev ] || chmod 0666 $dev || die "chmod $dev"
    done
    i=0
    until [ -b /dev/vda ]; do
        i=$((i + 1))
        [ $i -le 100 ] || die "no /dev/vda 10s after loading virtio_blk: is the tools disk attached?"
        sleep 0.1
    done
    mkdir -p /isol/tools /usr
    mount -t ext4 -o ro,nodev /dev/vda /isol/tools || die "mount the tools disk"
    mount -o bind /isol/tools/usr /usr || die "bind /usr"
    for d in lib lib64 sbin; do
        [ -e /$d ] || [ ! -e /isol/tools/$d ] || ln -s usr/$d /$d || die "link /$d"
    done
    # The disk's /etc first, then ours over it (busybox's cp -n skips directories).
    mv /etc /isol/etc.initramfs && cp -a /isol/tools/etc /etc &&
        cp -a /isol/etc.initramfs/. /etc/ && rm -r /isol/etc.initramfs || die "merge the tools disk's /etc"
    mkdir -p /var/lib /var/cache /var/log /var/tmp || die "mkdir /var"
    chmod 1777 /var/tmp
    ln -s /run /var/run
    echo "ISOL-INIT tools disk: $(df -m /isol/tools | awk 'NR == 2 { print $3 }') MiB, modules and mount in $(since $t0)"
}
[ -z "$tools" ] || setup_tools

# The unprivileged test user (/etc/passwd, /etc/subuid and /etc/subgid come with
# the initramfs). Tests switch to it themselves (setuid before exec, or busybox su).
TEST_USER=isoltest TEST_UID=1000 TEST_GID=1000
mkdir -p /home/$TEST_USER && chown $TEST_UID:$TEST_GID /home/$TEST_USER || die "make the test user's home"

# has CONTROLLER: whether the kernel offers it (enabled in /proc/cgroups).
has() {
    awk -v c="$1" '$1 == c && $4 == 1 { found = 1 } END { exit !found }' /proc/cgroups
}

cg=/sys/fs/cgroup
opts=nosuid,nodev,noexec

# The v1 hierarchies as systemd mounts them: a tmpfs with one hierarchy per
# controller (cpu,cpuacct and net_cls,net_prio co-mounted, with symlinks by each
# name) and the named hierarchy name=systemd.
mount_v1() {
    mount -t tmpfs -o $opts,mode=0755 tmpfs $cg || die "mount tmpfs on $cg"
    for spec in cpu,cpuacct cpuset memory pids freezer devices blkio net_cls,net_prio perf_event hugetlb rdma misc; do
        ctrls=
        for c in $(echo $spec | tr , ' '); do
            has $c && ctrls="$ctrls${ctrls:+,}$c"
        done
        [ -n "$ctrls" ] || continue
        mkdir $cg/$ctrls
        mount -t cgroup -o $opts,$ctrls cgroup $cg/$ctrls || die "mount cgroup -o $ctrls"
        case "$ctrls" in
        *,*) for c in $(echo $ctrls | tr , ' '); do ln -s $ctrls $cg/$c; done ;;
        esac
    done
    mkdir $cg/systemd
    mount -t cgroup -o $opts,none,name=systemd cgroup $cg/systemd || die "mount cgroup -o name=systemd"
}

# delegate DIR: a cgroup the test user may manage, as systemd's Delegate=yes makes
# one: cpu, io, memory and pids enabled in the root's cgroup.subtree_control (what
# systemd enables there, and what isol enables for every box anyway) so that DIR
# offers them; DIR and the files the kernel lists in /sys/kernel/cgroup/delegate
# chowned to the user.
delegate() {
    for c in cpu io memory pids; do
        echo "+$c" >$cg/cgroup.subtree_control || die "enable $c in $cg"
    done
    mkdir "$1" || die "mkdir $1"
    files=$(cat /sys/kernel/cgroup/delegate 2>/dev/null)
    for f in . ${files:-cgroup.procs cgroup.threads cgroup.subtree_control}; do
        [ ! -e "$1/$f" ] || chown $TEST_UID:$TEST_GID "$1/$f" || die "chown $1/$f"
    done
}

deleg=
case "$mode" in
unified)
    mount -t cgroup2 -o $opts,nsdelegate,memory_recursiveprot cgroup2 $cg ||
        mount -t cgroup2 -o $opts cgroup2 $cg || die "mount cgroup2 on $cg"
    deleg=$cg/$TEST_USER.delegated
    delegate $deleg
    ;;
legacy)
    mount_v1
    mount -o remount,ro $cg || die "remount $cg read-only"
    ;;
hybrid)
    mount_v1
    mkdir $cg/unified
    mount -t cgroup2 -o $opts,nsdelegate cgroup2 $cg/unified ||
        mount -t cgroup2 -o $opts cgroup2 $cg/unified || die "mount cgroup2 on $cg/unified"
    mount -o remount,ro $cg || die "remount $cg read-only"
    ;;
*) die "unknown isol.mode=$mode" ;;
esac

# The workspace's programs, where the tests' CARGO_BIN_EXE_<name> paths point.
while IFS= read -r p; do
    mkdir -p "${p%/*}" && ln -s "/isol/programs$p" "$p" || die "link $p"
done </isol/programs.list

echo "ISOL-INIT kernel $(uname -r), mode $mode, $(nproc) cpus, $(awk '/MemTotal/ { print $2 " kB" }' /proc/meminfo)"
grep cgroup /proc/mounts | sed 's/^/ISOL-MOUNT /'

# What every test (and the script) finds in its environment besides the basics;
# no value has a space, so the list splits into words.
extra="ISOL_TEST_USER=$TEST_USER ISOL_TEST_UID=$TEST_UID ISOL_TEST_GID=$TEST_GID"
[ -z "$tools" ] || extra="$extra ISOL_TOOLS=$tools"
[ -z "$deleg" ] || extra="$extra ISOL_DELEGATED_CGROUP=$deleg"

t0=$(now_cs)
mkdir -p /tmp/isol-smoke
(cd /tmp/isol-smoke && exec env -i PATH=$PATH HOME=/root TMPDIR=/tmp ISOL_EXPECT_MODE="$mode" \
    $extra /isol/smoke.sh) 2>&1 || die "smoke checks failed (ISOL-SMOKE lines above)"
rm -rf /tmp/isol-smoke
echo "ISOL-INIT smoke checks passed in $(since $t0)"

set --
while IFS= read -r a; do
    set -- "$@" "$a"
done </isol/args

# num WORD LINE: the count before WORD in a libtest summary line.
num() {
    v=$(echo "$2" | sed -n "s/.* \([0-9][0-9]*\) $1;.*/\1/p")
    echo "${v:-0}"
}

bad=
mkdir -p /run/isol
if [ -f /isol/script ]; then
    # The script stands for the test binaries: one "test", passed or failed.
    mkdir -p /tmp/isol-work/script
    echo "ISOL-RUN name=script"
    t0=$(date +%s)
    (cd /tmp/isol-work/script && exec env -i PATH=$PATH HOME=/root TMPDIR=/tmp USER=root \
        ISOL_REQUIRE_PRIVILEGED=1 ISOL_EXPECT_MODE="$mode" RUST_BACKTRACE=1 $extra \
        /bin/sh /isol/script </dev/null) 2>&1
    rc=$?
    n=1
    if [ $rc = 0 ]; then P=1 st=ok; else F=1 st=fail bad="script:exit=$rc"; fi
    echo "ISOL-BINARY name=script status=$st exit=$rc passed=$P failed=$F ignored=0 seconds=$(($(date +%s) - t0))"
fi
tests=/isol/tests/*
[ ! -f /isol/script ] || tests=
for bin in $tests; do
    [ -f "$bin" ] || continue
    name=${bin##*/}
    n=$((n + 1))
    out=/run/isol/$name.out
    work=/tmp/isol-work/$name
    mkdir -p "$work"
    echo "ISOL-RUN name=$name args=$*"
    t0=$(date +%s)
    {
        (cd "$work" && exec env -i PATH=$PATH HOME=/root TMPDIR=/tmp USER=root \
            ISOL_REQUIRE_PRIVILEGED=1 ISOL_EXPECT_MODE="$mode" RUST_BACKTRACE=1 $extra \
            "$bin" --test-threads=1 "$@" </dev/null) 2>&1
        echo $? >/run/isol/$name.rc
    } | tee "$out"
    rc=$(cat /run/isol/$name.rc)
    secs=$(($(date +%s) - t0))
    line=$(grep '^test result: ' "$out" | tail -n 1)
    p=$(num passed "$line")
    f=$(num failed "$line")
    i=$(num ignored "$line")
    P=$((P + p)) F=$((F + f)) I=$((I + i))
    st=ok
    why=
    [ "$rc" = 0 ] || why="$why exit=$rc"
    [ -n "$line" ] || why="$why no-summary"
    [ "$f" = 0 ] || why="$why failed=$f"
    [ "$i" = 0 ] || why="$why ignored=$i"
    if [ -n "$why" ]; then
        st=fail
        bad="$bad $name:${why# }"
    fi
    echo "ISOL-BINARY name=$name status=$st exit=$rc passed=$p failed=$f ignored=$i seconds=$secs"
done

if [ -n "$bad" ]; then
    echo "ISOL-INIT kernel messages:"
    dmesg | tail -n 30
    verdict fail "${bad# }"
elif [ "$n" = 0 ]; then
    verdict fail "no test binaries in /isol/tests"
elif [ "$P" = 0 ]; then
    verdict fail "no test ran"
fi
verdict ok
