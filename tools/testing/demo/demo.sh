#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The demo, run inside the test guest: real userspace tools (dmsetup, LVM2,
# mkfs/fsck) driving device-mapper, with a note of whose module each piece is.
set -euo pipefail
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
whose() {	# whose MODULE: ours (out of tree) or stock
	local t=/sys/module/${1//-/_}/taint
	if [ ! -e "$t" ]; then echo "not loaded"
	elif grep -q O "$t"; then echo "ours"
	else echo "stock Debian"; fi
}

say "Kernel $(uname -r), module set DM=${DM:-ours}"
dmsetup version
echo "dm-mod: $(whose dm_mod)"

modprobe brd rd_nr=2 rd_size=65536 max_part=0
trap 'set +e; umount /mnt/demo 2>/dev/null; vgchange -an demo >/dev/null 2>&1;
      dmsetup remove_all >/dev/null 2>&1; rmmod brd 2>/dev/null' EXIT

say "A striped device over two RAM disks, and one half of it taken apart again"
dmsetup create demo-striped --table "0 131072 striped 2 128 /dev/ram0 0 /dev/ram1 0"
dmsetup table demo-striped
dd if=/dev/urandom of=/tmp/data bs=1M count=64 status=none
dd if=/tmp/data of=/dev/mapper/demo-striped bs=1M oflag=direct status=none
dmsetup create demo-member0 --table "0 65536 unstriped 2 128 0 /dev/mapper/demo-striped 0" 2>/dev/null ||
	dmsetup create demo-member0 --table "0 65536 unstriped 2 128 0 /dev/ram0 0"
echo "unstriped module: $(whose dm-unstripe)"
cmp <(dd if=/dev/ram0 bs=1M count=32 status=none) \
    <(dd if=/dev/mapper/demo-member0 bs=1M iflag=direct status=none) &&
	echo "member 0 read through 'unstriped' matches /dev/ram0 byte for byte"
dmsetup ls --tree
dmsetup remove demo-member0
dmsetup remove demo-striped

say "LVM2: a volume group, a striped logical volume, ext4 on it"
pvcreate -q /dev/ram0 /dev/ram1
vgcreate -q demo /dev/ram0 /dev/ram1
lvcreate -q -y -i2 -I64k -L48m -n data demo
dmsetup table demo-data
mkfs.ext4 -q /dev/demo/data
mkdir -p /mnt/demo
mount /dev/demo/data /mnt/demo
head -c 16M /tmp/data > /tmp/file
cp /tmp/file /mnt/demo/file
lvextend -q -L+8m -r demo/data >/dev/null 2>&1 || lvextend -q -L+8m demo/data
sync
df -h /mnt/demo | tail -1
umount /mnt/demo
fsck.ext4 -fn /dev/demo/data >/dev/null && echo "fsck.ext4: clean"
mount -o ro /dev/demo/data /mnt/demo
cmp /tmp/file /mnt/demo/file && echo "file read back intact"
umount /mnt/demo
lvs -o lv_name,lv_size,segtype,stripes demo
vgchange -q -an demo
vgremove -q -f demo >/dev/null

say "Targets registered now"
dmsetup targets
echo
echo "dm-mod: $(whose dm_mod); unstriped: $(whose dm_unstripe)"
