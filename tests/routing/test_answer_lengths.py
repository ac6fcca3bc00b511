"""The predictor learns how long each model's answer to a prompt will be, and the
tradeoff router spends its quality budget on the requests whose answers cost most."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from thrifty.config import parse_config
from thrifty.learned import save_arrays
from thrifty.recordings.dataset import RecordedAnswer, ReplayRecord
from thrifty.registry import ModelRegistry
from thrifty.routing.build import build_routing
from thrifty.routing.lengths import demand_targets
from thrifty.routing.predictor import QualityPredictor

CHEAP, STRONG = "cheap", "strong"
LONG = ["essay", "story", "report", "program", "tutorial"]
SHORT = ["yes", "number", "word", "date", "name"]
ESSAY = "write an essay about rivers"
FACT = "one word: the capital of peru"


def _records(n: int, seed: int) -> list[ReplayRecord]:
    """Long answers to prompts asking for an essay or a program, short to facts; the
    cheap model as good either way (quality carries no signal), and terser."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        long = rng.random() < 0.5
        words = [rng.choice(LONG if long else SHORT)] + [f"w{rng.randrange(300)}" for _ in range(6)]
        tokens = rng.randint(500, 900) if long else rng.randint(5, 40)
        out.append(
            ReplayRecord(
                id=f"r{seed}-{i}",
                messages=({"role": "user", "content": " ".join(words)},),
                params={},
                tags={},
                answers={
                    CHEAP: RecordedAnswer(None, 1.0, int(tokens * 0.8)),
                    STRONG: RecordedAnswer(None, 1.0, tokens),
                },
            )
        )
    return out


def _raw(**routing: object) -> dict[str, object]:
    """A config with the two models priced ~15x apart, tradeoff routing on."""
    return {
        "providers": {"p": {"base_url": "http://127.0.0.1:9/v1"}},
        "models": {
            STRONG: {"provider": "p", "price": {"input": 10.0, "output": 30.0}},
            CHEAP: {"provider": "p", "price": {"input": 1.0, "output": 2.0}},
        },
        "default_model": STRONG,
        "routing": {"enabled": True, "strategy": "tradeoff", **routing},
    }


def test_answer_lengths_are_learned_per_prompt_and_per_model() -> None:
    train = _records(400, 1)
    predictor = QualityPredictor.fit(train, [CHEAP, STRONG], STRONG)
    essay, fact = predictor.predict(ESSAY), predictor.predict(FACT)
    assert essay[STRONG].output_tokens > 5 * fact[STRONG].output_tokens
    assert essay[CHEAP].output_tokens < essay[STRONG].output_tokens  # the terser model
    # the level is right where it matters for the bill: the mean, on prompts never seen
    unseen = _records(400, 11)
    predicted = [predictor.predict(r.messages[0]["content"])[STRONG].output_tokens for r in unseen]
    recorded = [r.answers[STRONG].output_tokens for r in unseen]
    assert np.mean(predicted) == pytest.approx(np.mean(recorded), rel=0.1)
    assert predictor.lengths.rank_correlation is not None
    assert predictor.lengths.rank_correlation > 0.7


def test_training_prompts_get_cross_fitted_lengths() -> None:
    """Lengths that are pure noise: a model that saw a training prompt's own length would
    echo it back (the tuner's curve would then look better than it is); the fold model
    that never saw it cannot."""
    from thrifty.routing.ranking import rank_correlation

    rng = random.Random(8)
    noisy = [
        ReplayRecord(r.id, r.messages, r.params, r.tags,
                     {m: RecordedAnswer(None, 1.0, rng.randint(5, 900)) for m in r.answers})
        for r in _records(300, 2)
    ]  # fmt: skip
    predictor = QualityPredictor.fit(noisy, [CHEAP, STRONG], STRONG)
    texts = [r.messages[0]["content"] for r in noisy]
    predicted = np.array([predictor.predict(t)[STRONG].output_tokens for t in texts])
    recorded = np.array([r.answers[STRONG].output_tokens for r in noisy], dtype=float)
    echoed = rank_correlation(predicted, recorded)
    assert echoed is None or echoed < 0.15


def test_lengths_round_trip_and_an_older_file_expects_the_mean(tmp_path: Path) -> None:
    fitted = QualityPredictor.fit(_records(300, 3), [CHEAP, STRONG], STRONG)
    loaded = QualityPredictor.load(fitted.save(tmp_path / "p.npz"))
    trained = _records(300, 3)[7].messages[0]["content"]  # its stored, cross-fitted length
    for text in (ESSAY, FACT, trained):
        assert loaded.predict(text)[STRONG].output_tokens == pytest.approx(
            fitted.predict(text)[STRONG].output_tokens, rel=0.02
        )
    with np.load(tmp_path / "p.npz") as data:  # a file written before the length model
        arrays = {k: data[k] for k in data.files if not k.startswith(("length_", "train_dem"))}
    old = QualityPredictor.load(save_arrays(tmp_path / "old.npz", **arrays))
    assert old.predict(ESSAY)[STRONG].output_tokens == pytest.approx(fitted.output_tokens[-1])
    assert old.predict(FACT)[STRONG].output_tokens == pytest.approx(fitted.output_tokens[-1])


def test_demand_averages_each_model_about_its_own_mean() -> None:
    tokens = np.array([[10.0, 100.0], [30.0, np.nan], [np.nan, np.nan]])
    demand, has = demand_targets(tokens)
    assert has.tolist() == [True, True, False]
    logs = np.log1p(tokens)
    assert demand[1] == pytest.approx(logs[1, 0] - np.mean(logs[:2, 0]))
    # row 0 also has model 2, at its own mean (its only row): the average of the two
    assert demand[0] == pytest.approx((logs[0, 0] - np.mean(logs[:2, 0]) + 0.0) / 2)


def test_the_tradeoff_router_sends_the_long_answers_to_the_cheap_model(tmp_path: Path) -> None:
    path = QualityPredictor.fit(_records(400, 4), [CHEAP, STRONG], STRONG).save(tmp_path / "p.npz")
    predictor = QualityPredictor.load(path)
    loss = {t: 1.0 - predictor.predict(t)[CHEAP].quality for t in (ESSAY, FACT)}
    saving = {  # USD per 1k requests the cheap model saves on each, by the predicted lengths
        t: 1000 * (predictor.predict(t)[STRONG].output_tokens * 30e-6
                   - predictor.predict(t)[CHEAP].output_tokens * 2e-6)
        for t in (ESSAY, FACT)
    }  # fmt: skip
    # a λ at which the essay's saving buys its (predicted) quality loss and the fact's not
    lam = 2 * loss[ESSAY] / saving[ESSAY]
    assert lam * saving[FACT] < loss[FACT]
    config = parse_config(_raw(predictor=str(path), tradeoff_lambda=lam))
    router = build_routing(config.routing, ModelRegistry.from_config(config), STRONG).router
    model = {t: router.decide({"messages": [{"role": "user", "content": t}]}).model
             for t in (ESSAY, FACT)}  # fmt: skip
    assert model == {ESSAY: CHEAP, FACT: STRONG}


def test_tune_says_how_well_it_predicts_answer_lengths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    import yaml

    from thrifty.cli.main import main
    from thrifty.recordings.dataset import write_dataset

    dataset = write_dataset(_records(200, 5), tmp_path / "d.jsonl.gz")
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(_raw(prior="none")))
    args = ["tune", "--dataset", str(dataset), "--config", str(config), "--folds", "2",
            "--out", str(tmp_path / "tuned.yaml")]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    line = printed.split("answer lengths: rank correlation ")[1]
    assert float(line.split()[0]) > 0.7 and "with the reference's, cross-fitted" in line
    assert main([*args, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)["predictor"]
    assert summary["length_rank_correlation"] == pytest.approx(float(line.split()[0]), abs=0.01)


def test_answers_all_of_one_length_teach_nothing_and_cost_no_fit() -> None:
    records = _records(100, 6)
    same = [
        ReplayRecord(r.id, r.messages, r.params, r.tags,
                     {m: RecordedAnswer(None, a.quality, 5) for m, a in r.answers.items()})
        for r in records
    ]  # fmt: skip
    predictor = QualityPredictor.fit(same, [CHEAP, STRONG], STRONG)
    assert np.isnan(predictor.lengths.l2_rows) and predictor.lengths.rank_correlation is None
    assert predictor.predict(ESSAY)[STRONG].output_tokens == pytest.approx(5.0)
    assert predictor.predict(FACT)[CHEAP].output_tokens == pytest.approx(5.0)


def test_a_reference_alone_still_learns_its_lengths() -> None:
    only = [
        ReplayRecord(r.id, r.messages, r.params, r.tags, {STRONG: r.answers[STRONG]})
        for r in _records(200, 7)
    ]
    predictor = QualityPredictor.fit(only, [STRONG], STRONG)
    assert predictor.models == []
    essay, fact = predictor.predict(ESSAY)[STRONG], predictor.predict(FACT)[STRONG]
    assert essay.quality == fact.quality == 1.0
    assert essay.output_tokens > 5 * fact.output_tokens


def test_many_rows_learn_lengths_from_a_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above ``LENGTH_ROWS`` the length model fits a seeded sample (the tune's time); the
    other training rows are scored by that model, which never saw them."""
    import thrifty.routing.lengths as lengths

    monkeypatch.setattr(lengths, "LENGTH_ROWS", 150)
    train = _records(400, 9)
    predictor = QualityPredictor.fit(train, [CHEAP, STRONG], STRONG)
    assert predictor.predict(ESSAY)[STRONG].output_tokens > 5 * (
        predictor.predict(FACT)[STRONG].output_tokens
    )
    assert predictor.lengths.rank_correlation is not None
    assert predictor.lengths.rank_correlation > 0.5  # 0.8 from all 400 rows
