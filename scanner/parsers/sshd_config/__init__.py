"""An OpenSSH-faithful reading of sshd_config, for judging an image offline.

The effective configuration is computed the way sshd (OpenSSH 9.x portable) computes it, reading
`servconf.c` as the reference:

* Start-up pass (`parse_server_config` without connection info): lines outside Match blocks, and
  lines after a `Match all`, set the global options; for most keywords the first value wins.
  Every line is also checked for syntax, which is where `problems` come from.
* Connection pass (`parse_server_match_config`): the files are read again from the top with no
  line active until a Match block matches the connection; the options set there (first value wins
  among them) replace the global ones (`copy_set_server_options`). This is what `sshd -T -C ...`
  prints, and what `SshdConfig.effective` returns.
* Include: globbed, sorted, relative to /etc/ssh; an include inside a Match block is conditional on
  that block, and whatever Match state the included file ends in is discarded afterwards.
* Compiled-in defaults fill whatever is still unset (`fill_default_server_options`).

Values are reported in the form `sshd -T` prints them, with one deliberate exception: sshd prints
PermitRootLogin prohibit-password as its older spelling "without-password"; both this parser and
`parse_sshd_t` report "prohibit-password" so checks compare one spelling.

Modules, bottom up: `model` (public types), `tokens` (splitting lines), `patterns` (Match
patterns and address lists), `keywords` (the keyword table and value parsers), `defaults`,
`accounts` (the image's users and groups), `reader` (walking the files: Include, Match, merging),
`config` (SshdConfig, EffectiveConfig, parse_sshd_config), `sshd_t` (parse_sshd_t) and `vetting`
(the scanner addresses worth asking about).
"""

from scanner.parsers.sshd_config.accounts import user_groups
from scanner.parsers.sshd_config.config import EffectiveConfig, SshdConfig, parse_sshd_config
from scanner.parsers.sshd_config.model import ConfigTooLarge, ConnectionInfo, Setting, Severity
from scanner.parsers.sshd_config.patterns import addr_match_list, match_pattern_list
from scanner.parsers.sshd_config.sshd_t import parse_sshd_t
from scanner.parsers.sshd_config.vetting import vetting_addresses

__all__ = [
    "ConfigTooLarge",
    "ConnectionInfo",
    "EffectiveConfig",
    "Setting",
    "Severity",
    "SshdConfig",
    "addr_match_list",
    "match_pattern_list",
    "parse_sshd_config",
    "parse_sshd_t",
    "user_groups",
    "vetting_addresses",
]
