"""Which snapshots an AMI's offline scan reads, and under which device names."""

from __future__ import annotations

from scanner.targets.ami import image_snapshots


def test_the_root_snapshot_comes_first_then_the_other_ebs_volumes() -> None:
    image = {
        "RootDeviceName": "/dev/xvda",
        "BlockDeviceMappings": [
            {"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": "snap-22222222"}},
            {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"},
            {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": "snap-11111111"}},
        ],
    }
    assert image_snapshots(image) == [("snap-11111111", "/dev/xvda"), ("snap-22222222", "/dev/sdf")]


def test_an_image_whose_root_has_no_snapshot_has_nothing_to_read() -> None:
    instance_store = {
        "RootDeviceName": "/dev/sda1",
        "BlockDeviceMappings": [
            {"DeviceName": "/dev/sda1", "VirtualName": "ephemeral0"},
            {"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": "snap-22222222"}},
        ],
    }
    assert image_snapshots(instance_store) == []
    assert image_snapshots({"RootDeviceName": "/dev/xvda"}) == []
