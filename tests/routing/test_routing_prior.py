"""The shipped routing prior: models it never saw are predicted by their price tier, and a
config tuned from it round-trips through `thrifty tune`, the file and the router."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from thrifty.config import load_config, parse_config
from thrifty.recordings.dataset import RecordedAnswer, ReplayRecord, write_dataset
from thrifty.registry import ModelRegistry
from thrifty.routing.build import build_routing
from thrifty.routing.predictor import QualityPredictor
from thrifty.routing.prior import SHIPPED, TIERS, tier_of

# Names no public set has: the prior can only know them by price.
MODELS = {
    "acme-large": {"input": 10.0, "output": 30.0},
    "acme-mid": {"input": 1.0, "output": 3.0},
    "acme-tiny": {"input": 0.1, "output": 0.1},
}


def _raw(**routing: Any) -> dict[str, Any]:
    return {
        "providers": {"p": {"base_url": "http://127.0.0.1:9/v1"}},
        "models": {name: {"provider": "p", "price": price} for name, price in MODELS.items()},
        "default_model": "acme-large",
        "baseline_model": "acme-large",
        "routing": {"enabled": True, **routing},
    }


def test_a_model_the_prior_never_saw_is_routed_by_its_tier() -> None:
    config = parse_config(_raw(strategy="threshold", threshold=0.5))
    registry = ModelRegistry.from_config(config)
    router = build_routing(config.routing, registry, "acme-large").router
    prior = QualityPredictor.load(SHIPPED)
    large = registry.get("acme-large")
    tiers = {m: tier_of(registry.get(m), large) for m in ("acme-mid", "acme-tiny")}
    assert TIERS[tiers["acme-mid"]] == "tier-4x" and TIERS[tiers["acme-tiny"]] == "tier-64x"
    for text in ("What is the capital of France?",
                 "Prove that every bounded monotone sequence converges."):  # fmt: skip
        decision = router.decide({"messages": [{"role": "user", "content": text}]})
        logits = prior.logits(text)
        for model, tier in tiers.items():
            expected = 1 / (1 + np.exp(-logits[tier]))
            assert decision.predicted[model] == pytest.approx(expected, abs=1e-6)
        assert decision.predicted["acme-large"] == 1.0
        ok = [m for m in ("acme-tiny", "acme-mid") if decision.predicted[m] >= 0.5]
        assert decision.model == (ok[0] if ok else "acme-large")  # cheapest good-enough tier


def _records(n: int) -> list[ReplayRecord]:
    """acme-tiny is as good on short questions, worse on proofs (a learnable signal)."""
    out = []
    for i in range(n):
        hard = i % 3 == 0
        text = f"prove theorem {i} about integrals" if hard else f"what is the capital {i}"
        out.append(ReplayRecord(
            id=f"r{i}", messages=({"role": "user", "content": text},), params={}, tags={},
            answers={"acme-large": RecordedAnswer(None, 1.0, 20),
                     "acme-mid": RecordedAnswer(None, 0.6 if hard else 1.0, 20),
                     "acme-tiny": RecordedAnswer(None, 0.2 if hard else 1.0, 20)},
        ))  # fmt: skip
    return out


def test_a_config_tuned_from_the_prior_round_trips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from thrifty.cli.main import main

    dataset = tmp_path / "d.jsonl.gz"
    write_dataset(_records(60), dataset)
    cfg = tmp_path / "c.yaml"
    raw = _raw(strategy="tradeoff", encoder="static")
    raw["providers"]["p"]["api_key"] = "${ACME_TEST_KEY}"  # no default: must be read
    monkeypatch.setenv("ACME_TEST_KEY", "sk-test")
    cfg.write_text(yaml.safe_dump(raw))
    out = tmp_path / "tuned.yaml"
    args = ["tune", "--dataset", str(dataset), "--config", str(cfg), "--out", str(out)]
    assert main([*args, "--folds", "2", "--target-quality", "0.9"]) == 0
    printed = capsys.readouterr().out
    # the prompts' words tell hard from easy: the predictor ranks nearly perfectly
    auc = float(printed.split("predictor: AUC ")[1].split()[0])
    assert auc > 0.9 and "on 60 labelled rows" in printed
    assert "prior shipped: dropped, the fit was better without it" in printed
    tuned = yaml.safe_load(out.read_text())
    assert tuned["routing"]["encoder"] == "static"
    config = load_config(out, {"ACME_TEST_KEY": "sk-test"})
    predictor = QualityPredictor.load(config.routing.predictor or "")
    assert predictor.encoder == "static"
    # 60 clean rows teach more than the prior: the fit's cross-fitted log-loss drops it,
    # and decisions then do not compute it (``test_the_prior_is_kept_...`` keeps it)
    assert predictor.prior_scale == 0.0
    assert predictor.prior_path == "" and predictor.prior is None and len(predictor.tiers) == 0
    router = build_routing(config.routing, ModelRegistry.from_config(config), "acme-large").router
    easy = router.decide({"messages": [{"role": "user", "content": "what is the capital 7"}]})
    hard = router.decide({"messages": [{"role": "user", "content": "prove theorem 9 about x"}]})
    assert easy.predicted["acme-tiny"] > hard.predicted["acme-tiny"]


def _tiny_head(prior: QualityPredictor, texts: list[str], agree: bool) -> list[ReplayRecord]:
    """Grades for acme-tiny that follow the prior's ranking of ``texts`` (or its reverse)."""
    registry = ModelRegistry.from_config(parse_config(_raw(strategy="tradeoff")))
    tier = tier_of(registry.get("acme-tiny"), registry.get("acme-large"))
    logits = np.array([prior.logits(t)[tier] for t in texts])
    good = logits >= np.median(logits) if agree else logits < np.median(logits)
    out = []
    for i, (text, g) in enumerate(zip(texts, good, strict=True)):
        out.append(ReplayRecord(
            id=f"r{i}", messages=({"role": "user", "content": text},), params={}, tags={},
            answers={"acme-large": RecordedAnswer(None, 1.0, 20),
                     "acme-tiny": RecordedAnswer(None, 1.0 if g else 0.0, 20)},
        ))  # fmt: skip
    return out


def _texts(n: int) -> list[str]:
    rng = np.random.default_rng(7)
    words = ("prove", "list", "explain", "integral", "capital", "poem", "code", "python",
             "why", "sum", "history", "translate", "story", "matrix", "france")  # fmt: skip
    return [" ".join(rng.choice(words, size=6)) + f" {i}" for i in range(n)]


def _fit(records: list[ReplayRecord], **kwargs: Any) -> QualityPredictor:
    prior = QualityPredictor.load(SHIPPED)
    registry = ModelRegistry.from_config(parse_config(_raw(strategy="tradeoff")))
    tiers = [tier_of(registry.get("acme-tiny"), registry.get("acme-large"))]
    return QualityPredictor.fit(records, ["acme-large", "acme-tiny"], "acme-large",
                                prior=prior, prior_path="shipped", tiers=tiers,
                                use_words=False, **kwargs)  # fmt: skip


def test_the_prior_is_kept_where_it_predicts_and_dropped_where_it_misleads() -> None:
    prior = QualityPredictor.load(SHIPPED)
    texts = _texts(200)
    agreeing = _fit(_tiny_head(prior, texts, agree=True))
    misleading = _fit(_tiny_head(prior, texts, agree=False))
    assert agreeing.prior_scale == 1.0 and agreeing.prior is not None
    assert misleading.prior_scale == 0.0 and misleading.prior is None


def test_a_scaled_prior_round_trips_through_the_file(tmp_path: Path) -> None:
    prior = QualityPredictor.load(SHIPPED)
    texts = _texts(40)
    fitted = _fit(_tiny_head(prior, texts, agree=True), prior_scales=(0.5,))
    assert fitted.prior_scale == 0.5
    loaded = QualityPredictor.load(fitted.save(tmp_path / "p.npz"))
    assert loaded.prior_scale == 0.5 and loaded.prior_path == "shipped"
    assert list(loaded.tiers) == list(fitted.tiers)
    new = "explain the integral of a poem in python"  # not a training prompt
    learned_only = loaded.logits(new) - 0.5 * prior.logits(new)[loaded.tiers]
    loaded.prior_scale = 1.0
    with_whole = loaded.logits(new) - prior.logits(new)[loaded.tiers]
    assert learned_only == pytest.approx(with_whole, abs=1e-5)
    assert loaded.logits(new) == pytest.approx(fitted.logits(new) + 0.5 * prior.logits(new)[
        loaded.tiers], abs=2e-2)  # fmt: skip


def test_on_many_rows_the_prior_is_kept_without_the_extra_fits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import thrifty.routing.predictor as predictor_module

    monkeypatch.setattr(predictor_module, "PRIOR_CHOICE_ROWS", 100)
    prior = QualityPredictor.load(SHIPPED)
    misleading = _fit(_tiny_head(prior, _texts(200), agree=False))
    assert misleading.prior_scale == 1.0 and misleading.prior is not None


def test_tune_skips_the_predictor_line_when_its_file_cannot_be_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from thrifty.cli.tune import predictor_summary

    bad = tmp_path / "old.predictor.npz"
    np.savez(bad, keys=np.zeros(3))  # an old nearest-neighbours file has no "kind"
    section = parse_config(_raw(strategy="tradeoff", predictor=str(bad))).routing
    assert predictor_summary(section, _records(6)) is None
    assert "predictor not summarised" in capsys.readouterr().err
    rules = parse_config(_raw(strategy="rules", predictor=str(bad))).routing
    assert predictor_summary(rules, _records(6)) is None  # rules do not route by it
