"""Selection that lands on the target: a routing candidate mixed with the reference at a
hashed share (``routing.share``), on synthetic sets whose signal is known."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from thrifty.cli.demo import split_halves
from thrifty.cli.main import main
from thrifty.config import parse_config
from thrifty.recordings.dataset import RecordedAnswer, ReplayRecord, write_dataset
from thrifty.registry import ModelRegistry
from thrifty.replay.search import deep_merge
from thrifty.replay.simulator import replay, without_techniques
from thrifty.replay.summary import comparable, totals
from thrifty.replay.tuner import (
    MARGIN_Z,
    SHARE_STEP,
    mixed,
    retained_se,
    safe_share,
    shares_to,
    tune,
)
from thrifty.routing.build import build_routing
from thrifty.routing.policy import share_hash
from thrifty.routing.text import prompt_text

TARGET = 0.95
WORDS = ("apple", "river", "stone", "cloud", "maple", "violet", "copper", "harbor", "lantern")


def _raw(**routing: Any) -> dict[str, Any]:
    return {
        "providers": {"rec": {"base_url": "http://127.0.0.1:9/v1"}},
        "models": {
            "big": {"provider": "rec", "price": {"input": 10.0, "output": 30.0}},
            "small": {"provider": "rec", "price": {"input": 0.5, "output": 1.5}},
        },
        "default_model": "big",
        "baseline_model": "big",
        "routing": {"enabled": True, "strategy": "tradeoff", "prior": "none",
                    "use_tags": False, **routing},
    }  # fmt: skip


def synthetic(n: int, signal: bool, seed: int = 3) -> list[ReplayRecord]:
    """``n`` prompts; the small model is right on 70% of them. With ``signal`` it is right
    exactly on the prompts that say "easy" (a word the predictor can learn); without, on a
    random 70% (nothing in the prompt tells)."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        easy = rng.random() < 0.7
        words = " ".join(rng.choice(WORDS) for _ in range(6))
        prompt = f"question {i}: {'easy' if easy and signal else 'tell me'} {words}"
        small_right = easy if signal else rng.random() < 0.7
        answer = "an answer " * rng.randint(20, 60)
        records.append(
            ReplayRecord(
                id=f"r{i}",
                messages=({"role": "user", "content": prompt},),
                params={},
                tags={},
                answers={
                    "big": RecordedAnswer(text=answer, quality=1.0),
                    "small": RecordedAnswer(text=answer, quality=float(small_right)),
                },
            )
        )
    return records


def held_out(records: list[ReplayRecord], tmp_path: Path) -> tuple[float, float, float]:
    """Tune on half A, replay half B: B's quality retained and savings (% of always-big's
    cost), and random routing's savings at that quality."""
    tune_half, test_half = split_halves(records)
    result = tune(tune_half, _raw(), TARGET, folds=3, workdir=tmp_path)
    config = parse_config(_raw(**result.chosen.candidate.patch["routing"]))
    baseline = replay(test_half, without_techniques(config, "big"))
    rows = comparable(baseline, baseline)
    base = totals(baseline, baseline, rows)["actual_cost"]
    routed = totals(replay(test_half, config), baseline, rows)
    small = totals(replay(test_half, without_techniques(config, "small")), baseline, rows)
    quality = routed["quality_retained"]
    share = (1 - quality) / (1 - small["quality_retained"])  # random mix at that quality
    random_savings = 100 * share * (1 - small["actual_cost"] / base)
    return quality, 100 * (1 - routed["actual_cost"] / base), random_savings


def test_safe_share_keeps_the_target_with_its_margin() -> None:
    for retained, se in [(0.7, 0.03), (0.9, 0.01), (0.96, 0.004), (0.5, 0.0)]:
        share = safe_share(retained, se, TARGET)
        assert 1 - share * (1 - retained) - MARGIN_Z * share * se >= TARGET
        if share < 1:  # one step more would break it
            more = share + SHARE_STEP
            assert 1 - more * (1 - retained) - MARGIN_Z * more * se < TARGET
    assert safe_share(0.99, 0.005, TARGET) == 1.0


def test_router_sends_requests_outside_the_share_to_the_reference(tmp_path: Path) -> None:
    records = synthetic(60, signal=True)
    result = tune(records, _raw(), TARGET, folds=2, workdir=tmp_path)
    patch = dict(result.chosen.candidate.patch["routing"])
    patch.update({"tradeoff_lambda": 1e9, "share": 0.4})  # always small, within the share
    config = parse_config(_raw(**patch))
    router = build_routing(config.routing, ModelRegistry.from_config(config), "big").router
    for record in records:
        picked = router.decide({"messages": list(record.messages)}).model
        inside = share_hash(prompt_text(record.messages)) < 0.4
        assert picked == ("small" if inside else "big")


def test_no_signal_lands_near_the_target_at_random_routings_savings(tmp_path: Path) -> None:
    records = synthetic(800, signal=False)
    quality, savings, random_savings = held_out(records, tmp_path)
    # B's own sampling noise: routing a share s of it to the small model retains
    # 1 − s·(1 − q_small) with a standard error of about √s · SE(always small)
    _, test_half = split_halves(records)
    config = parse_config(_raw(prior="shipped"))
    baseline = replay(test_half, without_techniques(config, "big"))
    rows = comparable(baseline, baseline)
    small = replay(test_half, without_techniques(config, "small"))
    share = (1 - TARGET) / (1 - totals(small, baseline, rows)["quality_retained"])
    assert abs(quality - TARGET) <= 3 * share**0.5 * retained_se(small, baseline, rows)
    assert savings > 0.5 * random_savings > 0


def test_a_known_signal_beats_random_routing_at_equal_quality(tmp_path: Path) -> None:
    quality, savings, random_savings = held_out(synthetic(400, signal=True), tmp_path)
    assert quality >= TARGET
    assert savings > 2 * random_savings > 0


@pytest.mark.slow
def test_a_tuned_mix_round_trips_through_the_written_config(tmp_path: Path) -> None:
    dataset = tmp_path / "synthetic.jsonl"
    write_dataset(synthetic(300, signal=False), dataset)
    raw_path = tmp_path / "config.yaml"
    raw_path.write_text(yaml.safe_dump(_raw()))
    out = tmp_path / "tuned.yaml"
    code = main(["tune", "--dataset", str(dataset), "--config", str(raw_path), "--out", str(out),
                 "--folds", "2", "--json"])  # fmt: skip
    assert code == 0
    tuned = yaml.safe_load(out.read_text())
    assert 0 < tuned["routing"]["share"] < 1  # no signal: a mix with the reference
    config = parse_config(tuned, base_dir=tmp_path)
    assert config.routing.share == tuned["routing"]["share"]
    routed = replay(synthetic(300, signal=False), config)
    inside = [share_hash(prompt_text(r.messages)) < config.routing.share
              for r in synthetic(300, signal=False)]  # fmt: skip
    assert all(o.upstream_model == "big" for o, i in zip(routed, inside, strict=True) if not i)


def test_a_cascade_behind_the_router_is_mixed_at_a_share_as_it_replays(tmp_path: Path) -> None:
    """Routing into a cascade may be taken at a share too: the tuner's estimate of the mix
    (the candidate's rows inside the share, the reference's outside) is what the written
    config replays, row by row."""
    records = synthetic(200, signal=False)
    tiers = [{"model": "small", "checks": ["heuristics"]}, {"model": "big"}]
    raw = {**_raw(), "cascade": {"enabled": True, "tiers": tiers}}
    result = tune(records, raw, TARGET, folds=2, workdir=tmp_path)
    chosen = result.chosen
    assert chosen.config is not None and chosen.config.cascade.enabled
    share = chosen.config.routing.share
    assert 0 < share < 1  # no signal: the cascade's candidate mixed with the reference
    label = chosen.candidate.label.rsplit(", share", 1)[0]
    whole = next(e for e in result.evaluated if e.candidate.label == label)
    hashes = [share_hash(prompt_text(r.messages)) for r in records]
    expected = mixed(whole.outcomes, result.baseline, hashes, share)

    def seen(outcomes: list[Any]) -> list[tuple[Any, ...]]:
        return [(o.model, o.quality, round(o.cost, 12)) for o in outcomes]

    written = parse_config(deep_merge(raw, chosen.candidate.patch))  # replayed afresh
    assert seen(replay(records, written)) == seen(expected)
    assert any("cascade" in o.techniques for o in chosen.outcomes)


def test_a_candidate_with_a_share_already_is_not_mixed_again(tmp_path: Path) -> None:
    """Mixing by the same hash again changes nothing, though the mix's formula would say
    it does: the configured share 0.5 must not come back as "as configured, share 0.8"."""
    records = synthetic(120, signal=False)
    raw = _raw(prior="shipped", share=0.5, tradeoff_lambda=1e9)  # valid before any tune
    result = tune(records, raw, TARGET, folds=2, workdir=tmp_path)
    configured = next(e for e in result.evaluated if e.candidate.label == "as configured")
    assert configured.config is not None and configured.config.routing.share == 0.5
    assert not configured.mixable
    unmixed = [e for e in result.evaluated if e.config and e.config.routing.share == 1]
    assert unmixed and all(e.mixable for e in unmixed)  # the search starts every one at 1
    assert not result.chosen.candidate.label.startswith("as configured, share")


def _config(**changes: Any) -> Any:
    raw = _raw(prior="shipped")  # valid before any tune
    raw["models"]["huge"] = {"provider": "rec", "price": {"input": 30.0, "output": 60.0}}
    for section, values in changes.items():
        raw[section] = {**raw.get(section, {}), **values}
    return parse_config(raw)


def _cascade(*models: str) -> dict[str, Any]:
    tiers = [{"model": m, "checks": ["heuristics"]} for m in models[:-1]] + [{"model": models[-1]}]
    return {"enabled": True, "tiers": tiers}


@pytest.mark.parametrize(
    ("changes", "mixes"),
    [
        ({}, True),
        ({"cascade": _cascade("small", "big")}, True),  # the reference is the last tier
        ({"cascade": _cascade("small", "huge")}, True),  # not a tier: no cascade from it
        ({"routing": {"share": 0.5}}, False),  # mixed already
        ({"routing": {"candidates": ["small", "huge"]}}, False),  # cannot pick the reference
        ({"routing": {"reference_model": "huge"}}, False),  # the rest would go to huge
        ({"cascade": _cascade("small", "big", "huge")}, False),  # big climbs on to huge
        ({"routing": {"enabled": False}}, False),
    ],
)
def test_a_share_mixes_only_where_the_rest_gets_the_baselines_answer(
    changes: dict[str, Any], mixes: bool
) -> None:
    assert shares_to(_config(**changes), "big") is mixes


def test_no_mix_when_the_router_cannot_send_anything_to_the_reference(tmp_path: Path) -> None:
    """``routing.candidates`` without the reference: a share would route nothing back to
    it, so no candidate is mixed and the estimate is what the written config does."""
    raw = _raw(candidates=["small"])
    result = tune(synthetic(120, signal=False), raw, TARGET, folds=2, workdir=tmp_path)
    assert not any(e.mixable for e in result.evaluated)
    assert result.chosen.config is not None and result.chosen.config.routing.share == 1
