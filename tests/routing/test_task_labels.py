"""Users' own routing labels: added to the built-in rules, validated by the config."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from thrifty.routing.config import RoutingConfig
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
