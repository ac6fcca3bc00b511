"""The technique table, the per-key overrides and replay's technique list agree.

``thrifty.techniques.TECHNIQUES`` is the one list; governance (below it) keeps the names a
key may switch as a constant, and replay reports in ``REPORT_ORDER``: these tests hold
them together, and pin what users see (report order, overhead purposes, CLI flags).
"""

from __future__ import annotations

import pytest

from thrifty.cli.main import build_parser
from thrifty.config.schema import ThriftyConfig
from thrifty.errors import InvalidRequest
from thrifty.governance.keys.identity import Overrides
from thrifty.governance.keys.spec import OVERRIDABLE, OverridesSpec
from thrifty.replay import simulator
from thrifty.techniques import (
    OVERHEAD_PURPOSES,
    REPORT_ORDER,
    TECHNIQUES,
    apply_overrides,
)

NAMES = [t.name for t in TECHNIQUES]


def _config(**sections: object) -> ThriftyConfig:
    return ThriftyConfig.model_validate(
        {
            "providers": {"up": {"base_url": "http://127.0.0.1:9/v1"}},
            "models": {"gpt-4o-mini": {"provider": "up"}, "gpt-4o": {"provider": "up"}},
            "default_model": "gpt-4o-mini",
            **sections,
        }
    )


def test_the_table_names_each_technique_once_in_stage_order() -> None:
    assert NAMES == ["cache", "compression", "routing", "batching", "cascade"]


def test_replay_reports_the_table_in_its_report_order() -> None:
    assert sorted(REPORT_ORDER) == sorted(NAMES)
    assert simulator.TECHNIQUES == REPORT_ORDER == (
        "routing", "cascade", "cache", "compression", "batching"
    )  # fmt: skip


def test_overhead_purposes_come_from_the_table() -> None:
    assert OVERHEAD_PURPOSES == {
        "classify": "routing",
        "cascade": "cascade",
        "judge": "cascade",
        "embed": "cache",
        "cache_verify": "cache",
        "summarise": "compression",
    }


def test_each_name_is_a_config_section_that_is_off_by_default() -> None:
    config = _config()
    for technique in TECHNIQUES:
        section = getattr(config, technique.name)
        assert not technique.on(config)
        assert type(section)().model_dump() == section.model_dump()


def test_keys_may_switch_exactly_the_overridable_rows() -> None:
    assert set(OVERRIDABLE) == {t.name for t in TECHNIQUES if t.overridable}
    assert OVERRIDABLE == tuple(OverridesSpec.model_fields) == ("routing", "cascade", "cache")


def test_overrides_keep_the_wire_order_and_reject_other_names() -> None:
    overrides = Overrides(cache=False, routing=True, cascade=None)
    assert overrides.as_dict() == {"routing": True, "cache": False}
    assert list(overrides.as_dict()) == ["routing", "cache"]
    assert overrides == Overrides(routing=True, cache=False)
    assert hash(overrides) == hash(Overrides(**overrides.as_dict()))
    assert Overrides().empty and Overrides(cache=None).empty and not overrides.empty
    with pytest.raises(TypeError):
        Overrides(compression=True)


@pytest.mark.parametrize("name", OVERRIDABLE)
def test_apply_overrides_switches_the_named_section(name: str) -> None:
    base = _config(cache={"enabled": True}, routing={"enabled": True})
    if name == "cascade":
        with pytest.raises(InvalidRequest) as caught:  # no tiers configured
            apply_overrides(base, Overrides(cascade=True))
        assert caught.value.code == "invalid_overrides"
        return
    switched = apply_overrides(base, Overrides(**{name: False}))
    assert getattr(switched, name).enabled is False
    assert apply_overrides(base, Overrides()) is base


def test_thrifty_keys_create_offers_one_flag_per_overridable_technique() -> None:
    parser = build_parser()
    keys = next(a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == "keys")
    create = keys[1]._subparsers._group_actions[0].choices["create"]
    flags = [o for action in create._actions for o in action.option_strings]
    assert [f for f in flags if f.lstrip("-") in NAMES] == ["--routing", "--cascade", "--cache"]
