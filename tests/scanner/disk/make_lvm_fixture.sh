#!/bin/sh
# Makes the LVM2 fixtures for tests/scanner/disk/test_volumes.py with lvm2 itself, so the tests check our
# reader against LVM's own on-disk layout rather than against our idea of it. Needs root, loop
# devices and lvm2; no device-mapper (nothing is activated). Rerun only to regenerate the fixtures.
#
#   lvm-pv.img.gz   one 24 MiB PV of vg0 (1 MiB extents): "data" (2 MiB, then extended by 3 MiB,
#                   so it has two non-contiguous segments) and "root" (8 MiB, between them).
#   lvm-pv.json     lvm2's report of that mapping: segments in extents and pe_start in bytes.
#   lvm-vg1-a.img.gz, lvm-vg1-b.img.gz   two 12 MiB PVs of vg1: "stripes" (striped over both)
#                   and "span" (linear, running from the first PV onto the second).
#   lvm-vg1.json    the same report for vg1.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/data"
work=$(mktemp -d)
loops=""
cleanup() {
    for dev in $loops; do losetup -d "$dev" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
export LVM_SUPPRESS_FD_WARNINGS=1
# No device-mapper, no udev, no devices file, and no backups of these throwaway VGs in /etc/lvm.
cfg='global{activation=0} activation{udev_sync=0 udev_rules=0} devices{obtain_device_list_from_udev=0 use_devicesfile=0} backup{backup=0 archive=0}'
attach() {
    dev=$(losetup -f --show "$1")
    loops="$loops $dev"
    echo "$dev"
}
report() {  # report VG JSON-FILE DEVICES...
    vg=$1 json=$2
    shift 2
    lvs --config "$cfg" --segments --units b --reportformat json \
        -o lv_name,segtype,seg_start_pe,seg_size_pe,seg_pe_ranges,vg_extent_size "$vg" >"$work/lvs.json"
    pvs --config "$cfg" --units b --reportformat json -o pv_name,pv_uuid,pe_start "$@" >"$work/pvs.json"
    # Name the PVs by their fixture file rather than by the loop device they happened to get.
    python3 - "$work/lvs.json" "$work/pvs.json" "$json" "$@" <<'PY'
import json, sys
lvs_path, pvs_path, out_path, *devices = sys.argv[1:]
names = {dev: f"pv{i}" for i, dev in enumerate(devices)}
def rename(text):
    for dev, name in names.items():
        text = text.replace(dev + ":", name + ":").replace(dev, name)
    return text
lvs = json.loads(rename(open(lvs_path).read()))["report"][0]["seg"]
pvs = json.loads(rename(open(pvs_path).read()))["report"][0]["pv"]
json.dump({"lvs": lvs, "pvs": pvs}, open(out_path, "w"), indent=2)
open(out_path, "a").write("\n")
PY
}

truncate -s 24M "$work/lvm-pv.img"
pv=$(attach "$work/lvm-pv.img")
pvcreate -q --config "$cfg" "$pv"
vgcreate -q --config "$cfg" -s 1M vg0 "$pv"
lvcreate -q --config "$cfg" -an -Zn -L 2M -n data vg0
lvcreate -q --config "$cfg" -an -Zn -L 8M -n root vg0
lvextend -q --config "$cfg" -L +3M vg0/data
report vg0 "$out/lvm-pv.json" "$pv"

truncate -s 12M "$work/lvm-vg1-a.img" "$work/lvm-vg1-b.img"
a=$(attach "$work/lvm-vg1-a.img")
b=$(attach "$work/lvm-vg1-b.img")
pvcreate -q --config "$cfg" "$a" "$b"
vgcreate -q --config "$cfg" -s 1M vg1 "$a" "$b"
lvcreate -q --config "$cfg" -an -Zn -i 2 -I 64k -L 4M -n stripes vg1
lvcreate -q --config "$cfg" -an -Zn -L 14M -n span vg1
report vg1 "$out/lvm-vg1.json" "$a" "$b"

# Forget the VGs before their PVs disappear, without touching the PVs (their metadata is the
# fixture).
for dev in $loops; do losetup -d "$dev"; done
loops=""
for name in lvm-pv lvm-vg1-a lvm-vg1-b; do
    gzip -9n <"$work/$name.img" >"$out/$name.img.gz"
done
ls -l "$out"
