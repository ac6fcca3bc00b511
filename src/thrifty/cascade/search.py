"""What ``thrifty tune`` searches for cascades: fit the verifier (if a tier uses it) on
the training rows, then try a grid of acceptance thresholds for the checked tiers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from thrifty.recordings.candidates import Candidate
from thrifty.recordings.dataset import ReplayRecord

#: Acceptance thresholds tried, every 0.05: a calibrated verifier's scores sit mostly in
#: 0.15-0.6 (p10-p90 on arena), so a 0.1 grid from 0.3 left two or three usable points.
THRESHOLDS = tuple(round(0.1 + 0.05 * i, 2) for i in range(18))  # 0.10 ... 0.95


def _uses_verifier(tiers: Sequence[Mapping[str, Any]]) -> bool:
    for tier in tiers:
        for spec in tier.get("checks") or ():
            if spec == "verifier" or (isinstance(spec, Mapping) and spec.get("name") == "verifier"):
                return True
    return False


def cascade_space(
    section: Mapping[str, Any],
    train: Sequence[ReplayRecord],
    workdir: Path,
    progress: Callable[[str], None] | None = None,
) -> list[Candidate]:
    """Candidates for the raw ``cascade:`` section (none with fewer than two tiers).

    When a tier checks with the verifier and the training answers cannot teach one (no
    answer texts, or all one label), the space is one candidate, the cascade off, and
    ``progress`` says why.
    """
    tiers = [dict(t) for t in section.get("tiers") or ()]
    if len(tiers) < 2:
        return []
    fitted: dict[str, Any] = {}
    if _uses_verifier(tiers):
        from thrifty.cascade.verifier import AnswerVerifier, NotEnoughExamples

        checked = [t["model"] for t in tiers[:-1]]
        try:
            verifier = AnswerVerifier.fit(train, checked, reference_model=tiers[-1]["model"])
        except NotEnoughExamples as exc:
            if progress is not None:
                progress(f"cascade skipped: {exc}")
            return [Candidate("cascade off (no verifier)", {"cascade": {"enabled": False}})]
        fitted["verifier"] = str(verifier.save(workdir / "verifier.npz"))
    return [
        Candidate(
            f"cascade ≥{t:.2f}",
            {
                "cascade": {
                    **fitted,
                    "tiers": [{**tier, "threshold": t} for tier in tiers[:-1]] + tiers[-1:],
                }
            },
        )
        for t in THRESHOLDS
    ]
