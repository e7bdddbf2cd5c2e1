#!/usr/bin/env bash
# The recipe of the real-guest image: a Debian 12 cloud guest as a seller would build it.
#
#   build-image.sh OUT_DIR        (run by `python3 -m tests.guest.image`, which owns the cache)
#
# Environment: AMISCAN_GUEST_MIRROR (the Debian archive) and AMISCAN_GUEST_SECURITY_MIRROR (the
# security archive), both required; the Python side defaults them to the host's apt sources.
#
# Writes OUT_DIR/root (the root tree, for offline `dir:` scans), OUT_DIR/rootfs.img (a bare ext4
# file system of that tree, booted as /dev/vda), OUT_DIR/vmlinuz and OUT_DIR/initrd.img.
#
# Packages come from the `bookworm` suite only (the point release), never bookworm-security, so
# the guest has real security updates pending; its apt sources name bookworm-security and its
# package lists are refreshed here, so `apt-get -s upgrade` in the guest sees them offline.
#
# Any change to this file changes the cache key and rebuilds the image.
set -euo pipefail

SUITE=bookworm
PACKAGES=(
  linux-image-cloud-amd64 initramfs-tools systemd systemd-sysv udev dbus
  openssh-server sudo cloud-init nftables iproute2 procps
)

customize() {
  local root=$1
  # The image's own apt sources, as a seller's image would have them: updates and security.
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $AMISCAN_GUEST_MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $AMISCAN_GUEST_SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # The guest has no network at all, so these lists are what its apt knows: they must name the
  # security updates the installed (point-release) packages lack.
  chroot "$root" apt-get -qq update

  echo "/dev/vda / ext4 rw,errors=remount-ro 0 1" >"$root/etc/fstab"
  # The build host's resolver and name must not leak into the image (mmdebstrap copied them in).
  rm -f "$root/etc/resolv.conf" "$root/etc/hostname"
  echo localhost >"$root/etc/hostname"
  chmod 644 "$root/etc/hostname"
  echo LANG=C.UTF-8 >"$root/etc/default/locale"

  # DHCP on the first NIC by systemd-networkd: already installed, and the fastest to come up.
  cat >"$root/etc/systemd/network/50-dhcp.network" <<'EOF'
[Match]
Name=en* eth*

[Network]
DHCP=ipv4
EOF
  chroot "$root" systemctl enable -q systemd-networkd nftables

  # NoCloud only: probing for other clouds' metadata services costs minutes in a guest without
  # a network. The network is ours (above), not cloud-init's. ec2-user as on Amazon's images.
  cat >"$root/etc/cloud/cloud.cfg.d/90-amiscan-guest.cfg" <<'EOF'
datasource_list: [ NoCloud, None ]
network: {config: disabled}
manage_etc_hosts: localhost
# The image has no locales package; C.UTF-8 needs none (cloud-init's default en_US.UTF-8 would
# make its config stage fail).
locale: C.UTF-8
system_info:
  default_user:
    name: ec2-user
    gecos: EC2 Default User
    groups: [adm, systemd-journal]
    shell: /bin/bash
    lock_passwd: true
    sudo: ["ALL=(ALL) NOPASSWD:ALL"]
EOF

  # Debian's sshd allows passwords by default; cloud images turn that off in a drop-in, so the
  # offline tree and the running sshd agree (cloud-init would only edit it at first boot).
  cat >"$root/etc/ssh/sshd_config.d/60-cloud-image.conf" <<'EOF'
PasswordAuthentication no
EOF

  # No host keys ship in the image. cloud-init's cc_ssh writes them before ssh.service starts;
  # this unit is the fallback so `sshd -t` in ssh.service never meets an empty /etc/ssh.
  cat >"$root/etc/systemd/system/ssh-hostkeys.service" <<'EOF'
[Unit]
Description=Generate missing SSH host keys
After=cloud-init.service
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=ssh.service
EOF
  chroot "$root" systemctl enable -q ssh-hostkeys.service

  # Root cannot log in with a password: locked, no hash.
  chroot "$root" usermod -p '*' root

  # What Marketplace vetting wants absent from an image: host keys, machine identity, history,
  # cloud-init state from a previous boot.
  rm -f "$root"/etc/ssh/ssh_host_* "$root/var/lib/dbus/machine-id" "$root/root/.bash_history"
  : >"$root/etc/machine-id"
  rm -rf "$root/var/lib/cloud"/*
}

if [ "${1:-}" = customize ]; then
  customize "$2"
  exit 0
fi

out=${1:?usage: build-image.sh OUT_DIR}
: "${AMISCAN_GUEST_MIRROR:?}" "${AMISCAN_GUEST_SECURITY_MIRROR:?}"
export AMISCAN_GUEST_MIRROR AMISCAN_GUEST_SECURITY_MIRROR
mkdir -p "$out"
recipe=$(readlink -f "$0")

# Root mode: the tree keeps real owners, so `mkfs.ext4 -d` and offline scans see the image as
# it is. Recommends are left out to keep the image (and the boot) small.
mmdebstrap --quiet --mode=root --variant=minbase --components=main \
  --aptopt='APT::Install-Recommends "false"' \
  --include="$(IFS=,; echo "${PACKAGES[*]}")" \
  --skip=cleanup/apt/lists \
  --customize-hook="'$recipe' customize \"\$1\"" \
  "$SUITE" "$out/root" "deb $AMISCAN_GUEST_MIRROR $SUITE main"
rm -f "$out/root/etc/apt/apt.conf.d/99mmdebstrap"

cp "$(readlink -f "$out"/root/boot/vmlinuz-*)" "$out/vmlinuz"
cp "$(readlink -f "$out"/root/boot/initrd.img-*)" "$out/initrd.img"

# A bare ext4 file system of the tree (no partition table: the kernel is booted directly), with
# room for a boot's logs and apt's work. Sparse, so the spare room costs no disk.
used_mib=$(($(du -sm "$out/root" | cut -f1)))
mkfs.ext4 -q -F -L amiscan-root -d "$out/root" "$out/rootfs.img" "$((used_mib * 2 + 1024))M"
