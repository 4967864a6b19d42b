"""The page, a pure function of a snapshot (syncd.dashboard.snapshot): every section is HTML
that reads without JavaScript; the script only swaps sections for fresh ones when told to."""
from __future__ import annotations

import codecs
import datetime
from html import escape

from syncd.dashboard.snapshot import Filters, who
from syncd.engine.executor import DRY_RUN_OUTCOMES
from syncd.report.page import STAGES, charts
from syncd.report.units import count, duration

SECTIONS = ("state", "devices", "conflicts", "pipeline", "activity", "charts")
TITLES = {"state": "This copy", "conflicts": "Held conflicts", "pipeline": "Pipeline", "activity": "Activity",
          "devices": "Devices", "charts": "Analytics"}
KEEPS = [  # the buttons: `syncd resolve --keep` values and what each does
    ("local", "Keep this copy's", "publish this copy's file"),
    ("remote", "Keep the store's", "take the store's version (this copy's is kept as a version)"),
    ("both", "Keep both", "the store's version at the path, this copy's beside it"),
    ("merged", "Merge by hand", "write the file with conflict markers to edit; published once they are gone"),
]
SHOWN_BYTES = 20000  # of each side in the three-way view
SHOWN_ROWS = 40  # of the activity stream; the filters reach further back


def when(iso: str | float | None) -> str:
    """A store timestamp or a Unix time, as local time, to the minute."""
    if iso is None:
        return "-"
    moment = (datetime.datetime.fromtimestamp(iso) if isinstance(iso, (int, float))
              else datetime.datetime.fromisoformat(iso).astimezone())
    return moment.strftime("%Y-%m-%d %H:%M")


def _empty(text: str) -> str:
    return f'<p class="empty">{escape(text)}</p>'


def sections(snap: dict, filters: Filters, csrf: str) -> dict[str, str]:
    return {"state": state(snap["state"]), "conflicts": conflicts(snap["conflicts"], csrf),
            "pipeline": pipeline(snap["sessions"]), "activity": activity(snap, filters),
            "devices": devices(snap["stats"]["devices"]), "charts": analytics(snap["stats"])}


def page(workspace: str, parts: dict[str, str], generation: int, said: str | None = None) -> str:
    body = "".join(f'<section id="s-{name}"><h2>{TITLES[name]}</h2><div class="body" id="{name}">{parts[name]}'
                   f'</div></section>' for name in SECTIONS)
    notice = f'<p class="said" role="status">{escape(said)}</p>' if said else ""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>syncd: {escape(workspace)}</title><link rel="stylesheet" href="static/dashboard.css">'
            f'<script src="static/dashboard.js" defer></script></head>'
            f'<body data-generation="{generation}"><header><h1>syncd · {escape(workspace)}</h1>'
            f'<span id="live" class="live">static page</span></header>{notice}<main>{body}</main></body></html>\n')


def state(s: dict) -> str:
    d = s["daemon"]
    name = d["state"] or "unknown"
    lines = [f'<p class="state {escape(name)}"><strong>{escape(name)}</strong>'
             + (f" (pid {d['pid']})" if d["pid"] else "") + (f": {escape(d['reason'])}" if d["reason"] else "")
             + "</p>"]
    if s["paused"]:
        lines.append('<p class="paused">paused by <code>syncd pause</code>; <code>syncd resume</code> continues</p>')
    facts = [("root", escape(s["root"])), ("store", escape(s["store"])), ("change", str(s["cursor"])),
             ("last sync", when(s["last_sync"]) if s["last_sync"] else "never")]
    pending = s["pending"]
    facts.append(("pending", escape(f"unknown ({pending['unknown']})") if pending.get("unknown")
                  else f"{len(pending['local'])} local, {len(pending['remote'])} remote"))
    facts.append(("conflicts", str(len(s["conflicts"]))))
    first = s["first_pass"]
    if first:  # never synced: as `syncd status` says it
        facts.append(("never synced", escape(f"what the first pass would do is unknown ({first['unknown']})"
                                             if "unknown" in first else "the first pass would leave: " + ", ".join(
                                                 f"{len(paths)} {DRY_RUN_OUTCOMES[outcome]}"
                                                 for outcome, paths in first.items() if paths))))
    lines.append("<dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>")
    held = s["held_deletes"]
    if held:
        shown = "".join(f"<li>{escape(p)}</li>" for p in held[:20])
        lines.append(f'<p class="held">{count(len(held), "delete")} held back: '
                     f'<code>syncd resume --allow-deletes</code> lets them through</p><ul class="paths">{shown}'
                     + (f"<li>… {len(held) - 20} more</li>" if len(held) > 20 else "") + "</ul>")
    return "".join(lines)


def _side(data: bytes | None) -> str:
    if data is None:
        return '<p class="empty">absent (deleted)</p>'
    try:  # incremental: a character the cut splits is left out, not taken for a binary file
        text = codecs.getincrementaldecoder("utf-8")().decode(data[:SHOWN_BYTES])
    except UnicodeDecodeError:
        return f'<p class="empty">binary, {count(len(data), "byte")}</p>'
    more = f'<p class="meta">… {len(data) - SHOWN_BYTES} more bytes</p>' if len(data) > SHOWN_BYTES else ""
    return f"<pre>{escape(text)}</pre>{more}"


def conflicts(rows: list[dict], csrf: str) -> str:
    if not rows:
        return _empty("no conflicts")
    out = []
    for c in rows:
        head = (f'<h3><code>{escape(c["path"])}</code></h3><p class="meta">held since {when(c["detected_at"])}'
                f'; {escape(c["state"])}; base v{c["base_version"] or "-"}, store v{c["remote_version"]}'
                + (f' by {escape(c["remote_author"] or "unknown")} at {when(c["remote_at"])}' if "remote_at" in c else "")
                + "</p>")
        if "error" in c:
            views = f'<p class="held">{escape(c["error"])}</p>'
        else:
            views = '<div class="three">' + "".join(
                f'<div class="side {side}"><h4>{escape(c["labels"][side])}</h4>{_side(c[side])}</div>'
                for side in ("base", "local", "remote")) + "</div>"
        buttons = "".join(f'<button type="submit" name="keep" value="{keep}" title="{escape(tip)}">{label}</button>'
                          for keep, label, tip in KEEPS)
        form = (f'<form method="post" action="resolve" class="resolve"><input type="hidden" name="csrf" '
                f'value="{escape(csrf)}"><input type="hidden" name="path" value="{escape(c["path"])}"><input type="hidden" '
                f'name="shown" value="{c["remote_version"]}">{buttons}</form>')
        out.append(f'<article class="conflict" data-path="{escape(c["path"])}">{head}{views}{form}</article>')
    return "".join(out)


def pipeline(sessions: list[dict]) -> str:
    if not sessions:
        return _empty("no sessions yet")
    head = "<tr><th>session</th>" + "".join(f"<th>{s}</th>" for s in STAGES) + "</tr>"
    rows = []
    for s in sessions:
        disagree = {d["stage"]: d for d in s["disagreements"]}
        name = escape(f"{s['project']}/{s['session']}")
        current = ' <span class="current" title="the project\'s CURRENT_SESSION">current</span>' if s["current"] else ""
        cells = []
        for stage in STAGES:
            st = (s["stages"] or {}).get(stage, {})
            started = st.get("status") == "started"
            mark = "●" if started else "·"
            by = (f'<span class="by">{escape(st.get("last_edited_by") or "?")}, {when(st.get("last_edited_at"))}</span>'
                  if started else "")
            flag, cls = "", "started" if started else "pending"
            if stage in disagree:
                d = disagree[stage]
                tip = f"session_state.json says {d['session_state']}, the documents say {d['documents']}"
                flag, cls = f' <span class="flag" title="{escape(tip)}">⚑ {escape(d["session_state"])}</span>', cls + " disagree"
            cells.append(f'<td class="{cls}" data-stage="{stage}">{mark}{flag}{by}</td>')
        rows.append(f'<tr data-session="{name}"{" class=current" if s["current"] else ""}><th>{name}{current}</th>'
                    + "".join(cells) + "</tr>")
    notes = [f"<li>{escape(s['project'] + '/' + s['session'])} {escape(d['stage'])}: session_state.json says "
             f"{escape(d['session_state'])}, the documents say {escape(d['documents'])}</li>"
             for s in sessions for d in s["disagreements"]]
    legend = ('<p class="meta">● started (a document with more than a template), · pending; ⚑ where '
              'session_state.json disagrees with the documents</p>')
    return (f'<table class="pipeline">{head}{"".join(rows)}</table>{legend}'
            + (f'<ul class="disagreements">{"".join(notes)}</ul>' if notes else ""))


def _select(name: str, label: str, options: list[str], chosen: str | None) -> str:
    items = ['<option value="">all</option>'] + [
        f'<option value="{escape(o)}"{" selected" if o == chosen else ""}>{escape(o)}</option>' for o in options]
    if chosen and chosen not in options:
        items.append(f'<option value="{escape(chosen)}" selected>{escape(chosen)}</option>')
    return f'<label>{label} <select name="{name}">{"".join(items)}</select></label>'


def activity(snap: dict, filters: Filters) -> str:
    projects = sorted({s["project"] for s in snap["sessions"]})
    sessions = sorted({s["session"] for s in snap["sessions"] if filters.project in (None, s["project"])})
    form = ('<form method="get" action="./" class="filters">'
            + _select("project", "project", projects, filters.project)
            + _select("session", "session", sessions, filters.session)
            + _select("person", "person", snap["people"], filters.person)
            + _select("kind", "kind", snap["kinds"], filters.kind)
            + '<button type="submit">filter</button>'
            + (' <a href="./">all activity</a>' if filters.query() else "") + "</form>")
    rows = snap["activity"]
    if not rows:
        return form + _empty("no activity" + (" with these filters" if filters.query() else " yet"))
    lines = []
    for r in rows[:SHOWN_ROWS]:
        details = r.get("details") or {}
        version = escape(f" v{details['version']}") if "version" in details else ""
        extra = "".join(f" {k}={details[k]}" for k in ("keep", "policy", "restored_version") if k in details)
        lines.append(f'<tr class="kind-{escape(r["kind"])}" data-id="{r["id"]}"><td>{when(r["at"])}</td>'
                     f'<td>{escape(who(r))}</td><td>{escape(r.get("device") or "-")}</td><td>{escape(r["kind"])}</td>'
                     f'<td><code>{escape(r.get("path") or "-")}</code>{version}'
                     f'{" (deleted)" if details.get("deleted") else ""}{escape(extra)}</td></tr>')
    return (form + '<table class="activity"><tr><th>when</th><th>who</th><th>device</th><th>kind</th><th>what</th></tr>'
            + "".join(lines) + "</table>"
            + (f'<p class="meta">the latest {SHOWN_ROWS} of {len(rows)}: filter to see others</p>'
               if len(rows) > SHOWN_ROWS else ""))


def devices(rows: list[dict]) -> str:
    if not rows:
        return _empty("no devices yet")
    out = []
    for d in rows:
        status = d["status"] or "no daemon"
        behind = "-" if d["behind"] is None else (
            "up to date" if not d["behind"] else f"{count(d['behind'], 'version')} ({duration(d['lag_seconds'])})")
        out.append(f'<tr><td>{escape(d["device"])}</td><td>{escape(d["owner"] or "-")}</td>'
                   f'<td class="{escape(status)}">{escape(status)}</td><td>{escape(d["version"] or "-")}</td>'
                   f'<td>{when(d["heartbeat_at"] or d["last_seen"])}</td><td>{escape(behind)}</td></tr>')
    return ('<table class="devices"><tr><th>device</th><th>owner</th><th>daemon</th><th>syncd</th>'
            '<th>last heard</th><th>behind</th></tr>' + "".join(out) + "</table>")


def analytics(stats: dict) -> str:
    return "".join(f'<div class="chart-block"><h3>{escape(title)}</h3>{html}</div>' for title, html in charts(stats))

