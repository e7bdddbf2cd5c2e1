"""Pending Windows updates, as the Windows Update Agent's own search finds them.

The search runs against Microsoft Update/WSUS as the guest is configured. An instance without a
route to an update service cannot answer, which is `skip` with the reason, never `pass`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scanner.facts.base import FactFailed, Gathered
from scanner.facts.windows.common import as_list, as_text, probe_json, windows_fact

_PROBE = r"""
$session = New-Object -ComObject Microsoft.Update.Session
$session.ClientApplicationID = 'amiscan'
$searcher = $session.CreateUpdateSearcher()
try {
    $result = $searcher.Search("IsInstalled=0 and Type='Software' and IsHidden=0")
} catch {
    $inner = $_.Exception
    while ($inner.InnerException) { $inner = $inner.InnerException }
    ConvertTo-Json -Compress -InputObject ([ordered]@{ error = [string]$inner.Message; hresult = ('0x{0:X8}' -f $inner.HResult) })
    return
}
$updates = @(foreach ($update in $result.Updates) {
    [ordered]@{
        title = [string]$update.Title
        kb = @($update.KBArticleIDs | ForEach-Object { [string]$_ })
        severity = [string]$update.MsrcSeverity
        categories = @($update.Categories | ForEach-Object { [string]$_.Name })
    }
})
ConvertTo-Json -Compress -Depth 4 -InputObject ([ordered]@{ result_code = [int]$result.ResultCode; updates = $updates })
"""

# HRESULTs of the Windows Update Agent that mean "no route to an update service".
_OFFLINE_CODES = {
    "0x8024402C": "the update service's name could not be resolved",
    "0x80072EE7": "the update service's name could not be resolved",
    "0x80072EFD": "no connection to the update service could be made",
    "0x80072EE2": "the connection to the update service timed out",
    "0x8024401C": "the update service did not answer in time",
    "0x80244022": "the update service is unavailable (HTTP 503)",
    "0x8024402F": "external content could not be fetched (no internet?)",
}
BLOCKING_SEVERITIES = frozenset({"critical", "important"})


@dataclass(frozen=True)
class PendingUpdate:
    """An update the Windows Update Agent found not installed."""

    title: str
    kbs: tuple[str, ...]
    severity: str
    categories: tuple[str, ...]

    @property
    def blocking(self) -> bool:
        """Rated Critical or Important by the MSRC: a known, fixed vulnerability."""
        return self.severity.lower() in BLOCKING_SEVERITIES

    def describe(self) -> str:
        kbs = ", ".join(f"KB{kb}" for kb in self.kbs)
        rating = self.severity or "no MSRC rating"
        return f"{self.title} [{rating}]" + (f" ({kbs})" if kbs and "KB" not in self.title else "")


def parse_updates(document: Any) -> tuple[PendingUpdate, ...]:
    """The Windows Update probe's JSON; FactFailed (could not judge) when it could not search."""
    if not isinstance(document, dict):
        raise FactFailed("the Windows Update probe printed no result")
    if document.get("error") is not None:
        code = as_text(document.get("hresult")).upper().replace("0X", "0x")
        message = as_text(document.get("error")).strip()
        if code in _OFFLINE_CODES:
            raise FactFailed(
                f"Windows Update could not be searched: {_OFFLINE_CODES[code]} ({code})"
            )
        raise FactFailed(f"the Windows Update search failed ({code}): {message}")
    return tuple(
        PendingUpdate(
            title=as_text(u.get("title")),
            kbs=tuple(as_text(k) for k in as_list(u.get("kb"))),
            severity=as_text(u.get("severity")),
            categories=tuple(as_text(c) for c in as_list(u.get("categories"))),
        )
        for u in as_list(document.get("updates"))
        if isinstance(u, dict)
    )


def _derive(g: Gathered) -> tuple[PendingUpdate, ...]:
    output = g.require_output()
    if output.timed_out:
        raise FactFailed("the Windows Update search did not finish in time")
    return parse_updates(probe_json(g, "searching Windows Update"))


PENDING_UPDATES = windows_fact(
    "windows.updates.pending",
    "pending Windows updates (Windows Update Agent search)",
    _PROBE,
    _derive,
    timeout_s=300,
)
