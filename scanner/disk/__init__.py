"""Reading disk images without mounting them: the layers under `dir:`'s sibling targets.

block source (a local file, or an EBS snapshot) → block cache → image format (raw, qcow2, VMDK)
→ volumes (a bare file system, GPT, MBR, LVM) → file system (ext, XFS) → a `FileSource`.
Each layer reads the one below through `scanner.disk.device.BlockDevice`; nothing needs root,
FUSE, a mount or a loop device, and every structure read from the image is bounds-checked
(the image is untrusted).
"""
