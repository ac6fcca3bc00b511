"""Grade each candidate's answer against the served one: deterministic checks first,
then the judge (absolute 1–10 grades, or pairwise verdicts in both orders)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from thrifty.ledger.record import ShadowAnswer
from thrifty.pipeline.context import Reply
from thrifty.shadow.config import ShadowConfig
from thrifty.shadow.graders import (
    absolute_prompt,
    deterministic,
    pairwise_prompt,
    parse_pairwise,
    parse_rating,
    question_text,
)

JudgeCall = Callable[[str, list[dict[str, str]]], Awaitable[str | None]]

# Pairwise: the candidate's score for a verdict, with the served answer as A, then as B.
# A tie counts as "not worse": quality is the share of orders the candidate was not worse.
_SERVED_FIRST = {"A": 0.0, "B": 1.0, "C": 1.0}
_SERVED_SECOND = {"A": 1.0, "B": 0.0, "C": 1.0}


class Grader:
    """Grades one shadowed request's candidates (``judge`` is the judging model)."""

    def __init__(
        self, section: ShadowConfig, judge: str, body: dict[str, Any], served: str, call: JudgeCall
    ) -> None:
        self._section = section
        self._judge = judge
        self._body = body
        self._served = served
        self._call = call
        self._question = question_text(body.get("messages") or [])

    async def grade(
        self,
        request_id: str,
        served_model: str,
        models: Sequence[str],
        replies: Sequence[Reply | str],
    ) -> list[ShadowAnswer]:
        absolute = self._section.grading == "absolute"
        served_quality = (
            self._rate(self._served) if absolute else _done(1.0)
        )  # pairwise: the served answer is the reference
        grades = [self._grade_one(reply) for reply in replies]
        served_q, *results = await asyncio.gather(served_quality, *grades)
        out = []
        for model, reply, (grader, quality, detail) in zip(models, replies, results, strict=True):
            if not isinstance(reply, Reply):
                out.append(ShadowAnswer(
                    request_id=request_id, model=model, served_model=served_model,
                    status="error", error=reply, served_quality=served_q,
                ))  # fmt: skip
                continue
            if grader in ("choice", "numeric", "json"):
                same = bool(detail["same"])
                quality = (served_q if served_q is not None else 1.0) if same else 0.0
            out.append(ShadowAnswer(
                request_id=request_id, model=model, served_model=served_model, status="ok",
                answer=reply.answer_text(),
                output_tokens=reply.usage.output_tokens if reply.usage else None,
                cost=reply.attempt.cost if reply.attempt else None,
                quality=quality, served_quality=served_q, grader=grader, detail=detail,
            ))  # fmt: skip
        return out

    async def _grade_one(
        self, reply: Reply | str
    ) -> tuple[str | None, float | None, dict[str, Any]]:
        if not isinstance(reply, Reply):
            return None, None, {}
        text = reply.answer_text() or ""
        exact = deterministic(self._body, self._served, text)
        if exact is not None:
            return exact[0], None, {"same": exact[1]}
        if self._section.grading == "absolute":
            return "absolute", await self._rate(text), {}
        first, second = await asyncio.gather(
            self._call(self._judge, pairwise_prompt(self._question, self._served, text)),
            self._call(self._judge, pairwise_prompt(self._question, text, self._served)),
        )
        verdicts = [parse_pairwise(first or ""), parse_pairwise(second or "")]
        scores = [
            table[v]
            for table, v in ((_SERVED_FIRST, verdicts[0]), (_SERVED_SECOND, verdicts[1]))
            if v is not None
        ]
        quality = round(sum(scores) / len(scores), 4) if scores else None
        return "pairwise", quality, {"verdicts": verdicts}

    async def _rate(self, answer: str) -> float | None:
        text = await self._call(self._judge, absolute_prompt(self._question, answer))
        return parse_rating(text or "")


async def _done(value: float) -> float:
    return value
