#!/bin/busybox sh
# isol's smoke checks for `cargo xtask test-vm`, packed as /isol/smoke.sh. init runs
# them in every mode before the tests, as root, in the tests' environment
# (ISOL_TOOLS, ISOL_TEST_USER/UID/GID, ISOL_DELEGATED_CGROUP). Each check prints one
# ISOL-SMOKE line; the first that fails ends the script non-zero and init fails the
# run, so that a test needing podman or the test user is never the first to find
# either broken.
#
# `smoke.sh as-user DIR` is the half of the delegation check that runs as the test
# user, already placed in DIR (the delegated cgroup) by root.

set -u

fail() {
    echo "ISOL-SMOKE FAILED: $*"
    exit 1
}

now_cs() { awk '{ printf "%d", $1 * 100 }' /proc/uptime; }
since() { awk -v a="$1" -v b="$(now_cs)" 'BEGIN { printf "%.2fs", (b - a) / 100 }'; }

# check NAME CMD…: runs CMD, with all its output in $out and its last line in
# $last. The ISOL-SMOKE line shows the first line naming a version, else the last.
check() {
    name=$1
    shift
    t=$(now_cs)
    out=$("$@" 2>&1) || fail "$name: \`$*\` exited $?: $(echo "$out" | tail -n 5)"
    last=$(echo "$out" | tail -n 1)
    shown=$(echo "$out" | grep -i -m 1 version)
    echo "ISOL-SMOKE $name ok $(since "$t"): ${shown:-$last}"
}

# has PACKAGE: whether the tools disk holds it (asked for by name).
has() {
    case ",${ISOL_TOOLS:-}," in
    *",$1,"*) return 0 ;;
    esac
    return 1
}

# As the test user in the delegated cgroup D: what a rootless box manager does.
# Leave D for a leaf (D itself must hold no process once controllers are enabled
# in its subtree), enable controllers, make a cgroup with limits, enter it and
# find the limit enforced, then undo it all.
if [ "${1:-}" = as-user ]; then
    d=$2
    [ "$(id -u)" = "$ISOL_TEST_UID" ] || fail "as-user runs as uid $(id -u)"
    mkdir "$d/init" || fail "mkdir $d/init as the test user"
    echo $$ >"$d/init/cgroup.procs" || fail "move into $d/init as the test user"
    echo "+memory +pids" >"$d/cgroup.subtree_control" || fail "enable memory and pids in $d"
    mkdir "$d/box" || fail "mkdir $d/box as the test user"
    echo 64M >"$d/box/memory.max" || fail "write $d/box/memory.max"
    echo 1 >"$d/box/pids.max" || fail "write $d/box/pids.max"
    # One process may live in the box; its first fork must fail, which ends a
    # busybox shell with status 2.
    err=$(sh -c "echo \$\$ >$d/box/cgroup.procs || exit 7; /bin/true; exit 3" 2>&1)
    rc=$?
    [ $rc = 2 ] || fail "pids.max=1 in $d/box: exit $rc (7: could not enter, 3: forked anyway): $err"
    [ "$(cat "$d/box/pids.events")" = "max 1" ] || fail "$d/box/pids.events: $(cat "$d/box/pids.events")"
    rmdir "$d/box" || fail "rmdir $d/box"
    echo "-memory -pids" >"$d/cgroup.subtree_control" || fail "disable memory and pids in $d"
    exit 0
fi

# The test user, and root switching to it.
t=$(now_cs)
got=$(su -s /bin/sh "$ISOL_TEST_USER" -c 'echo $(id -u):$(id -g) $HOME' 2>&1)
[ "$got" = "$ISOL_TEST_UID:$ISOL_TEST_GID /home/$ISOL_TEST_USER" ] || fail "su $ISOL_TEST_USER: $got"
[ -O /home/"$ISOL_TEST_USER" ] && fail "/home/$ISOL_TEST_USER is root's"
echo "ISOL-SMOKE user ok $(since "$t"): $ISOL_TEST_USER is $got"

if [ -n "${ISOL_DELEGATED_CGROUP:-}" ]; then
    d=$ISOL_DELEGATED_CGROUP
    t=$(now_cs)
    sh -c "echo \$\$ >$d/cgroup.procs && exec su -s /bin/sh $ISOL_TEST_USER -c '/isol/smoke.sh as-user $d'" ||
        fail "the test user could not manage $d"
    rmdir "$d/init" || fail "rmdir $d/init"
    [ -z "$(cat "$d/cgroup.procs" "$d/cgroup.subtree_control")" ] || fail "$d is not left as it was"
    [ -z "$(find "$d" -mindepth 1 -type d)" ] || fail "$d still has children"
    echo "ISOL-SMOKE delegation ok $(since "$t"): $d (uid $ISOL_TEST_UID made a cgroup there, limited it, and was held to pids.max)"
fi

[ -n "${ISOL_TOOLS:-}" ] || exit 0

has podman && check podman podman --version
has containerd && check containerd containerd --version
has containerd && check ctr ctr --version
has crun && check crun crun --version
has runc && check runc runc --version
has bubblewrap && check bwrap bwrap --version
has util-linux && check unshare /usr/bin/unshare --version
has conmon && check conmon conmon --version
has catatonit && check catatonit catatonit --version
has netavark && check netavark /usr/lib/podman/netavark --version
has slirp4netns && check slirp4netns slirp4netns --version
has fuse-overlayfs && check fuse-overlayfs fuse-overlayfs --version

if has uidmap; then
    for f in /usr/bin/newuidmap /usr/bin/newgidmap; do
        [ -u $f ] && [ "$(stat -c %u $f)" = 0 ] || fail "$f is not set-uid root: $(ls -l $f)"
    done
    echo "ISOL-SMOKE newuidmap ok: newuidmap and newgidmap are set-uid root"
    if has util-linux; then
        # The test user's subordinate range, mapped by newuidmap/newgidmap.
        check subid-map su -s /bin/sh "$ISOL_TEST_USER" -c \
            '/usr/bin/unshare --user --map-auto cat /proc/self/uid_map /proc/self/gid_map'
        echo "$out" | awk '$1 != 0 || $2 != 100000 || $3 != 65536 { bad = 1 } END { exit bad || NR != 2 }' ||
            fail "subid-map: expected 0 100000 65536 twice, got: $out"
    fi
fi

if has podman && [ "$ISOL_EXPECT_MODE" = unified ]; then
    check podman-info podman --root /tmp/isol-smoke/podman --runroot /tmp/isol-smoke/podman-run \
        --storage-driver vfs info \
        --format '{{.Host.CgroupsVersion}} {{.Host.CgroupManager}} {{.Host.OCIRuntime.Name}} {{.Store.GraphDriverName}}'
    [ "$last" = "v2 cgroupfs crun vfs" ] || fail "podman info: expected 'v2 cgroupfs crun vfs', got: $out"
fi
exit 0
