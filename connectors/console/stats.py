"""The admin stats, aggregated from turns and inbox rows.

* ``containment_rate``: conversations with bot turns that never reached a
  person, over all conversations with turns.
* ``routes``: turns per route; ``routes_per_turn`` the same as shares.
* ``escalation_rate``: open-ended turns the cloud answered, over the turns
  a model answered (local + cloud): how often the local model escalated.
* ``cloud_cost_per_day``: what cloud turns cost, per UTC day.
* ``csat``, ``handoffs_by_reason``, ``time_to_first_human_reply_s`` and
  ``resolution_time_s`` (count, p50, p90, mean) come from the inbox.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

Json = dict[str, Any]
ROUTES = ("flow", "extractive", "local", "cloud", "human")


def _percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile of ``values``."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))
    return ordered[rank]


def durations(pairs: list[tuple[datetime | None, datetime | None]]) -> Json:
    """``{"count", "p50", "p90", "mean"}`` of the seconds between each pair."""
    seconds = [(end - start).total_seconds() for start, end in pairs if start and end]
    mean = sum(seconds) / len(seconds) if seconds else None
    return {
        "count": len(seconds),
        "p50": _percentile(seconds, 0.5),
        "p90": _percentile(seconds, 0.9),
        "mean": mean,
    }


def _turn_stats(turns: list[Json], handed_off: set[int]) -> Json:
    routes = Counter(str(t["route"]) for t in turns)
    total = sum(routes.values())
    with_turns = {t["conversation_id"] for t in turns}
    contained = len(with_turns - handed_off)
    models = routes["local"] + routes["cloud"]
    cost: defaultdict[str, float] = defaultdict(float)
    for turn in turns:
        if turn["route"] == "cloud" and turn["cost_usd"]:
            cost[turn["created_at"].date().isoformat()] += float(turn["cost_usd"])
    return {
        "turns": total,
        "conversations": len(with_turns),
        "containment_rate": contained / len(with_turns) if with_turns else None,
        "routes": {route: routes[route] for route in ROUTES},
        "routes_per_turn": {route: routes[route] / total if total else 0.0 for route in ROUTES},
        "escalation_rate": routes["cloud"] / models if models else None,
        "cloud_cost_per_day": [
            {"day": day, "usd": round(usd, 6)} for day, usd in sorted(cost.items())
        ],
    }


def compute_stats(rows: dict[str, list[Json]]) -> Json:
    """Aggregate :func:`bot.storage.inbox_queries.stats_rows` into the stats JSON."""
    inbox = rows["inbox"]
    scores = [int(r["csat"]) for r in inbox if r["csat"] is not None]
    return {
        **_turn_stats(rows["turns"], {int(r["conversation_id"]) for r in inbox}),
        "csat": {
            "count": len(scores),
            "average": sum(scores) / len(scores) if scores else None,
        },
        "handoffs_by_reason": dict(Counter(str(r["handoff_reason"]) for r in inbox)),
        "time_to_first_human_reply_s": durations(
            [(r["handoff_at"], r["first_human_reply_at"]) for r in inbox]
        ),
        "resolution_time_s": durations([(r["handoff_at"], r["resolved_at"]) for r in inbox]),
    }
