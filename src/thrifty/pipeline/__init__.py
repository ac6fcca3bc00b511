"""The request pipeline shared by the gateway, the library and replay."""

from thrifty.pipeline.chain import Pipeline
from thrifty.pipeline.context import CHAT, EMBEDDINGS, Context, Reply
from thrifty.pipeline.stage import CallNext, Stage

__all__ = ["CHAT", "EMBEDDINGS", "CallNext", "Context", "Pipeline", "Reply", "Stage"]
