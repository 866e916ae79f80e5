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

export PATH=/bin HOME=/root
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

case "$mode" in
unified)
    mount -t cgroup2 -o $opts,nsdelegate,memory_recursiveprot cgroup2 $cg ||
        mount -t cgroup2 -o $opts cgroup2 $cg || die "mount cgroup2 on $cg"
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
for bin in /isol/tests/*; do
    [ -f "$bin" ] || continue
    name=${bin##*/}
    n=$((n + 1))
    out=/run/isol/$name.out
    work=/tmp/isol-work/$name
    mkdir -p "$work"
    echo "ISOL-RUN name=$name args=$*"
    t0=$(date +%s)
    {
        (cd "$work" && exec env -i PATH=/bin HOME=/root TMPDIR=/tmp USER=root \
            ISOL_REQUIRE_PRIVILEGED=1 ISOL_EXPECT_MODE="$mode" RUST_BACKTRACE=1 \
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
