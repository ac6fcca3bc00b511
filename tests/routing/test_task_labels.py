"""Users' own routing labels: added to the built-in rules, validated by the config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from thrifty.config import parse_config
from thrifty.recordings.dataset import RecordedAnswer, ReplayRecord
from thrifty.registry import ModelRegistry
from thrifty.routing.config import RoutingConfig
from thrifty.routing.search import routing_space
from thrifty.routing.tasks import DEFAULT_RULES, RuleTaskClassifier, with_labels


def test_own_labels_add_to_the_built_in_rules() -> None:
    rules = with_labels(None, {
        "legal": {"keywords": {"contract": 2.0, "indemnity": 2.0},
                  "patterns": {r"\bsection \d+(?:\.\d+)*": 1.5}},
        "code": {"keywords": {"terraform": 2.0}},
    })  # fmt: skip
    classifier = RuleTaskClassifier(rules)
    assert classifier.labels[-1] == "legal"
    assert classifier.classify("Is the indemnity in section 4.2 of this contract fair?").task == (
        "legal"
    )
    assert classifier.classify("My terraform plan fails on apply").task == "code"
    # the built-in rules are all still there
    assert classifier.classify("Summarize this article in three sentences.").task == (
        "summarization"
    )
    assert classifier.classify("Translate 'good morning' into Spanish.").task == "translation"
    code = rules["labels"]["code"]["keywords"]
    assert (
        code["terraform"] == 2.0
        and code["python"] == DEFAULT_RULES["labels"]["code"]["keywords"]["python"]
    )
    assert "terraform" not in DEFAULT_RULES["labels"]["code"]["keywords"], "defaults untouched"


def test_a_label_can_be_routed_and_bad_rules_are_named() -> None:
    config = RoutingConfig.model_validate(
        {"labels": {"legal": {"keywords": ["contract"]}}, "tasks": {"legal": ["gpt-4o"]}}
    )
    assert config.tasks == {"legal": ["gpt-4o"]}
    with pytest.raises(ValidationError, match=r"unknown task\(s\) \['legal'\]"):
        RoutingConfig.model_validate({"tasks": {"legal": ["gpt-4o"]}})
    with pytest.raises(ValidationError, match=r"labels\.legal\.patterns"):
        RoutingConfig.model_validate({"labels": {"legal": {"patterns": ["(unclosed"]}}})
    with pytest.raises(ValidationError, match=r"labels\.legal\.keyword"):
        RoutingConfig.model_validate({"labels": {"legal": {"keyword": ["typo"]}}})


def test_tune_rules_search_classifies_with_the_users_labels(tmp_path: Path) -> None:
    """``thrifty tune`` with ``strategy: rules`` assigns models per task as the gateway
    classifies: a user's own label gets its own cheapest good-enough model."""
    models = {"big": {"input": 10.0, "output": 30.0}, "small": {"input": 0.1, "output": 0.1}}
    raw: dict[str, Any] = {
        "providers": {"p": {"base_url": "http://127.0.0.1:9/v1"}},
        "models": {name: {"provider": "p", "price": price} for name, price in models.items()},
        "default_model": "big",
        "routing": {"enabled": True, "strategy": "rules",
                    "labels": {"legal": {"keywords": {"indemnity": 5.0}}}},
    }  # fmt: skip
    config = parse_config(raw)

    def record(i: int, text: str, small_quality: float) -> ReplayRecord:
        answers = {
            "big": RecordedAnswer("answer", 1.0, 50),
            "small": RecordedAnswer("answer", small_quality, 50),
        }
        return ReplayRecord(f"r{i}", ({"role": "user", "content": text},), {}, {}, answers)

    train = [record(i, f"Is the indemnity clause {i} enforceable?", 1.0) for i in range(5)]
    train += [record(10 + i, f"Tell me about the weather on day {i}.", 0.2) for i in range(5)]
    candidates = routing_space(
        raw["routing"], ModelRegistry.from_config(config), "big", train, tmp_path
    )
    strict = next(c for c in candidates if c.label == "rules at 100%")
    assert strict.patch["routing"]["tasks"]["legal"] == ["small", "big"]
    assert strict.patch["routing"]["tasks"]["chat"] == ["big", "big"]
    # the tuned tasks are valid for the gateway's config (the label is known there)
    parse_config({**raw, "routing": {**raw["routing"], **strict.patch["routing"]}})
