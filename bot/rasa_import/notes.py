"""Reporting the parts of a Rasa project that have no flow to become.

``config.yml`` (pipeline, policies), ``session_config``, ``endpoints.yml``
beyond the action server, ``credentials.yml`` channels, and domain keys
Helpline does not read are listed here; the action server's URL is returned
for ``helpline.yml``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.rasa_import.reader import where

if TYPE_CHECKING:
    from bot.rasa_import.reader import Document, RasaProject
    from bot.rasa_import.report import Report, Status

_CONFIG = {
    "pipeline": "the embedded NLU (MiniLM sentence encoder, intent classifier, regex and "
    "lookup extractors) replaces the pipeline; use nlu.backend: rasa to keep a Rasa NLU server",
    "policies": "flows replace the dialogue policies",
}
_ENDPOINTS = {
    "tracker_store": "conversations are stored in Helpline's database: set storage.url",
    "lock_store": "Helpline locks each conversation itself (in process or in the database)",
    "event_broker": "Helpline publishes events on its own bus",
    "nlg": "responses come from the domain; an NLG server is not supported",
    "models": "there is no trained model to fetch: the NLU trains at startup",
}
_CHANNELS = {
    "rest": "the REST channel is on by default (connectors.rest)",
    "slack": "configure connectors.slack in helpline.yml (token and signing secret)",
    "socketio": "use the web widget connector instead",
}
#: Intents the flow engine gives a built-in meaning.
_SPECIAL_INTENTS = {
    "human_handoff": "always hands the conversation to a person",
    "cancel": "cancels the flow in progress",
    "chitchat": "gets the small-talk response when no flow handles it",
}


def _config(doc: Document, report: Report) -> None:
    for key, value in doc.data.items():
        place = where(doc.path, doc.data, key)
        if key in _CONFIG and value:
            report.add("config", key, "unsupported", place, _CONFIG[key])
        elif key == "language" and str(value).lower() not in ("en", "none"):
            report.add("config", key, "needs_human", place, f"the encoder is English; '{value}'")


def _endpoints(doc: Document, report: Report) -> str | None:
    url = None
    for key, value in doc.data.items():
        place = where(doc.path, doc.data, key)
        if key == "action_endpoint":
            url = str(value.get("url")) if isinstance(value, dict) and value.get("url") else None
            report.add("endpoint", key, "converted", place, f"actions.endpoint: {url}")
        elif key in _ENDPOINTS and value:
            report.add("endpoint", key, "unsupported", place, _ENDPOINTS[key])
    return url


def _credentials(doc: Document, report: Report) -> None:
    for key in doc.data:
        reason = _CHANNELS.get(key, "this channel has no Helpline connector")
        status: Status = "note" if key in _CHANNELS else "unsupported"
        report.add("channel", key, status, where(doc.path, doc.data, key), reason)


def _domain(project: RasaProject, report: Report) -> None:
    for entry in project.duplicates:
        report.add("domain", entry.name, "note", entry.where, "defined twice: the later one wins")
    for entry in project.domain_extra:
        report.add("domain", entry.name, "unsupported", entry.where, "not read by Helpline")
    for entry in project.section("session_config").values():
        report.add(
            "domain",
            "session_config",
            "unsupported",
            entry.where,
            "sessions do not expire; slots carry over for the whole conversation",
        )
    for doc in project.data:
        if doc.data.get("responses"):
            place = where(doc.path, doc.data, "responses")
            reason = "responses in training data (retrieval intents) are dropped"
            report.add("nlu", "responses", "unsupported", place, reason)
    for name, meaning in _SPECIAL_INTENTS.items():
        if name in project.section("intents"):
            report.add("intent", name, "note", project.section("intents")[name].where, meaning)


def report_project(project: RasaProject, report: Report) -> str | None:
    """Report config, endpoints, credentials and domain leftovers; return the action URL."""
    _domain(project, report)
    if project.config is not None:
        _config(project.config, report)
    url = _endpoints(project.endpoints, report) if project.endpoints is not None else None
    if project.credentials is not None:
        _credentials(project.credentials, report)
    return url


def helpline_config(action_url: str | None) -> dict[str, Any]:
    """Return the ``helpline.yml`` mapping of the imported bot."""
    fallback = action_url or ""
    endpoint = fallback if "${" in fallback else f"${{HELPLINE_ACTION_ENDPOINT:-{fallback}}}"
    return {
        "bot": {"path": "flows"},
        "storage": {"url": "${HELPLINE_DB_URL:-sqlite+aiosqlite:///var/helpline.db}"},
        "actions": {"endpoint": endpoint},
        "llm": {"enabled": False},
    }
