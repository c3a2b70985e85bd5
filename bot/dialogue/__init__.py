"""The pure dialogue core: flows, conditions, the dialogue stack and events.

Nothing here imports aiohttp, SQLAlchemy, ONNX or Slack, so the whole core is
testable in microseconds.
"""
