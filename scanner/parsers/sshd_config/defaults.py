"""The compiled-in defaults (servconf.c fill_default_server_options, OpenSSH 9.2)."""

from __future__ import annotations

ANY_V4 = "0.0.0.0"  # noqa: S104 - how sshd -T prints the IPv4 wildcard; nothing binds here
_DEFAULT_HOST_KEYS = (
    "/etc/ssh/ssh_host_rsa_key",
    "/etc/ssh/ssh_host_ecdsa_key",
    "/etc/ssh/ssh_host_ed25519_key",
)
_ALL_KEY_ALGORITHMS = (
    "ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,"
    "ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,"
    "sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,"
    "rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,"
    "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,"
    "sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256"
)
DEFAULTS: dict[str, tuple[str, ...]] = {
    "port": ("22",),
    "addressfamily": ("any",),
    "usepam": ("no",),
    "logingracetime": ("120",),
    "x11displayoffset": ("10",),
    "maxauthtries": ("6",),
    "maxsessions": ("10",),
    "clientaliveinterval": ("0",),
    "clientalivecountmax": ("3",),
    "requiredrsasize": ("1024",),
    "streamlocalbindmask": ("0177",),
    "unusedconnectiontimeout": ("none",),
    "permitrootlogin": ("prohibit-password",),
    "ignorerhosts": ("yes",),
    "ignoreuserknownhosts": ("no",),
    "hostbasedauthentication": ("no",),
    "hostbasedusesnamefrompacketonly": ("no",),
    "pubkeyauthentication": ("yes",),
    "kerberosauthentication": ("no",),
    "kerberosorlocalpasswd": ("yes",),
    "kerberosticketcleanup": ("yes",),
    "gssapiauthentication": ("no",),
    "gssapicleanupcredentials": ("yes",),
    "gssapistrictacceptorcheck": ("yes",),
    "passwordauthentication": ("yes",),
    "kbdinteractiveauthentication": ("yes",),
    "printmotd": ("yes",),
    "printlastlog": ("yes",),
    "x11forwarding": ("no",),
    "x11uselocalhost": ("yes",),
    "permittty": ("yes",),
    "permituserrc": ("yes",),
    "strictmodes": ("yes",),
    "tcpkeepalive": ("yes",),
    "permitemptypasswords": ("no",),
    "compression": ("yes",),
    "gatewayports": ("no",),
    "usedns": ("no",),
    "allowtcpforwarding": ("yes",),
    "allowagentforwarding": ("yes",),
    "disableforwarding": ("no",),
    "allowstreamlocalforwarding": ("yes",),
    "streamlocalbindunlink": ("no",),
    "fingerprinthash": ("SHA256",),
    "exposeauthinfo": ("no",),
    # Build-dependent paths: the values of the common Linux distribution packages.
    "pidfile": ("/run/sshd.pid",),
    "modulifile": ("/etc/ssh/moduli",),
    "xauthlocation": ("/usr/bin/xauth",),
    "ciphers": (
        "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,"
        "aes128-gcm@openssh.com,aes256-gcm@openssh.com",
    ),
    "macs": (
        "umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,"
        "hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com,"
        "umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1",
    ),
    "banner": ("none",),
    "forcecommand": ("none",),
    "chrootdirectory": ("none",),
    "trustedusercakeys": ("none",),
    "revokedkeys": ("none",),
    "securitykeyprovider": ("internal",),
    "authorizedprincipalsfile": ("none",),
    "versionaddendum": ("none",),
    "authorizedkeyscommand": ("none",),
    "authorizedkeyscommanduser": ("none",),
    "authorizedprincipalscommand": ("none",),
    "authorizedprincipalscommanduser": ("none",),
    "hostkeyagent": ("none",),
    "kexalgorithms": (
        "sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,"
        "ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,"
        "diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,"
        "diffie-hellman-group18-sha512,diffie-hellman-group14-sha256",
    ),
    "casignaturealgorithms": (
        "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,"
        "sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256",
    ),
    "hostbasedacceptedalgorithms": (_ALL_KEY_ALGORITHMS,),
    "hostkeyalgorithms": (_ALL_KEY_ALGORITHMS,),
    "pubkeyacceptedalgorithms": (_ALL_KEY_ALGORITHMS,),
    "rdomain": ("none",),
    "loglevel": ("INFO",),
    "syslogfacility": ("AUTH",),
    "authorizedkeysfile": (".ssh/authorized_keys", ".ssh/authorized_keys2"),
    "hostkey": _DEFAULT_HOST_KEYS,
    "authenticationmethods": ("any",),
    "maxstartups": ("10:30:100",),
    "persourcemaxstartups": ("none",),
    "persourcenetblocksize": ("32:128",),
    "permittunnel": ("no",),
    "ipqos": ("af21", "cs1"),
    "rekeylimit": ("0", "0"),
    "permitopen": ("any",),
    "permitlisten": ("any",),
    "permituserenvironment": ("no",),
    "pubkeyauthoptions": ("none",),
    "gssapikeyexchange": ("no",),
    "gssapistorecredentialsonrekey": ("no",),
    "gssapienablek5users": ("no",),
    "kerberosusekuserok": ("yes",),
    "debianbanner": ("yes",),
    "refuseconnection": ("no",),
}
