"""The Grafana dashboard and the README's metrics table against the real Prometheus registry.

Every module that defines metrics is imported, then ``bot.metrics.REGISTRY``
(the registry ``/metrics`` serves, in the app and in the model worker) is read.
"""

from __future__ import annotations

import importlib
import json
import re
from typing import Any

import pytest

from bot import metrics
from tests.docker.conftest import DOCKER, ROOT

SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count", ""),
}


def collectors() -> dict[str, Any]:
    """Each registered metric by its exposed base name (a counter's ``_total`` included)."""
    for path in sorted([*ROOT.glob("bot/**/metrics.py"), *ROOT.glob("llm/**/metrics.py")]):
        importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
    found = {}
    for collector in list(metrics.REGISTRY._collector_to_names):
        name = collector._name + ("_total" if collector._type == "counter" else "")
        found[name] = collector
    return found


def series() -> dict[str, tuple[str, set[str]]]:
    """Each sample name Prometheus can query, with its metric's labels."""
    result = {}
    for collector in collectors().values():
        labels = set(collector._labelnames) | ({"le"} if collector._type == "histogram" else set())
        for suffix in SUFFIXES[collector._type]:
            result[collector._name + suffix] = (collector._name, labels)
    return result


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((DOCKER / "grafana" / "helpline-dashboard.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


def test_the_dashboard_has_panels_over_each_area() -> None:
    used = {name for e in dashboard_exprs() for name in re.findall(r"helpline_\w+", e)}
    for wanted in (
        "helpline_turns_total",
        "helpline_turn_latency_seconds_bucket",
        "helpline_nlu_fallbacks_total",
        "helpline_deliveries_total",
        "helpline_outbox_pending",
        "helpline_llm_cost_usd_total",
    ):
        assert wanted in used


@pytest.mark.parametrize("expr", dashboard_exprs())
def test_every_dashboard_query_names_real_metrics_and_labels(expr: str) -> None:
    known = series()
    for selector in re.finditer(r"(helpline_\w+)(\{[^}]*\})?", expr):
        name, matchers = selector.group(1), selector.group(2) or ""
        assert name in known, f"{name} is not in the registry"
        labels = known[name][1]
        for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers):
            assert label in labels, f"{name} has no label {label}"
    grouped = {label.strip() for g in re.findall(r"by \(([^)]*)\)", expr) for label in g.split(",")}
    names = [m for m in re.findall(r"helpline_\w+", expr)]
    available = set.union(*(known[n][1] for n in names))
    assert grouped <= available, f"grouping by {grouped - available} that no metric has"


def readme_table() -> dict[str, tuple[str, set[str]]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(helpline_\w+)` \| (\w+) \| ([^|]*) \| [^|]+ \|$", section, re.M)
    assert rows, "the README's Metrics section has no table"
    return {name: (kind, set(re.findall(r"`(\w+)`", labels))) for name, kind, labels in rows}


def test_the_readme_documents_every_metric_and_only_real_ones() -> None:
    documented = readme_table()
    registered = {name: (c._type, set(c._labelnames)) for name, c in collectors().items()}
    assert sorted(set(registered) - set(documented)) == [], "metrics missing from README.md"
    assert sorted(set(documented) - set(registered)) == [], "README.md names unknown metrics"
    for name, (kind, labels) in documented.items():
        assert (kind, labels) == registered[name], name
