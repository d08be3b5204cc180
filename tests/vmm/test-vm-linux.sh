#!/usr/bin/env bash
# A Linux guest: Debian's linux-image-cloud-amd64 kernel, booted directly
# (bzImage, 64-bit entry) with a busybox initramfs built here that loads
# virtio_blk and switches root to an ext4 filesystem on a qcow2 overlay
# over a raw base.  The root's init reads a file of the base, writes its
# own, syncs and powers off through ACPI.  Then: exit status 0, the
# overlay holds the new file, the base is unchanged, qemu-img check clean.
#
# Hosts whose /dev/kvm cannot run a stock kernel (shadow-paging ones: the
# kernel stalls before its console comes up) are detected: the kernel must
# print its banner within STRATA_LINUX_PROBE seconds (default 20) or the
# test skips saying so.  STRATA_LINUX_KERNEL picks another kernel.
. "$top_srcdir/tests/functions.sh"
. "$top_srcdir/tests/vmm/vm-functions.sh"
requires qemu-img cpio mke2fs debugfs
tmpdir
vm_requires_kvm

kernel=${STRATA_LINUX_KERNEL:-$(ls -v /boot/vmlinuz-*-cloud-amd64 \
    2>/dev/null | tail -n 1)}
[ -n "$kernel" ] && [ -r "$kernel" ] ||
    skip_all "no linux-image-cloud-amd64 kernel in /boot"
kver=${kernel##*/vmlinuz-}
moddir=/lib/modules/$kver
[ -r "$moddir/modules.dep" ] || skip_all "modules of $kver not installed"
bb=$(type -P busybox) || skip_all "busybox not installed"
if ldd "$bb" >/dev/null 2>&1; then
    skip_all "busybox is dynamically linked (busybox-static needed)"
fi

# modules NAME...: the .ko paths (relative to $moddir) to load, dependencies
# first, leaving out built-in ones.
modules()
{
    local m line path deps d
    for m in "$@"; do
        line=$(grep -E "/$m\.ko(\.[a-z]+)?:" "$moddir/modules.dep" || true)
        [ -n "$line" ] || continue
        path=${line%%:*}
        deps=${line#*:}
        for d in $(printf '%s\n' $deps | tac); do
            echo "$d"
        done
        echo "$path"
    done | awk '!seen[$0]++'
}

# the initramfs: load the drivers, mount the root, switch to it
ird=$T/initramfs
mkdir -p "$ird"/{bin,dev,proc,sys,newroot,lib/modules}
cp "$bb" "$ird/bin/busybox"
: >"$ird/modules.order"
for m in $(modules virtio_pci virtio_blk); do
    cp "$moddir/$m" "$ird/lib/modules/"
    basename "$m" >>"$ird/modules.order"
done
cat >"$ird/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo STRATA-LINUX-UP
for m in $(cat /modules.order); do insmod /lib/modules/$m; done
for i in $(seq 100); do [ -b /dev/vda ] && break; sleep 0.1; done
mount -t ext4 /dev/vda /newroot || { echo "cannot mount root"; poweroff -f; }
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
INIT
chmod +x "$ird/init"
(cd "$ird" && find . | cpio -o -H newc --quiet) | gzip >"$T/initrd.gz"

# the root filesystem (raw base) and the overlay the guest runs on
rootdir=$T/rootfs
mkdir -p "$rootdir"/{bin,sbin,dev,proc}
cp "$bb" "$rootdir/bin/busybox"
cat >"$rootdir/sbin/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
echo "base: $(cat /base.txt)"
echo "written by the guest" >/guest.txt
sync
mount -o remount,ro /
echo STRATA-LINUX-DONE
poweroff -f
INIT
chmod +x "$rootdir/sbin/init"
echo "hello from the base" >"$rootdir/base.txt"
base=$T/base.raw
ov=$T/root.qcow2
mke2fs -q -t ext4 -d "$rootdir" "$base" 64M >/dev/null
sum_base=$(md5sum <"$base")
qemu-img create -q -f qcow2 -b "$base" -F raw "$ov"

log=$T/linux.log
: >"$log"
timeout "${STRATA_LINUX_TIMEOUT:-120}" strata-vm -serial "file:$log" \
    -no-reboot -m 512M -smp 2 -kernel "$kernel" -initrd "$T/initrd.gz" \
    -append "console=ttyS0 earlyprintk=serial,ttyS0 panic=-1 loglevel=4" \
    -drive file="$ov",format=qcow2 >"$log.err" 2>&1 &
vm_pid=$!
cleanup_fn kill "$vm_pid"
if ! wait_until "${STRATA_LINUX_PROBE:-20}" grep -q "Linux version" "$log"
then
    kill "$vm_pid" 2>/dev/null || true
    wait "$vm_pid" 2>/dev/null || true
    skip_all "this host's KVM cannot boot $kernel: no kernel banner on" \
        "the serial console within ${STRATA_LINUX_PROBE:-20} s"
fi
vm_rc=0
wait "$vm_pid" || vm_rc=$?
if ! tr -d '\r' <"$log" | grep -qx STRATA-LINUX-UP; then
    skip_all "this host's KVM starts $kernel but it does not reach init" \
        "(exit status $vm_rc: $(tr -d '\r' <"$log" | grep -v '^$' |
        tail -n 1))"
fi

plan 6
vm_check "Linux guest powered off (exit 0)" 0 "$log"
vm_log_has "root on the overlay read the base's file" "$log" \
    "base: hello from the base"
vm_log_has "guest finished its work" "$log" "STRATA-LINUX-DONE"
qemu-img convert -O raw "$ov" "$T/out.raw"
check_eq "overlay holds the guest's file" \
    "$(debugfs -R 'cat /guest.txt' "$T/out.raw" 2>/dev/null)" \
    "written by the guest"
check_eq "base image unchanged" "$(md5sum <"$base")" "$sum_base"
check "qemu-img check is clean on the overlay" qemu-img check "$ov"
done_testing
