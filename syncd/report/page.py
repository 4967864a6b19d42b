"""`syncd report --html`: the pipeline analytics as one self-contained page (inline CSS and
SVG, no script), a pure function of what the store's views returned."""
from __future__ import annotations

import datetime
from html import escape

from syncd.report.charts import grouped_columns, hbars, stacked_columns
from syncd.report.units import count, duration, percent

# the IDSE stages in pipeline order, as the store's syncd.stages() lists them
STAGES = ["intent", "context", "spec", "plan", "tasks", "implementation", "feedback"]

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 760px; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0; } h2 { font-size: 1.15em; margin-top: 2em; }
.meta { color: #666; } .empty { color: #888; font-style: italic; }
table { border-collapse: collapse; margin: .5em 0; } th, td { padding: 3px 10px; text-align: left; }
th { border-bottom: 1px solid #bbb; } td.n { text-align: right; } .started { color: #2e7d32; }
.silent, .offline, .paused { color: #c62828; } .held { color: #ef6c00; }
"""


def charts(stats: dict) -> list[tuple[str, str]]:
    """The analytics as (title, HTML): the report's, and the dashboard's kept current."""
    return [
        ("Stage completion per project", _completion(stats["stage_completion"])),
        ("Activity over time", _activity(stats["edits_per_day"])),
        ("Lead time, intent to feedback", _lead_times(stats["lead_times"])),
        ("Time per stage (median)", _stage_times(stats["stage_times"])),
        ("Concurrent edits", _conflicts(stats["conflict_rates"])),
    ]


def render(workspace: str, stats: dict, sessions: list[dict], generated: datetime.datetime) -> str:
    [completion, *others] = charts(stats)
    sections = [completion, ("Sessions", _sessions(sessions)), *others, ("Devices", _devices(stats["devices"]))]
    body = "".join(f"<section><h2>{escape(title)}</h2>{html}</section>" for title, html in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<title>syncd report: {escape(workspace)}</title><style>{STYLE}</style></head><body>'
            f'<h1>Pipeline report: {escape(workspace)}</h1>'
            f'<p class="meta">generated {generated:%Y-%m-%d %H:%M %Z} by syncd</p>{body}</body></html>\n')


def _empty(text: str) -> str:
    return f'<p class="empty">{escape(text)}</p>'


def _table(head: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    cells = "".join(f"<th>{escape(h)}</th>" for h in head)
    lines = "".join("<tr>" + "".join(f'<td{" class=n" if i in numeric else ""}>{c}</td>' for i, c in enumerate(r))
                    + "</tr>" for r in rows)
    return f"<table><tr>{cells}</tr>{lines}</table>"


def _completion(rows: list[dict]) -> str:
    if not rows:
        return _empty("no sessions yet")
    projects = list(dict.fromkeys(r["project"] for r in rows))
    values = {(r["stage"], r["project"]): 100 * float(r["completion"]) for r in rows}
    captions = {(r["stage"], r["project"]): f"{r['started']} of {count(r['sessions'], 'session')}" for r in rows}
    return grouped_columns("Share of sessions that started each stage, per project (%)", STAGES, projects,
                           values, 100, captions)


def _sessions(sessions: list[dict]) -> str:
    if not sessions:
        return _empty("no sessions yet")
    rows = []
    for s in sessions:
        cells = [escape(f"{s['project']}/{s['session']}") + (" *" if s["current"] else "")]
        for stage in STAGES:
            st = (s["stages"] or {}).get(stage, {})
            started = st.get("status") == "started"
            tip = f"last edited by {st.get('last_edited_by')}" if started else "pending"
            cells.append(f'<span class="{"started" if started else "pending"}" title="{escape(tip)}">'
                         f'{"●" if started else "·"}</span>')
        rows.append(cells)
    note = '<p class="meta">* the project\'s current session</p>' if any(s["current"] for s in sessions) else ""
    return _table(["session", *(s[:4] for s in STAGES)], rows) + note


def _activity(rows: list[dict]) -> str:
    if not rows:
        return _empty("no edits yet")
    first = datetime.date.fromisoformat(min(r["day"] for r in rows))
    last = datetime.date.fromisoformat(max(r["day"] for r in rows))
    days = [(first + datetime.timedelta(n)).isoformat() for n in range((last - first).days + 1)]
    authors = sorted({r["author"] for r in rows})
    series = {a: [0.0] * len(days) for a in authors}
    index = {d: i for i, d in enumerate(days)}
    for r in rows:
        series[r["author"]][index[r["day"]]] += r["edits"]
    return stacked_columns("Edits per day, by author", [d[5:] for d in days], series)


def _lead_times(rows: list[dict]) -> str:
    done = [r for r in rows if r["seconds"] is not None]
    waiting = [f"{r['project']}/{r['session']}" for r in rows if r["seconds"] is None]
    html = (hbars("Lead time from intent to feedback, per session",
                  [(f"{r['project']}/{r['session']}", float(r["seconds"]), duration(r["seconds"])) for r in done],
                  colour="#59a14f") if done else _empty("no session has reached feedback yet"))
    if waiting:
        html += f'<p class="meta">without feedback yet: {escape(", ".join(waiting))}</p>'
    return html


def _stage_times(rows: list[dict]) -> str:
    if not rows:
        return _empty("no stage started yet")
    return hbars("Median time from a stage's start to the next stage's start",
                 [(f"{r['project']}: {r['stage']}", float(r["median_seconds"]),
                   f"{duration(r['median_seconds'])} ({count(r['sessions'], 'session')})") for r in rows],
                 colour="#f28e2b")


def _conflicts(rows: list[dict]) -> str:
    if not rows:
        return _empty("no edits yet")
    return _table(["project", "edits", "merged", "held as conflicts", "rate"],
                  [[escape(r["project"] or "(workspace)"), str(r["edits"]), str(r["merged"]), str(r["conflicts"]),
                    percent(r["rate"])] for r in rows], numeric={1, 2, 3, 4})


def _utc(iso: str | None) -> str:
    if not iso:
        return "-"
    return datetime.datetime.fromisoformat(iso).astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")


def _devices(rows: list[dict]) -> str:
    if not rows:
        return _empty("no devices yet")
    out = []
    for d in rows:
        status = d["status"] or "no daemon"
        behind = "-" if d["behind"] is None else (
            "up to date" if not d["behind"] else f"{count(d['behind'], 'version')}, {duration(d['lag_seconds'])}")
        out.append([escape(d["device"]), escape(d["owner"] or "-"), f'<span class="{escape(status)}">'
                    f'{escape(status)}</span>', escape(d["version"] or "-"), _utc(d["heartbeat_at"] or d["last_seen"]),
                    escape(behind)])
    return _table(["device", "owner", "daemon", "version", "last heard (UTC)", "behind"], out)
