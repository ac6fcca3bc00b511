"""The library face: ``Thrifty`` / ``AsyncThrifty`` with the call shape of ``openai.OpenAI``."""

from thrifty.client.async_client import AsyncThrifty
from thrifty.client.call_info import CallInfo
from thrifty.client.sync_client import Thrifty

__all__ = ["AsyncThrifty", "CallInfo", "Thrifty"]
