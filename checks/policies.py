"""The Marketplace and EC2 policies the built-in checks enforce (CHECKS.md, "Policy sources")."""

from __future__ import annotations

from scanner.model import Policy

_AMI_POLICIES = (
    "https://docs.aws.amazon.com/marketplace/latest/userguide/product-and-ami-policies.html"
)
_BEST_PRACTICES = "https://docs.aws.amazon.com/marketplace/latest/userguide/best-practices-for-building-your-amis.html"
_CHECKLIST = "https://docs.aws.amazon.com/marketplace/latest/userguide/aws-marketplace-listing-checklist.html"
_CATALOG_API = (
    "https://docs.aws.amazon.com/marketplace/latest/APIReference/work-with-single-ami-products.html"
)
_SHARED_AMIS = "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/building-shared-amis.html"

_TEXTS = {
    "G1": "AMIs must not contain known critical or high vulnerabilities or malware; keep the OS and packages patched.",
    "G2": "AMIs must use a supported operating system and software.",
    "G3": "AMIs must be less than two years old.",
    "G4": "AMIs must not use password-based authentication; no null or blank passwords.",
    "G5": "AMIs must not contain hardcoded secrets: passwords (including hashed), private keys or credentials.",
    "G6": "AMIs must not request or require AWS credentials.",
    "G7": "The seller must not have access to running instances of the AMI.",
    "S1": "SSH password authentication must be disabled (PasswordAuthentication no).",
    "S2": "Superusers (root) must not be able to log in remotely with a password.",
    "S3": "The AMI must not contain authorized public keys.",
    "S4": "SSH must be reachable from the vetting ranges 10.0.0.0/16 and 10.2.0.0/16.",
    "L1": "The login user must have full privileged access (sudo).",
    "W1": "Windows AMIs must not have an enabled guest account.",
    "W2": "Only administrators may be members of Remote Desktop Users.",
    "W3": "EC2Launch / EC2Config must generate a random administrator password at launch.",
    "W4": "SSM, WinRM on 5985 or SMB on 139/445 must be reachable for vetting.",
    "A1": "The source AMI must be in us-east-1 to be submitted.",
    "A2": "AMIs must use hardware virtual machine (HVM) virtualization.",
    "A3": "AMIs must be x86-64 or arm64.",
    "A4": "AMIs must be backed by Amazon EBS.",
    "A5": "AMIs must not have encrypted EBS snapshots.",
    "A6": "AMIs must not use encrypted file systems.",
    "A7": "AMIs must be Region-agnostic.",
    "A8": "AMIs must be at most 5 TB in size.",
    "BP": "Best practices for building AMIs (ec2-user, IMDSv2 only, up-to-date OS and packages).",
    "CL": "AMI product checklist (no hardcoded SSH keys, EC2Launch v2 random password, RDP enabled).",
    "CAT": "Catalog API validation of AMI versions (existing product codes, ENA support).",
    "SH": "Guidelines for shared Linux AMIs (host keys, histories, cloud-init state, credentials).",
}

_URLS = {
    "BP": _BEST_PRACTICES,
    "CL": _CHECKLIST,
    "CAT": _CATALOG_API,
    "SH": _SHARED_AMIS,
}


def policy(*ids: str) -> Policy:
    """A Policy for one or more policy ids ("S3", "CL"); the first id's source is the link."""
    first = ids[0]
    text = " ".join(_TEXTS[i] for i in ids)
    return Policy(", ".join(ids), _URLS.get(first, _AMI_POLICIES), text)
