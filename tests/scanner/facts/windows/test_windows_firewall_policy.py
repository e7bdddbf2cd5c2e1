"""Windows Firewall read from registry policy: the live form's verdicts, and no trust in the data.

The rule strings are written as Windows writes them under FirewallRules (built-in rules with
their resource-string names, user rules under GUID value names).
"""

from __future__ import annotations

import random
import re
from typing import Any

import pytest

from scanner.facts.windows.firewall import ALL_PROFILES, Firewall, FirewallRule, parse_firewall
from scanner.facts.windows.firewall_policy import (
    AUTHENTICATED_ALLOW,
    AUTHENTICATED_BYPASS,
    MAX_RULE_CHARS,
    ProfileSettings,
    UnreadableRule,
    firewall_from_policy,
    parse_rule,
    parse_rules,
)

VETTING_PORTS = (3389, 5985, 5986, 445, 139)

RDP_TCP = (
    "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=3389|"
    r"App=%SystemRoot%\system32\svchost.exe|Svc=termservice|Name=@FirewallAPI.dll,-28775|"
    "Desc=@FirewallAPI.dll,-28756|EmbedCtxt=@FirewallAPI.dll,-28752|"
)
RDP_UDP = (
    "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=17|LPort=3389|"
    r"App=%SystemRoot%\system32\svchost.exe|Svc=termservice|Name=@FirewallAPI.dll,-28776|"
    "Desc=@FirewallAPI.dll,-28777|EmbedCtxt=@FirewallAPI.dll,-28752|"
)
WINRM = (
    "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|Profile=Domain|Profile=Private|LPort=5985|"
    "App=System|Name=@FirewallAPI.dll,-30253|Desc=@FirewallAPI.dll,-30256|"
    "EmbedCtxt=@FirewallAPI.dll,-30267|"
)
WINRM_PUBLIC = (
    "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|Profile=Public|LPort=5985|RA4=LocalSubnet|"
    "RA6=LocalSubnet|App=System|Name=@FirewallAPI.dll,-30253|Desc=@FirewallAPI.dll,-30256|"
    "EmbedCtxt=@FirewallAPI.dll,-30267|"
)
SMB = (
    "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|Profile=Private|Profile=Public|LPort=445|"
    "RA4=LocalSubnet|RA6=LocalSubnet|App=System|Name=@FirewallAPI.dll,-28511|"
    "Desc=@FirewallAPI.dll,-28512|EmbedCtxt=@FirewallAPI.dll,-28502|"
)
SMB_NO_SCOPE = (
    "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|Profile=Domain|LPort=445|App=System|"
    "Name=@FirewallAPI.dll,-28511|Desc=@FirewallAPI.dll,-28512|EmbedCtxt=@FirewallAPI.dll,-28502|"
)
# New-NetFirewallRule -RemoteAddress 10.0.0.0/8 stores the subnet in address/mask form.
BLOCK_TEN = (
    "v2.33|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=5985|LPort=5986|"
    "RA4=10.0.0.0/255.0.0.0|Name=Block the 10/8 network|"
)
ALLOW_WINRM_ANYWHERE = "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=5985|Name=WinRM|"
ALLOW_BOTH_RANGES = (
    "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=5985|RA4=10.0.0.0-10.0.255.255|"
    "RA4=10.2.0.0-10.2.255.255|Name=WinRM from the vetting ranges|"
)
ALLOW_SEVERAL_FORMS = (
    "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=3389|RA4=192.0.2.7|RA4=10.0.0.0/16|"
    "RA4=10.2.0.0/255.255.0.0|RA6=2001:db8::/32|Name=RDP from the office and vetting|"
)
ALLOW_RANGE_OF_PORTS = (
    "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort2_10=5900-6000|Name=VNC and WinRM|"
)
ALLOW_ANY_PROTOCOL = "v2.33|Action=Allow|Active=TRUE|Dir=In|Name=Everything inbound|"
BLOCK_ANY_PROTOCOL_TEN = (
    "v2.33|Action=Block|Active=TRUE|Dir=In|RA4=10.0.0.0/255.0.0.0|Name=Quarantine 10/8|"
)
BLOCK_OUTBOUND_TEN = (
    "v2.33|Action=Block|Active=TRUE|Dir=Out|Protocol=6|RPort=5985|RA4=10.0.0.0/255.0.0.0|"
    "Name=No WinRM out|"
)
WINRM_DISABLED = WINRM.replace("Active=TRUE", "Active=FALSE")
KEYWORD_PORTS = {
    "FPS-RPCSS-In-TCP": (
        "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=RPC-EPMap|"
        r"App=%SystemRoot%\system32\svchost.exe|Svc=Rpcss|Name=@FirewallAPI.dll,-28539|"
        "Desc=@FirewallAPI.dll,-28542|EmbedCtxt=@FirewallAPI.dll,-28502|"
    ),
    "RemoteTask-In-TCP": (
        "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=RPC|"
        r"App=%SystemRoot%\system32\svchost.exe|Svc=schedule|Name=@FirewallAPI.dll,-33253|"
        "Desc=@FirewallAPI.dll,-33256|EmbedCtxt=@FirewallAPI.dll,-33252|"
    ),
    "CoreNet-IPHTTPS-In": (
        "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort2_10=IPHTTPSIn|App=System|"
        "Name=@FirewallAPI.dll,-25426|Desc=@FirewallAPI.dll,-25428|EmbedCtxt=@FirewallAPI.dll,-25000|"
    ),
    "PlayTo-SSDP-Discovery": (
        "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=17|LPort2_20=Ply2Disc|RA42=Ply2Renders|"
        r"App=%SystemRoot%\system32\svchost.exe|Svc=ssdpsrv|Name=@FirewallAPI.dll,-36104|"
        "EmbedCtxt=@FirewallAPI.dll,-36001|"
    ),
    "Block-Teredo": "v2.33|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=Teredo|Name=Teredo|",
}
AUTH_RMAUTH = "O:LSD:(A;;CC;;;S-1-5-21-3623811015-3361044348-30300820-1013)"
APP_CONTAINER = (
    "v2.33|Action=Allow|Active=TRUE|Dir=In|Profile=Domain|Profile=Private|Profile=Public|"
    "Name=@{Microsoft.Windows.Photos_2024.11120.5010.0_x64__8wekyb3d8bbwe?ms-resource://"
    "Microsoft.Windows.Photos/Resources/AppStoreName}|Desc=@{Microsoft.Windows.Photos_2024}|"
    "PFN=Microsoft.Windows.Photos_8wekyb3d8bbwe|LUOwn=S-1-5-21-3623811015-3361044348-30300820-1013|"
    "AppPkgId=S-1-15-2-1250184893-3458541237-3425373946-1546587446-4019862432-2373373404-2219082366|"
    "EmbedCtxt=@{Microsoft.Windows.Photos_2024}|Platform=2:6:2|Platform2=GTEQ|"
)
USER_RULE_ID = "{5C2B6F2E-7C1D-4E0B-9F55-3A1E2B9D8C41}"


def offline(
    local: dict[str, str] | None = None,
    policy: dict[str, str] | None = None,
    local_profiles: dict[str, ProfileSettings] | None = None,
    policy_profiles: dict[str, ProfileSettings] | None = None,
) -> Firewall:
    firewall, unreadable = firewall_from_policy(
        local or {}, local_profiles or {}, policy or {}, policy_profiles or {}
    )
    assert unreadable == ()
    return firewall


def rule(rule_id: str, text: str) -> FirewallRule:
    parsed = parse_rule(rule_id, text)
    assert isinstance(parsed, FirewallRule), parsed
    return parsed


def unreadable(text: str, rule_id: str = USER_RULE_ID) -> UnreadableRule:
    parsed = parse_rule(rule_id, text)
    assert isinstance(parsed, UnreadableRule), parsed
    return parsed


# --- The live form, for the same policy ----------------------------------------------------------


def live_rule(name: str, **fields: Any) -> dict[str, Any]:
    """A rule as the live probe prints it (display names as the offline form has them)."""
    base = {
        "name": name,
        "display_name": name,
        "group": "",
        "enabled": "True",
        "action": "Allow",
        "profile": "Any",
        "protocol": "TCP",
        "local_port": ["Any"],
        "remote_address": ["Any"],
        "program": "Any",
        "service": "Any",
    }
    return {**base, **fields}


def live(*rules: dict[str, Any]) -> Firewall:
    profiles = [
        {"name": n, "enabled": "True", "default_inbound": "NotConfigured"} for n in ALL_PROFILES
    ]
    return parse_firewall({"profiles": profiles, "active_profiles": [], "rules": list(rules)})


SVCHOST = r"%SystemRoot%\system32\svchost.exe"
PARITY = [
    pytest.param(
        {"RemoteDesktop-UserMode-In-TCP": RDP_TCP, "RemoteDesktop-UserMode-In-UDP": RDP_UDP},
        [
            live_rule(
                "RemoteDesktop-UserMode-In-TCP",
                local_port=["3389"],
                program=SVCHOST,
                service="termservice",
            ),
            live_rule(
                "RemoteDesktop-UserMode-In-UDP",
                protocol="UDP",
                local_port=["3389"],
                program=SVCHOST,
                service="termservice",
            ),
        ],
        id="rdp",
    ),
    pytest.param(
        {"WINRM-HTTP-In-TCP": WINRM, "WINRM-HTTP-In-TCP-PUBLIC": WINRM_PUBLIC},
        [
            live_rule(
                "WINRM-HTTP-In-TCP",
                profile="Domain, Private",
                local_port=["5985"],
                program="System",
            ),
            live_rule(
                "WINRM-HTTP-In-TCP-PUBLIC",
                profile="Public",
                local_port=["5985"],
                remote_address=["LocalSubnet"],
                program="System",
            ),
        ],
        id="winrm",
    ),
    pytest.param(
        {"FPS-SMB-In-TCP": SMB, "FPS-SMB-In-TCP-NoScope": SMB_NO_SCOPE},
        [
            live_rule(
                "FPS-SMB-In-TCP",
                profile="Private, Public",
                local_port=["445"],
                remote_address=["LocalSubnet"],
                program="System",
            ),
            live_rule(
                "FPS-SMB-In-TCP-NoScope", profile="Domain", local_port=["445"], program="System"
            ),
        ],
        id="smb",
    ),
    pytest.param(
        {"WinRM": ALLOW_WINRM_ANYWHERE, USER_RULE_ID: BLOCK_TEN},
        [
            live_rule("WinRM", local_port=["5985"]),
            live_rule(
                USER_RULE_ID,
                display_name="Block the 10/8 network",
                action="Block",
                local_port=["5985", "5986"],
                remote_address=["10.0.0.0/255.0.0.0"],
            ),
        ],
        id="block-by-mask",
    ),
    pytest.param(
        {"ranges": ALLOW_BOTH_RANGES, "forms": ALLOW_SEVERAL_FORMS},
        [
            live_rule(
                "ranges",
                local_port=["5985"],
                remote_address=["10.0.0.0-10.0.255.255", "10.2.0.0-10.2.255.255"],
            ),
            live_rule(
                "forms",
                local_port=["3389"],
                remote_address=[
                    "192.0.2.7",
                    "10.0.0.0/16",
                    "10.2.0.0/255.255.0.0",
                    "2001:db8::/32",
                ],
            ),
        ],
        id="ranges-and-several-addresses",
    ),
    pytest.param(
        {"range": ALLOW_RANGE_OF_PORTS, "keyword": KEYWORD_PORTS["RemoteTask-In-TCP"]},
        [
            live_rule("range", local_port=["5900-6000"]),
            live_rule("keyword", local_port=["RPC"], program=SVCHOST, service="schedule"),
        ],
        id="port-range-and-keyword",
    ),
    pytest.param(
        {"any": ALLOW_ANY_PROTOCOL, "quarantine": BLOCK_ANY_PROTOCOL_TEN},
        [
            live_rule("any", protocol="Any"),
            live_rule(
                "quarantine",
                display_name="Quarantine 10/8",
                action="Block",
                protocol="Any",
                remote_address=["10.0.0.0/255.0.0.0"],
            ),
        ],
        id="any-protocol",
    ),
    pytest.param(
        {"svc": "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|Svc=*|Name=Any service|"},
        [live_rule("svc", display_name="Any service", service="*")],
        id="services-only",
    ),
    pytest.param(
        {"WINRM-HTTP-In-TCP": WINRM_DISABLED},
        [
            live_rule(
                "WINRM-HTTP-In-TCP",
                enabled="False",
                profile="Domain, Private",
                local_port=["5985"],
                program="System",
            )
        ],
        id="disabled",
    ),
]


@pytest.mark.parametrize(("values", "live_rules"), PARITY)
def test_the_same_policy_gets_the_live_forms_verdicts(
    values: dict[str, str], live_rules: list[dict[str, Any]]
) -> None:
    policy, expected = offline(values), live(*live_rules)
    for port in VETTING_PORTS:
        got, want = policy.admits(port), expected.admits(port)
        assert (got.admitted, got.reason) == (want.admitted, want.reason), port


# --- Reading rules as Windows writes them --------------------------------------------------------


def test_the_rdp_rule_reads_into_the_live_model() -> None:
    assert rule("RemoteDesktop-UserMode-In-TCP", RDP_TCP) == FirewallRule(
        name="RemoteDesktop-UserMode-In-TCP",
        display_name="RemoteDesktop-UserMode-In-TCP",  # the Name= resource cannot be loaded
        group="@FirewallAPI.dll,-28752",
        enabled=True,
        action="Allow",
        profiles=ALL_PROFILES,
        protocol="TCP",
        local_ports=("3389",),
        remote_addresses=("Any",),
        program=SVCHOST,
        service="termservice",
    )
    assert offline({"RemoteDesktop-UserMode-In-TCP": RDP_TCP}).admits(3389).admitted


def test_winrm_is_not_admitted_from_the_vetting_ranges_on_public_by_the_stock_rules() -> None:
    firewall = offline({"WINRM-HTTP-In-TCP": WINRM, "WINRM-HTTP-In-TCP-PUBLIC": WINRM_PUBLIC})
    admission = firewall.admits(5985)
    assert not admission.admitted
    assert "cannot judge LocalSubnet" in admission.reason
    assert "Public profile" in admission.reason
    public = rule("WINRM-HTTP-In-TCP-PUBLIC", WINRM_PUBLIC)
    # RA4=LocalSubnet|RA6=LocalSubnet is one keyword, as Get-NetFirewallAddressFilter shows it.
    assert public.remote_addresses == ("LocalSubnet",)
    assert public.profiles == ("Public",)


def test_winrm_on_domain_and_private_only_leaves_public_without_an_allow_rule() -> None:
    admission = offline({"WINRM-HTTP-In-TCP": WINRM}).admits(5985)
    assert not admission.admitted
    assert admission.reason == "no enabled allow rule for TCP 5985 (Public profile)"


def test_smb_is_admitted_on_domain_only() -> None:
    firewall = offline({"FPS-SMB-In-TCP": SMB, "FPS-SMB-In-TCP-NoScope": SMB_NO_SCOPE})
    admission = firewall.admits(445)
    assert not admission.admitted
    assert "(Private profile; cannot judge LocalSubnet)" in admission.reason
    domain_only = offline({"FPS-SMB-In-TCP-NoScope": SMB_NO_SCOPE})
    assert "no enabled allow rule for TCP 445 (Private profile)" in domain_only.admits(445).reason


def test_a_block_rule_in_mask_form_beats_an_allow_rule() -> None:
    firewall = offline({"WinRM": ALLOW_WINRM_ANYWHERE, USER_RULE_ID: BLOCK_TEN})
    admission = firewall.admits(5985)
    assert not admission.admitted
    assert "blocked by Block the 10/8 network" in admission.reason
    assert rule(USER_RULE_ID, BLOCK_TEN).remote_addresses == ("10.0.0.0/255.0.0.0",)
    assert rule(USER_RULE_ID, BLOCK_TEN).local_ports == ("5985", "5986")
    assert offline({"WinRM": ALLOW_WINRM_ANYWHERE}).admits(5985).admitted


def test_address_ranges_and_several_ra4_entries_cover_the_vetting_ranges() -> None:
    assert offline({"r": ALLOW_BOTH_RANGES}).admits(5985).admitted
    forms = rule("forms", ALLOW_SEVERAL_FORMS)
    assert forms.remote_addresses == (
        "192.0.2.7",
        "10.0.0.0/16",
        "10.2.0.0/255.255.0.0",
        "2001:db8::/32",
    )
    assert offline({"forms": ALLOW_SEVERAL_FORMS}).admits(3389).admitted
    only_one = ALLOW_SEVERAL_FORMS.replace("RA4=10.2.0.0/255.255.0.0|", "")
    admission = offline({"forms": only_one}).admits(3389)
    assert not admission.admitted
    assert "not allowed from 10.2.0.0/16" in admission.reason


def test_lport2_10_carries_port_ranges() -> None:
    ranged = rule("range", ALLOW_RANGE_OF_PORTS)
    assert ranged.local_ports == ("5900-6000",)
    firewall = offline({"range": ALLOW_RANGE_OF_PORTS})
    assert firewall.admits(5985).admitted
    assert not firewall.admits(3389).admitted


def test_a_rule_without_protocol_or_ports_matches_everything() -> None:
    everything = rule("any", ALLOW_ANY_PROTOCOL)
    assert (everything.protocol, everything.local_ports) == ("Any", ("Any",))
    assert all(offline({"any": ALLOW_ANY_PROTOCOL}).admits(p).admitted for p in VETTING_PORTS)
    blocked = offline({"any": ALLOW_ANY_PROTOCOL, "q": BLOCK_ANY_PROTOCOL_TEN}).admits(3389)
    assert not blocked.admitted
    assert "blocked by Quarantine 10/8" in blocked.reason


def test_outbound_rules_are_left_out() -> None:
    assert parse_rule("out", BLOCK_OUTBOUND_TEN) is None
    rules = parse_rules({"WinRM": ALLOW_WINRM_ANYWHERE, "out": BLOCK_OUTBOUND_TEN})
    assert [r.name for r in rules.rules] == ["WinRM"]
    assert rules.unreadable == ()
    assert offline({"WinRM": ALLOW_WINRM_ANYWHERE, "out": BLOCK_OUTBOUND_TEN}).admits(5985).admitted


def test_an_inactive_rule_is_kept_but_does_not_admit() -> None:
    disabled = rule("WINRM-HTTP-In-TCP", WINRM_DISABLED)
    assert not disabled.enabled
    assert "disabled" in disabled.describe()
    admission = offline({"WINRM-HTTP-In-TCP": WINRM_DISABLED}).admits(5985)
    assert not admission.admitted
    assert admission.rules == (disabled,)


def test_a_rule_without_active_is_inactive() -> None:
    # [MS-GPFAS] 2.2.2.19: "If the Active= token does not appear … false is assumed."
    assert not rule("r", ALLOW_WINRM_ANYWHERE.replace("Active=TRUE|", "")).enabled


@pytest.mark.parametrize("rule_id", sorted(KEYWORD_PORTS))
def test_keyword_ports_never_match_a_vetting_port(rule_id: str) -> None:
    keyword = rule(rule_id, KEYWORD_PORTS[rule_id])
    assert keyword.local_ports[0] in {"RPC-EPMap", "RPC", "IPHTTPSIn", "Ply2Disc", "Teredo"}
    assert not any(keyword.opens(p) for p in VETTING_PORTS)


def test_a_keyword_port_block_rule_does_not_block_winrm() -> None:
    values = {"WinRM": ALLOW_WINRM_ANYWHERE, "t": KEYWORD_PORTS["Block-Teredo"]}
    assert offline(values).admits(5985).admitted


def test_a_plain_name_is_the_display_name() -> None:
    assert rule(USER_RULE_ID, BLOCK_TEN).display_name == "Block the 10/8 network"
    assert rule(USER_RULE_ID, BLOCK_TEN).name == USER_RULE_ID


def test_keys_and_keywords_are_read_without_regard_to_case() -> None:
    shouted = "v2.33|ACTION=allow|active=true|DIR=in|protocol=6|profile=PUBLIC|lport=5985|"
    parsed = rule("r", shouted)
    assert (parsed.action, parsed.enabled, parsed.profiles) == ("Allow", True, ("Public",))


def test_a_star_address_is_any() -> None:
    star = rule("r", ALLOW_WINRM_ANYWHERE + "RA4=*|")
    assert star.remote_addresses == ("Any",)
    assert offline({"r": ALLOW_WINRM_ANYWHERE + "RA4=*|"}).admits(5985).admitted


def test_keys_newer_than_this_reader_are_ignored() -> None:
    newer = ALLOW_WINRM_ANYWHERE + "TTK2_40=SomethingNew|NNm=b2ZmaWNl|"
    assert rule("r", newer) == rule("r", ALLOW_WINRM_ANYWHERE)


def test_an_icmp_rule_opens_no_tcp_port() -> None:
    ping = rule(
        "FPS-ICMP4-ERQ-In",
        "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=1|ICMP4=8:*|App=System|"
        "Name=@FirewallAPI.dll,-28543|EmbedCtxt=@FirewallAPI.dll,-28502|",
    )
    assert ping.protocol == "ICMPv4"
    assert not any(ping.opens(p) for p in VETTING_PORTS)


def test_the_terminating_nul_of_reg_sz_is_ignored() -> None:
    assert rule("WINRM-HTTP-In-TCP", WINRM + "\x00") == rule("WINRM-HTTP-In-TCP", WINRM)


# --- Rules that admit only authenticated peers ---------------------------------------------------


BYPASS = (
    "v2.33|Action=ByPass|Active=TRUE|Dir=In|Protocol=6|LPort=5985|Security=Authenticate|"
    f"RMauth={AUTH_RMAUTH}|Name=WinRM past the blocks|"
)
AUTHENTICATED = [
    pytest.param(
        "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=5985|Security=Authenticate|"
        "Name=WinRM over IPsec|",
        AUTHENTICATED_ALLOW,
        id="authenticate",
    ),
    pytest.param(
        "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=5985|Security=AuthenticateEncrypt|"
        "Security2=AnE-Nego|Name=WinRM over IPsec|",
        AUTHENTICATED_ALLOW,
        id="authenticate-encrypt",
    ),
    pytest.param(
        "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=5985|Security=Authenticate|"
        f"RMauth={AUTH_RMAUTH}|Name=WinRM from one machine|",
        AUTHENTICATED_ALLOW,
        id="remote-machines",
    ),
    pytest.param(
        f"v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=5985|RUAuth={AUTH_RMAUTH}|"
        "Name=WinRM for one user|",
        AUTHENTICATED_ALLOW,
        id="remote-users",
    ),
    pytest.param(BYPASS, AUTHENTICATED_BYPASS, id="bypass"),
]


@pytest.mark.parametrize(("text", "action"), AUTHENTICATED)
def test_an_authenticated_allow_rule_is_kept_but_does_not_admit_the_vetting_ranges(
    text: str, action: str
) -> None:
    authenticated = rule(USER_RULE_ID, text)
    assert authenticated.action == action
    assert "IPsec-authenticated peers only" in authenticated.describe()
    admission = offline({USER_RULE_ID: text}).admits(5985)
    assert not admission.admitted
    assert admission.reason == "no enabled allow rule for TCP 5985 (Domain profile)"
    assert admission.rules == (authenticated,)


def test_an_authenticated_rule_neither_blocks_nor_spoils_a_plain_allow_rule() -> None:
    values = {USER_RULE_ID: BYPASS, "WinRM": ALLOW_WINRM_ANYWHERE}
    assert offline(values).admits(5985).admitted


def test_a_block_rule_with_security_still_blocks() -> None:
    text = BLOCK_TEN.replace("Name=", "Security=Authenticate|Name=")
    assert rule(USER_RULE_ID, text).action == "Block"
    assert not offline({USER_RULE_ID: text, "WinRM": ALLOW_WINRM_ANYWHERE}).admits(5985).admitted


def test_an_app_container_rule_does_not_open_every_port() -> None:
    photos = rule("{A1B2}", APP_CONTAINER)
    assert photos.program.startswith("AppPkgId=S-1-15-2-")
    assert not offline({"{A1B2}": APP_CONTAINER}).admits(5985).admitted
    # The same condition on a block rule is ignored, so the block reads as wide as it can be.
    block = APP_CONTAINER.replace("Action=Allow", "Action=Block") + "RA4=10.0.0.0/255.0.0.0|"
    assert rule("{B}", block).program == "Any"
    assert not offline({"{B}": block, "WinRM": ALLOW_WINRM_ANYWHERE}).admits(5985).admitted


# --- Profiles and Group Policy -------------------------------------------------------------------


def test_absent_profile_values_mean_on_and_blocking() -> None:
    firewall, unreadable_rules = firewall_from_policy({}, {}, {}, {})
    assert unreadable_rules == ()
    assert firewall.active_profiles == ()
    assert [(p.name, p.enabled, p.default_inbound) for p in firewall.profiles] == [
        (name, True, "NotConfigured") for name in ALL_PROFILES
    ]
    assert firewall.admits(5985).reason == "no enabled allow rule for TCP 5985 (Domain profile)"


@pytest.mark.parametrize(
    ("dword", "shown"), [(0, "Allow"), (1, "Block"), (7, "Block"), (None, "NotConfigured")]
)
def test_default_inbound_action(dword: int | None, shown: str) -> None:
    settings = dict.fromkeys(ALL_PROFILES, ProfileSettings(default_inbound_action=dword))
    firewall = offline(local_profiles=settings)
    assert {p.default_inbound for p in firewall.profiles} == {shown}
    assert firewall.admits(5985).admitted is (shown == "Allow")


def test_a_local_profile_that_is_off_admits() -> None:
    settings = dict.fromkeys(ALL_PROFILES, ProfileSettings(enable_firewall=0))
    admission = offline(local_profiles=settings).admits(5985)
    assert admission.admitted
    assert "firewall profile is off" in admission.reason


def test_group_policy_values_override_local_ones() -> None:
    local = dict.fromkeys(
        ALL_PROFILES, ProfileSettings(enable_firewall=0, default_inbound_action=0)
    )
    on = dict.fromkeys(ALL_PROFILES, ProfileSettings(enable_firewall=1))
    firewall = offline(local_profiles=local, policy_profiles=on)
    assert all(p.enabled for p in firewall.profiles)
    # DefaultInboundAction is absent from the policy, so the local Allow stays.
    assert {p.default_inbound for p in firewall.profiles} == {"Allow"}
    blocking = dict.fromkeys(
        ALL_PROFILES, ProfileSettings(enable_firewall=1, default_inbound_action=1)
    )
    firewall = offline(local_profiles=local, policy_profiles=blocking)
    assert not firewall.admits(5985).admitted


def test_the_legacy_standard_policy_profile_stands_for_private_and_public() -> None:
    off = ProfileSettings(enable_firewall=0)
    firewall = offline(policy_profiles={"Standard": off})
    assert [p.enabled for p in firewall.profiles] == [True, False, False]
    # Once a PrivateProfile key exists, StandardProfile no longer applies.
    firewall = offline(policy_profiles={"Standard": off, "Private": ProfileSettings()})
    assert [p.enabled for p in firewall.profiles] == [True, True, True]


def test_group_policy_rules_add_to_local_rules() -> None:
    firewall = offline(local={"WINRM-HTTP-In-TCP": WINRM}, policy={"gpo-public": WINRM_PUBLIC})
    assert {r.profiles for r in firewall.rules} == {("Domain", "Private"), ("Public",)}
    assert "cannot judge LocalSubnet" in firewall.admits(5985).reason
    assert offline(policy={"WinRM": ALLOW_WINRM_ANYWHERE}).admits(5985).admitted


def test_a_group_policy_block_beats_a_local_allow() -> None:
    firewall = offline(local={"WinRM": ALLOW_WINRM_ANYWHERE}, policy={USER_RULE_ID: BLOCK_TEN})
    assert not firewall.admits(5985).admitted


def test_group_policy_can_shut_out_local_rules_for_one_profile() -> None:
    closed = {"Public": ProfileSettings(allow_local_policy_merge=0)}
    firewall = offline(local={"WinRM": ALLOW_WINRM_ANYWHERE}, policy_profiles=closed)
    assert [r.profiles for r in firewall.rules] == [("Domain", "Private")]
    assert firewall.admits(5985).reason == "no enabled allow rule for TCP 5985 (Public profile)"
    # A local block rule is shut out too; Group Policy's own rules still apply there.
    firewall = offline(
        local={USER_RULE_ID: BLOCK_TEN},
        policy={"WinRM": ALLOW_WINRM_ANYWHERE},
        policy_profiles=dict.fromkeys(ALL_PROFILES, ProfileSettings(allow_local_policy_merge=0)),
    )
    assert [r.name for r in firewall.rules] == ["WinRM"]
    assert firewall.admits(5985).admitted


def test_unreadable_rules_say_which_store_and_whether_they_may_block() -> None:
    broken_block = BLOCK_TEN.replace("LPort=5985", "LPort=59 85")
    _, found = firewall_from_policy({"a": broken_block}, {}, {"b": broken_block}, {})
    assert [(u.rule_id, u.store, u.may_block) for u in found] == [
        ("a", "local", True),
        ("b", "Group Policy", True),
    ]
    assert found[0].describe().startswith("local rule 'a': the local port '59 85'")
    assert "may be an inbound block rule" in found[0].describe()
    # A local rule that Group Policy shuts out of every profile cannot block.
    shut = dict.fromkeys(ALL_PROFILES, ProfileSettings(allow_local_policy_merge=0))
    _, found = firewall_from_policy({"a": broken_block}, {}, {}, shut)
    assert [u.may_block for u in found] == [False]


def test_a_malformed_block_rule_is_never_silently_dropped() -> None:
    """The block goes missing from the rules, so the caller must see it among the unreadable."""
    broken_block = BLOCK_TEN.replace("Protocol=6", "Protocol=TCP")
    firewall, found = firewall_from_policy(
        {"WinRM": ALLOW_WINRM_ANYWHERE, USER_RULE_ID: broken_block}, {}, {}, {}
    )
    assert firewall.admits(5985).admitted  # what the readable rules alone say…
    assert [(u.rule_id, u.may_block) for u in found] == [(USER_RULE_ID, True)]  # …is unsure
    assert parse_rules({USER_RULE_ID: broken_block}).may_block


# --- Hostile data --------------------------------------------------------------------------------


MAY_BLOCK = [
    pytest.param("Action=Block|Dir=In|Protocol=6|LPort=5985|", id="no-version"),
    pytest.param("BlockCortana|Action=Block|Active=TRUE|Dir=In|", id="name-for-version"),
    pytest.param("v2.33|Action=Block|Active=TRUE|Dir=In|Protocol=TCP|", id="protocol-name"),
    pytest.param("v2.33|Action=Block|Active=TRUE|Dir=In|Protocol=300|", id="protocol-too-big"),
    pytest.param("v2.33|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=70000|", id="port-big"),
    pytest.param(
        "v2.33|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=6-5|", id="port-range-back"
    ),
    pytest.param(
        "v2.33|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=٥٩٨٥|", id="arabic-digits"
    ),
    pytest.param(
        "v2.33|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=59\x1b[2J85|", id="escape-in-port"
    ),
    pytest.param("v2.33|Action=Block|Active=TRUE|Dir=In|LPort=5985|", id="port-without-protocol"),
    pytest.param("v2.33|Action=Block|Active=TRUE|Dir=In|RA4=10.0.0.0/33|", id="prefix-too-long"),
    pytest.param(
        "v2.33|Action=Block|Active=TRUE|Dir=In|RA4=10.0.0.0/0.255.255.255|", id="hostmask"
    ),
    pytest.param("v2.33|Action=Block|Active=TRUE|Dir=In|RA4=10.0.0.9-10.0.0.1|", id="range-back"),
    pytest.param("v2.33|Action=Block|Active=TRUE|Dir=In|RA4=10.0.0.1-fe80::1|", id="range-mixed"),
    pytest.param("v2.33|Action=Block|Active=TRUE|Dir=In|RA4=Any|", id="any-is-not-a-keyword"),
    pytest.param("v2.33|Action=Block|Active=TRUE|Dir=In|RA4=Everywhere|", id="unknown-keyword"),
    pytest.param("v2.33|Action=Block|Action=Allow|Active=TRUE|Dir=In|", id="two-actions"),
    pytest.param("v2.33|Action=Deny|Active=TRUE|Dir=In|", id="unknown-action"),
    pytest.param("v2.33|Active=TRUE|Dir=In|Protocol=6|LPort=5985|", id="no-action"),
    pytest.param("v2.33|Action=Block|Active=TRUE|Dir=Sideways|", id="unknown-direction"),
    pytest.param("v2.33|Action=Block|Active=TRUE|Dir=In|Dir=Out|", id="two-directions"),
    pytest.param("v2.33|Action=Block|Active=TRUE|Protocol=6|", id="no-direction"),
    pytest.param("v2.33|Action=Block|Active=maybe|Dir=In|", id="unknown-active"),
    pytest.param("v2.33|Action=Block|Active=TRUE|Dir=In|Profile=Office|", id="unknown-profile"),
    pytest.param("v2.33|Action=Block|Active=TRUE|Dir=In|Protocol=6|junk|", id="field-without-="),
    pytest.param("v2.33|Action=Block|Active=TRUE|Dir=In|App=|", id="empty-program"),
    pytest.param("v2.33|Action=Block |Active=TRUE|Dir=In|", id="padded-action"),
]


@pytest.mark.parametrize("text", MAY_BLOCK)
def test_a_malformed_rule_that_may_block_is_reported_as_such(text: str) -> None:
    found = unreadable(text)
    assert found.may_block
    assert found.reason


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("|||", id="bars"),
        pytest.param("v2.33", id="version-only"),
        pytest.param("v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=TCP|", id="allow"),
        pytest.param("v2.33|Action=ByPass|Active=TRUE|Dir=In|Protocol=-1|", id="bypass"),
        pytest.param("v2.33|Action=Block|Active=FALSE|Dir=In|Protocol=TCP|", id="inactive"),
    ],
)
def test_a_malformed_rule_that_cannot_block_is_reported_but_harmless(text: str) -> None:
    assert not unreadable(text).may_block


def test_a_malformed_rule_that_plainly_says_outbound_is_left_out() -> None:
    assert parse_rule("cortana", "BlockCortana|Action=Block|Active=TRUE|Dir=Out|") is None
    assert parse_rule("r", "v2.33|Action=Block|Dir=Out|Protocol=TCP|") is None


def test_control_characters_in_names_are_kept_for_the_display_layer_and_escaped_in_reasons() -> (
    None
):
    named = rule("\x1b]0;owned\x07", "v2.33|Action=Allow|Active=TRUE|Dir=In|Name=\x1b[31mred|")
    assert named.display_name == "\x1b[31mred"  # scanner.terminal.inert cleans it when printed
    broken = unreadable("v2.33|Action=Block|Dir=In|Protocol=\x1b[2J|", rule_id="\x1b[2J\x00id")
    assert "\x1b" not in broken.describe()
    assert "\x00" not in broken.describe()


def test_a_huge_value_is_unreadable_without_being_parsed() -> None:
    huge = "v2.33|Action=Block|Active=TRUE|Dir=In|Name=" + "x" * (2 * MAX_RULE_CHARS) + "|"
    found = unreadable(huge, rule_id="y" * 100_000)
    assert found.may_block
    assert "characters long" in found.reason
    assert len(found.describe()) < 400


def test_a_long_but_plausible_address_list_is_read() -> None:
    entries = "".join(f"RA4=198.18.{i // 256}.{i % 256}|" for i in range(20_000))
    text = "v2.33|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=5985|" + entries
    assert len(text) < MAX_RULE_CHARS
    assert len(rule("blocklist", text).remote_addresses) == 20_000
    firewall = offline({"blocklist": text, "WinRM": ALLOW_WINRM_ANYWHERE})
    assert firewall.admits(5985).admitted  # 198.18.0.0/15 is not a vetting range


def test_a_value_that_is_not_text_is_unreadable() -> None:
    values: dict[str, Any] = {"dword": 1, "binary": b"v2.33|Action=Block|"}
    found = parse_rules(values).unreadable
    assert [(u.rule_id, u.may_block) for u in found] == [("dword", True), ("binary", True)]


# Whatever the mutation, a rule is never lost quietly: an unreadable rule that claims it cannot
# block must plainly say Allow/ByPass or inactive, or carry no field at all.
_PLAINLY_HARMLESS = re.compile(r"(?i)\baction\s*=\s*(allow|bypass)\s*(\||$)|\bactive\s*=\s*false")
_ALPHABET = "|=-/.:*,@ \x00\x1b\t0123456789vVTRUEFALSEAllowBlockDirInOutRA4LPort"


def _mutated(text: str, rng: random.Random) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 6)):
        where = rng.randrange(len(chars) + 1)
        kind = rng.random()
        if kind < 0.4 and chars:
            del chars[min(where, len(chars) - 1)]
        elif kind < 0.8:
            chars.insert(where, rng.choice(_ALPHABET))
        else:
            chars[where:where] = list(rng.choice(list(KEYWORD_PORTS.values()))[:20])
    return "".join(chars)


def test_mutated_rules_never_raise_and_never_quietly_lose_a_block() -> None:
    rng = random.Random(20240423)
    seeds = [RDP_TCP, WINRM, WINRM_PUBLIC, SMB, BLOCK_TEN, BLOCK_ANY_PROTOCOL_TEN, APP_CONTAINER]
    for _ in range(3000):
        text = _mutated(rng.choice(seeds), rng)
        parsed = parse_rule("fuzz", text)
        assert parsed is None or isinstance(parsed, FirewallRule | UnreadableRule), text
        if isinstance(parsed, UnreadableRule) and not parsed.may_block:
            assert "=" not in text or _PLAINLY_HARMLESS.search(text), text
        if isinstance(parsed, FirewallRule):
            for port in VETTING_PORTS:
                parsed.opens(port)  # what admits() calls must not raise either
