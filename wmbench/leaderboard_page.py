"""The leaderboard as one static HTML page (tables, a success-vs-planning-time plot) and as Markdown.

The board is the JSON of ``schemas/leaderboard.schema.json``. Per goal-reaching env: the standard
entries ranked by success, the oracle, expert and random bounds, the custom-protocol entries apart, and a
plot of success against planning time. Then PHYRE, per split and fold: the entries ranked by
AUCCESS, the bounds and the custom-protocol entries. Every entry and bound says whether it was
reproduced (``wmbench verify``: where, when, how many outcomes agreed) or is self-reported. The page
is self-contained: inline CSS, SVG and a small script, no network.
"""

from __future__ import annotations

import base64
import hashlib
import math
from html import escape
from typing import Any, Callable, NamedTuple

from wmbench.leaderboard import score
from wmbench.protocol import GOAL_REACHING

DISPLAY_NAMES = {"pusht": "Push-T", "tworoom": "Two-Room", "reacher": "Reacher", "cube": "Cube"}
PHYRE = "phyre"
SPLIT_NAMES = {"within": "Within-template", "cross": "Cross-template"}
PHYRE_NOTE = ("AUCCESS ×100 on the fold's test tasks (up to 100 valid attempts each, early solutions weigh most), "
              "with its bootstrap 95% interval over tasks, and the share of tasks solved within 100 attempts. "
              "Over several folds (PHYRE's own figure): the mean of the folds' AUCCESS ± its standard deviation over the folds.")
MIN_PLOT_SECONDS = 1e-3  # the log axis puts faster plans at one millisecond

Entry = dict[str, Any]
Scale = Callable[[float], float]

# ---------------------------------------------------------------------- data


def env_order(entries: list[Entry]) -> list[str]:
    """The four goal-reaching wmbench envs first (always, so a new board shows where to submit), then others
    alphabetically; PHYRE has its own section."""
    others = sorted({entry["env"] for entry in entries} - DISPLAY_NAMES.keys() - {PHYRE})
    return [*DISPLAY_NAMES, *others]


def phyre_places(entries: list[Entry]) -> list[tuple[str, int | None, tuple[int, ...] | None]]:
    """The (split, fold, folds) places with PHYRE entries: within-template first, single folds by fold, then entries
    over several folds (``folds``; their ``fold`` is None), which have tables of their own."""
    places = {(entry["split"], entry["fold"], tuple(entry["folds"]) if entry.get("folds") else None) for entry in entries if entry["env"] == PHYRE}
    return sorted(places, key=lambda place: (list(SPLIT_NAMES).index(place[0]), place[2] is not None, place[2] or (), place[1] or 0))


def place_name(split: str, fold: int | None, folds: tuple[int, ...] | None = None) -> str:
    if folds:
        return f"{SPLIT_NAMES[split]}, mean over folds {', '.join(map(str, folds))}"
    return f"{SPLIT_NAMES[split]}, fold {fold}"


def place_filter(split: str, fold: int | None, folds: tuple[int, ...] | None) -> dict[str, Any]:
    """``tables_of``'s fields of a PHYRE place: single-fold entries carry no ``folds``."""
    return {"env": PHYRE, "split": split, "fold": fold, "folds": list(folds) if folds else None}


def display_name(env: str) -> str:
    """``Push-T`` for ``pusht``; an unknown env keeps its own name."""
    return DISPLAY_NAMES.get(env, env)


def ranked(entries: list[Entry]) -> list[Entry]:
    """Best score (success rate or AUCCESS) first; ties go to the faster planner, then by name."""
    return sorted(entries, key=lambda e: (-score(e), e["planning"]["episode_plan_s"] if "planning" in e else 0.0, e["model"]))


def rank(entry: Entry, entries: list[Entry]) -> int:
    """Competition rank by score: equal scores share a rank (1, 2, 2, 4)."""
    return 1 + sum(score(other) > score(entry) for other in entries)


def tables_of(entries: list[Entry], **where: Any) -> tuple[list[Entry], list[Entry], list[Entry]]:
    """The standard, custom and reference entries whose fields match ``where`` (env, and for PHYRE split and fold), best first."""
    chosen = [e for e in entries if all(e.get(key) == value for key, value in where.items())]
    return tuple(ranked([e for e in chosen if e["table"] == table]) for table in ("standard", "custom", "reference"))


def first_link(entry: Entry) -> str | None:
    """The entry's first link, if it is a web address (anything else is never made clickable)."""
    links = [link for link in entry["links"] if link.startswith(("https://", "http://"))]
    return links[0] if links else None


# ---------------------------------------------------------------------- text


def percent(rate: float) -> str:
    return f"{100 * rate:.1f}%"


def interval_text(entry: Entry) -> str:
    """``(12.8–35.2)``: the 95% interval x 100 (Wilson for a success rate, bootstrap for AUCCESS)."""
    if entry["env"] == PHYRE and "spread" in entry["auccess"]:  # several folds: PHYRE's mean ± standard deviation
        return f"± {100 * entry['auccess']['spread']:.1f}"
    lo, hi = (entry["auccess"] if entry["env"] == PHYRE else entry["success"])["ci95"]
    return f"({100 * lo:.1f}–{100 * hi:.1f})"


def score_figure(entry: Entry) -> str:
    """``22.0%`` for a success rate, ``13.7`` for AUCCESS (x 100, as PHYRE reports it)."""
    return f"{100 * score(entry):.1f}" if entry["env"] == PHYRE else percent(score(entry))


def score_text(entry: Entry) -> str:
    """``22.0% (12.8–35.2)``, or ``13.7 (11.0–16.5)`` for AUCCESS."""
    return f"{score_figure(entry)} {interval_text(entry)}"


def seconds(value: float) -> str:
    """Three significant digits without an exponent: 0.0123, 2.51, 123, 1234."""
    if value <= 0:
        return "0"
    return f"{value:.{max(0, 2 - math.floor(math.log10(value)))}f}"


def parameters_text(count: int | None) -> str:
    """``1.85M``; an em dash when the submitter did not say."""
    if count is None:
        return "—"
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= scale:
            return f"{count / scale:.3g}{suffix}"
    return str(count)


def deviation_lines(deviations: dict[str, list[Any]]) -> list[str]:
    """``["budget: 50 → 100", "horizon: 5 → 8"]``: each setting changed from the standard protocol."""
    return [f"{setting}: {standard} → {submitted}" for setting, (standard, submitted) in sorted(deviations.items())]


def deviations_text(deviations: dict[str, list[Any]]) -> str:
    """``budget: 50 → 100; horizon: 5 → 8``."""
    return "; ".join(deviation_lines(deviations))


def pairs_text(entry: Entry) -> str:
    """``50 of 200``: the evaluation-set pairs a goal-reaching run was measured on."""
    return f"{entry['success']['episodes']} of {GOAL_REACHING.pairs}"


def bounds_text(references: list[Entry]) -> str:
    """``oracle 96.0% (91.2–98.4) — cem 300x30, ..., 50 of 200 pairs; random 2.0% (0.4–7.0) — ...``: a goal-reaching
    bound says how it planned and on how many pairs, since a bound is only as high as its search."""
    def how(ref: Entry) -> str:
        return f" — {ref['planner']}, {pairs_text(ref)} pairs" if "planner" in ref else ""
    return "; ".join(f"{ref['model']} {score_text(ref)}{how(ref)}" for ref in ranked(references))


def optional_text(text: str | None) -> str:
    """The text, or an em dash when there is none."""
    return "—" if text is None else text


def agreed_text(reproduction: dict[str, Any]) -> str:
    """``50/50 agree``: the episodes (PHYRE: tasks) whose outcome was the same when run again."""
    episodes = reproduction["episodes"]
    return f"{round(reproduction['agreement'] * episodes)}/{episodes} agree"


def reproduction_text(entry: Entry) -> str:
    """``reproduced on AMD EPYC (CPU, 2 threads), 2026-12-06: 50/50 agree``, ``not reproduced ...`` or ``self-reported``."""
    reproduction = entry["reproduction"]
    if reproduction["status"] == "self-reported":
        return "self-reported"
    return f"{reproduction['status'].replace('-', ' ')} on {reproduction['device']}, {reproduction['date']}: {agreed_text(reproduction)}"


def bounds_reproduction_text(references: list[Entry]) -> str:
    """``oracle reproduced on ...: 50/50 agree; random self-reported``."""
    return "; ".join(f"{ref['model']} {reproduction_text(ref)}" for ref in ranked(references))


# ---------------------------------------------------------------------- HTML

STYLE = """
:root { --text: #1f2328; --muted: #656d76; --line: #d8dee4; --soft: #f6f8fa; --accent: #2f5fb3; --custom: #b7600e; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--text); background: #fff; line-height: 1.45;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1320px; margin: 0 auto; padding: 32px 28px 64px; }
header h1 { margin: 0 0 4px; font-size: 28px; font-weight: 650; letter-spacing: -0.01em; }
header p { margin: 4px 0; color: var(--muted); }
nav { margin: 14px 0 8px; display: flex; gap: 6px; flex-wrap: wrap; }
nav a { padding: 3px 12px; border: 1px solid var(--line); border-radius: 999px; color: var(--text); text-decoration: none; font-size: 14px; }
nav a:hover { background: var(--soft); }
section { margin-top: 40px; padding-top: 8px; border-top: 1px solid var(--line); }
h2 { font-size: 22px; font-weight: 620; margin: 12px 0 12px; }
h3 { font-size: 17px; font-weight: 620; margin: 28px 0 8px; }
.custom h3, .custom h4 { font-size: 15px; font-weight: 620; margin: 24px 0 8px; color: var(--custom); }
.note { margin: 0 0 8px; color: var(--muted); }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; min-width: 960px; font-size: 14px; }
th, td { padding: 7px 8px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
thead th { font-weight: 600; color: var(--muted); font-size: 12.5px; text-transform: uppercase; letter-spacing: 0.03em;
  border-bottom: 2px solid var(--line); vertical-align: bottom; }
thead .label { white-space: nowrap; }
thead .sub { display: block; text-transform: none; letter-spacing: 0; font-weight: 400; font-size: 12px; }
tbody tr:hover { background: var(--soft); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
td.model { font-weight: 600; min-width: 9em; }
td.date { white-space: nowrap; }
td.authors { min-width: 7em; }
td.planner, td.reproduction { min-width: 8.5em; }
td.deviations { min-width: 10em; max-width: 18em; overflow-wrap: break-word; }
.deviation { display: block; }
td.model a { color: var(--accent); text-decoration: none; }
td.model a:hover { text-decoration: underline; }
.device { display: block; color: var(--muted); font-size: 12px; white-space: normal; }
.ci { display: block; color: var(--muted); font-size: 12px; }
th button { all: unset; cursor: pointer; }
th button:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
th[data-sort] .label::after { content: "↕"; margin-left: 4px; opacity: 0.35; }
th[aria-sort="ascending"] .label::after { content: "▲"; opacity: 1; }
th[aria-sort="descending"] .label::after { content: "▼"; opacity: 1; }
th[aria-sort] { color: var(--text); }
.bounds { margin: 10px 0 0; color: var(--muted); font-size: 14px; }
.bounds b { color: var(--text); font-weight: 600; }
.reproduced { color: #1a7f37; }
.not-reproduced { color: #b42318; font-weight: 600; }
.self-reported { color: var(--muted); }
.empty { padding: 18px; background: var(--soft); border-radius: 6px; color: var(--muted); text-align: center; }
.custom table { font-size: 13.5px; }
figure { margin: 24px 0 0; overflow-x: auto; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
footer { margin-top: 48px; color: var(--muted); font-size: 13px; }
@media (max-width: 640px) { main { padding: 20px 14px 48px; } header h1 { font-size: 24px; } }
"""

SCRIPT = """
for (const header of document.querySelectorAll("th[data-sort]")) {
  header.querySelector("button").addEventListener("click", () => sortBy(header));
}
// Numbers numerically, text alphabetically; a cell without a value sorts last either way, and ties keep the rank order.
function sortBy(header) {
  const table = header.closest("table");
  const current = header.getAttribute("aria-sort");
  const descending = current ? current === "ascending" : header.dataset.first === "descending";
  const value = row => row.cells[header.cellIndex].dataset.value;
  const compare = header.dataset.type === "number" ? (a, b) => Number(a) - Number(b) : (a, b) => a.localeCompare(b, undefined, {numeric: true});
  const rankOrder = (a, b) => a.dataset.order - b.dataset.order;
  const rows = Array.from(table.tBodies[0].rows);
  rows.sort((a, b) => {
    const [x, y] = [value(a), value(b)];
    if (!x || !y) return !x - !y || rankOrder(a, b);
    return (descending ? compare(y, x) : compare(x, y)) || rankOrder(a, b);
  });
  table.tBodies[0].append(...rows);
  for (const other of table.querySelectorAll("th[data-sort]")) other.removeAttribute("aria-sort");
  header.setAttribute("aria-sort", descending ? "descending" : "ascending");
}
"""

# The page may run its own script and nothing else: no injected script, no request of any kind.
CONTENT_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    f"script-src 'sha256-{base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()}'"
)


def render_html(board: dict[str, Any]) -> str:
    """The whole leaderboard as one self-contained HTML page."""
    envs = env_order(board["entries"])
    nav = "".join(f'<a href="#{escape(env)}">{escape(display_name(env))}</a>' for env in envs) + f'<a href="#{PHYRE}">PHYRE</a>'
    sections = "\n".join([*(env_section(board["entries"], env) for env in envs), phyre_section(board["entries"])])
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CONTENT_POLICY}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>wmbench leaderboard</title>
<style>{STYLE}</style>
</head>
<body>
<main>
<header>
<h1>wmbench leaderboard</h1>
<p>Protocol version <b data-protocol-version>{int(board["protocol_version"])}</b>.
Success rate on each environment's standard evaluation set, with its Wilson 95% interval; planning time is the mean
wall time of one episode-plan on the device shown. PHYRE puzzles are scored by AUCCESS. <i>Reproduced</i>: run again
with <code>wmbench verify</code> on the device shown, with how many per-episode outcomes agreed; otherwise self-reported.</p>
<nav>{nav}</nav>
</header>
{sections}
<footer>Generated by <code>wmbench</code> from the leaderboard JSON. Oracle (the standard planner with the true simulator), expert (the scripted data policy aimed at the goal, where the env has one) and random are the reference bounds of each environment; on PHYRE, so are ranking balls by size alone (largest-ball) and PHYRE's learned baseline, a network trained on the training tasks (dqn).</footer>
</main>
<script>{SCRIPT}</script>
</body>
</html>
"""


def env_section(entries: list[Entry], env: str) -> str:
    """One goal-reaching env: its standard table (or 'no submissions yet'), bounds, custom table and plot."""
    standard, custom, references = tables_of(entries, env=env)
    parts = [f'<section id="{escape(env)}" data-env="{escape(env)}">', f"<h2>{escape(display_name(env))}</h2>"]
    parts += tables_html(standard, custom, references, f'data-env="{escape(env)}"', GOAL_REACHING_HTML, heading="h3")
    if standard or custom:
        parts.append(f"<figure>{plot_svg(standard, custom, references, env)}"
                     "<figcaption>Success rate against planning time per episode-plan (log scale); bars: 95% intervals.</figcaption></figure>")
    parts.append("</section>")
    return "\n".join(parts)


def phyre_section(entries: list[Entry]) -> str:
    """PHYRE: per split and fold, its standard table ranked by AUCCESS, bounds and custom table."""
    parts = [f'<section id="{PHYRE}" data-env="{PHYRE}">', "<h2>PHYRE</h2>", f'<p class="note">{escape(PHYRE_NOTE)}</p>']
    places = phyre_places(entries)
    for split, fold, folds in places:
        which = "-".join(map(str, folds)) if folds else str(int(fold))
        attributes = f'data-env="{PHYRE}" data-split="{escape(split)}" data-fold="{which}"'
        parts.append(f"<h3>{escape(place_name(split, fold, folds))}</h3>")
        parts += tables_html(*tables_of(entries, **place_filter(split, fold, folds)), attributes, PHYRE_HTML, heading="h4")
    if not places:
        parts.append('<p class="empty">No submissions yet.</p>')
    parts.append("</section>")
    return "\n".join(parts)


def tables_html(standard: list[Entry], custom: list[Entry], references: list[Entry], attributes: str,
                columns: list[HtmlColumn], heading: str) -> list[str]:
    """The standard table (or 'No submissions yet.'), the reference bounds, and the custom-protocol table apart under ``heading``.

    ``attributes`` say which env (and split and fold) the tables are of.
    """
    parts = [ranked_table(standard, f'{attributes} data-table="standard"', columns) if standard else '<p class="empty">No submissions yet.</p>']
    if references:
        parts.append(f'<p class="bounds" {attributes}><b>Reference bounds:</b> {escape(bounds_text(references))}. '
                     f'<span class="device">{escape(bounds_reproduction_text(references))}</span></p>')
    if custom:
        custom_table = ranked_table(custom, f'{attributes} data-table="custom"', columns)
        parts.append(f'<div class="custom"><{heading}>Custom protocol (not comparable with the table above)</{heading}>{custom_table}</div>')
    return parts


class HtmlColumn(NamedTuple):
    """A table column; every column sorts, by a number or by its text alphabetically, and an entry without a value (an em
    dash) sorts last either way."""
    key: str
    label: str
    value: Callable[[Entry], float | str | None]  # what the cell sorts by: a raw number or text, None for nothing
    content: Callable[[Entry], str]  # the cell's HTML
    numeric: bool = False
    css: str = ""  # the cells' class ("num" right-aligns the column)
    first: str = "ascending"  # the order of the first click
    note: str = ""  # a line under the label
    active: bool = False  # the order the rows are rendered in


def header_cell(column: HtmlColumn) -> str:
    """A header whose button sorts the table by the column, in its ``first`` order on the first click."""
    align = ' class="num"' if "num" in column.css.split() else ""
    current = f' aria-sort="{column.first}"' if column.active else ""
    note = f'<span class="sub">{column.note}</span>' if column.note else ""
    return (f'<th{align} data-sort="{column.key}" data-type="{"number" if column.numeric else "text"}" data-first="{column.first}"{current}>'
            f'<button type="button"><span class="label">{column.label}</span>{note}</button></th>')


def body_cell(column: HtmlColumn, entry: Entry) -> str:
    """The entry's cell; ``data-value`` holds what it sorts by: the number as Python writes it, the text, or nothing."""
    value = column.value(entry)
    raw = "" if value is None else escape(value) if isinstance(value, str) else repr(value)
    css = f' class="{column.css}"' if column.css else ""
    return f'<td{css} data-value="{raw}">{column.content(entry)}</td>'


def model_html(entry: Entry) -> str:
    """The model's name, a link to its first web address if it has one."""
    model, link = escape(entry["model"]), first_link(entry)
    return f'<a href="{escape(link)}">{model}</a>' if link else model


def score_column(key: str, label: str, note: str) -> HtmlColumn:
    """The score with its interval: the table's first sort, best first."""
    return HtmlColumn(key, label, score, lambda e: f'{score_figure(e)} <span class="ci">{interval_text(e)}</span>', numeric=True, css="num",
                      first="descending", note=note, active=True)


def planning_html(entry: Entry) -> str:
    """The time per episode-plan, and below it the device and, when not float32, the precision it planned in."""
    planning = entry["planning"]
    precision = "" if planning["precision"] == "float32" else f", {planning['precision']}"
    return f'{seconds(planning["episode_plan_s"])} s<span class="device">{escape(planning["device"])}{precision}</span>'


def reproduction_html(entry: Entry) -> str:
    """✓ and the agreement for a reproduced entry (✗ for one that was not), the device and day below; else self-reported."""
    reproduction = entry["reproduction"]
    if reproduction["status"] == "self-reported":
        return '<span class="self-reported">self-reported</span>'
    mark = "✓" if reproduction["status"] == "reproduced" else "✗ not reproduced:"
    return (f'<span class="{reproduction["status"]}">{mark} {agreed_text(reproduction)}</span>'
            f'<span class="device">{escape(reproduction["device"])}, {escape(reproduction["date"])}</span>')


MODEL = HtmlColumn("model", "Model", lambda e: e["model"], model_html, css="model")
PARAMETERS = HtmlColumn("parameters", "Parameters", lambda e: e["parameters"], lambda e: parameters_text(e["parameters"]), numeric=True, css="num")
REPRODUCED = HtmlColumn("reproduced", "Reproduced", lambda e: e["reproduction"].get("agreement"), reproduction_html, numeric=True,
                        css="reproduction", first="descending")
DATE = HtmlColumn("date", "Date", lambda e: e["date"], lambda e: escape(e["date"]), css="date", first="descending")
AUTHORS = HtmlColumn("authors", "Authors", lambda e: ", ".join(e["authors"]) or None, lambda e: escape(", ".join(e["authors"])), css="authors")
DEVIATIONS = HtmlColumn("deviations", "Deviations", lambda e: deviations_text(e["deviations"]) or None,
                        lambda e: "".join(f'<span class="deviation">{escape(line)}</span>' for line in deviation_lines(e["deviations"])),
                        css="deviations", note="standard → submitted")
GOAL_REACHING_HTML: list[HtmlColumn] = [
    score_column("success", "Success", "95% interval"),
    HtmlColumn("pairs", "Pairs", lambda e: e["success"]["episodes"], pairs_text, numeric=True, css="num", first="descending",
               note="of the evaluation set"),
    HtmlColumn("planning", "Planning", lambda e: e["planning"]["episode_plan_s"], planning_html, numeric=True, css="num", note="per episode-plan"),
    PARAMETERS,
    HtmlColumn("planner", "Planner", lambda e: e["planner"], lambda e: escape(e["planner"]), css="planner"),
]
PHYRE_HTML: list[HtmlColumn] = [
    score_column("auccess", "AUCCESS", "×100, 95% interval"),
    HtmlColumn("solved", "Solved", lambda e: e["auccess"]["solved_within_100"], lambda e: percent(e["auccess"]["solved_within_100"]), numeric=True,
               css="num", first="descending", note="within 100 attempts"),
    HtmlColumn("tasks", "Tasks", lambda e: e["auccess"]["tasks"], lambda e: str(e["auccess"]["tasks"]), numeric=True, css="num", first="descending"),
    PARAMETERS,
    HtmlColumn("device", "Device", lambda e: e["device"], lambda e: escape(optional_text(e["device"]))),
]


def ranked_table(entries: list[Entry], attributes: str, columns: list[HtmlColumn]) -> str:
    """Rank and model, the deviations when any entry has some (beside the model: they say what the row measured),
    ``columns``, reproduction, date and authors.

    Rows carry their rank order in ``data-order``: the rank column sorts back to it, and ties in any other keep it.
    """
    ranks = HtmlColumn("rank", "Rank", lambda e: rank(e, entries), lambda e: str(rank(e, entries)), numeric=True, css="num")
    shown = [ranks, MODEL, *([DEVIATIONS] if any(e["deviations"] for e in entries) else []), *columns, REPRODUCED, DATE, AUTHORS]
    rows = [f'<tr data-model="{escape(entry["model"])}" data-order="{order}">{"".join(body_cell(column, entry) for column in shown)}</tr>'
            for order, entry in enumerate(entries)]
    return (f'<div class="table-wrap"><table {attributes}><thead><tr>{"".join(header_cell(column) for column in shown)}</tr></thead>\n<tbody>\n'
            + "\n".join(rows) + "\n</tbody></table></div>")


# ---------------------------------------------------------------------- plot

WIDTH, HEIGHT = 800, 440
LEFT, RIGHT, TOP, BOTTOM = 72, 784, 44, 380  # the plot area inside the SVG
FONT_SIZE = 14  # the SVG's text, in its own units: CSS pixels when the plot is drawn WIDTH wide
CHARACTER_WIDTH = 0.55 * FONT_SIZE  # a system-ui label's mean character width
MIN_TEXT_PX = 10  # the smallest text the plot may show
MIN_WIDTH = math.ceil(WIDTH * MIN_TEXT_PX / FONT_SIZE)  # never drawn narrower: a narrow page scrolls the figure instead


def log_span(times: list[float]) -> tuple[float, float]:
    """The log10 range of the x axis: the data with a margin, never empty (equal times still get a span)."""
    lo, hi = math.log10(min(times)), math.log10(max(times))
    margin = max(0.12 * (hi - lo), 0.3)
    return lo - margin, hi + margin


def time_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 steps over up to three decades, powers of ten beyond."""
    steps = (1, 2, 5) if hi - lo <= 3 else (1,)
    ticks = (step * 10.0**k for k in range(math.floor(lo), math.ceil(hi) + 1) for step in steps)
    return [tick for tick in ticks if lo <= math.log10(tick) <= hi]


def plot_svg(standard: list[Entry], custom: list[Entry], references: list[Entry], env: str) -> str:
    """Success (with its 95% interval) against planning time on a log axis, the bounds as dashed lines."""
    plotted = [(entry, "standard") for entry in standard] + [(entry, "custom") for entry in custom]
    lo, hi = log_span([max(entry["planning"]["episode_plan_s"], MIN_PLOT_SECONDS) for entry, _ in plotted])

    def x(plan_s: float) -> float:
        return LEFT + (math.log10(max(plan_s, MIN_PLOT_SECONDS)) - lo) / (hi - lo) * (RIGHT - LEFT)

    def y(rate: float) -> float:
        return BOTTOM - rate * (BOTTOM - TOP)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" style="min-width: {MIN_WIDTH}px; max-width: {WIDTH}px" '
             f'role="img" data-env="{escape(env)}" aria-label="{escape(display_name(env))}: success against planning time" '
             f'font-family="system-ui, sans-serif" font-size="{FONT_SIZE}">']
    parts += axes(time_ticks(lo, hi), x, y)
    at_rate: dict[float, list[Entry]] = {}  # bounds at the same rate share a line and a label (expert and oracle at 100%)
    for ref in ranked(references):
        at_rate.setdefault(ref["success"]["rate"], []).append(ref)
    parts += [reference_line(refs, y(rate)) for rate, refs in at_rate.items()]
    parts += [point(entry, table, x(entry["planning"]["episode_plan_s"]), y) for entry, table in plotted]
    parts.append(legend(bool(custom)))
    parts.append("</svg>")
    return "\n".join(parts)


def axes(ticks: list[float], x: Scale, y: Scale) -> list[str]:
    """Grid, tick labels and axis titles."""
    parts = []
    for percent_tick in range(0, 101, 20):
        py = y(percent_tick / 100)
        parts.append(f'<line x1="{LEFT}" x2="{RIGHT}" y1="{py:.1f}" y2="{py:.1f}" stroke="#eaeef2"/>')
        parts.append(f'<text x="{LEFT - 8}" y="{py + 5:.1f}" text-anchor="end" fill="#656d76">{percent_tick}%</text>')
    for tick in ticks:
        px = x(tick)
        parts.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{TOP}" y2="{BOTTOM}" stroke="#eaeef2"/>')
        parts.append(f'<text x="{px:.1f}" y="{BOTTOM + 20}" text-anchor="middle" fill="#656d76">{tick:g} s</text>')
    parts.append(f'<rect x="{LEFT}" y="{TOP}" width="{RIGHT - LEFT}" height="{BOTTOM - TOP}" fill="none" stroke="#aab3bd"/>')
    parts.append(f'<text x="{(LEFT + RIGHT) / 2}" y="{HEIGHT - 12}" text-anchor="middle" fill="#1f2328">'
                 "planning time per episode-plan (log scale)</text>")
    parts.append(f'<text transform="translate(20 {(TOP + BOTTOM) / 2}) rotate(-90)" text-anchor="middle" fill="#1f2328">success rate</text>')
    return parts


def reference_line(references: list[Entry], py: float) -> str:
    """Bounds at one rate as a dashed line across the plot, labelled with their names and the rate."""
    models = escape(", ".join(ref["model"] for ref in references))
    return (f'<g class="reference" data-model="{models}">'
            f'<line x1="{LEFT}" x2="{RIGHT}" y1="{py:.1f}" y2="{py:.1f}" stroke="#6e7781" stroke-width="1.2" stroke-dasharray="6 4"/>'
            f'<text x="{RIGHT - 6}" y="{py - 5:.1f}" text-anchor="end" fill="#57606a" font-style="italic">'
            f'{models} {percent(references[0]["success"]["rate"])}</text></g>')


def point(entry: Entry, table: str, px: float, y: Scale) -> str:
    """One entry: a marker (circle: standard, hollow diamond: custom), its error bar and its name."""
    color = "#2f5fb3" if table == "standard" else "#b7600e"
    lo, hi = (y(bound) for bound in entry["success"]["ci95"])
    py = y(entry["success"]["rate"])
    if table == "standard":
        marker = f'<circle cx="{px:.1f}" cy="{py:.1f}" r="5" fill="{color}"/>'
    else:
        marker = (f'<path d="M{px:.1f} {py - 6:.1f} L{px + 6:.1f} {py:.1f} L{px:.1f} {py + 6:.1f} L{px - 6:.1f} {py:.1f} Z" '
                  f'fill="#fff" stroke="{color}" stroke-width="2"/>')
    near_right = px + 10 + CHARACTER_WIDTH * len(entry["model"]) > RIGHT
    label_x = px - 10 if near_right else px + 10
    model = escape(entry["model"])
    return (f'<g class="point" data-model="{model}" data-table="{table}">'
            f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{lo:.1f}" y2="{hi:.1f}" stroke="{color}" stroke-width="1.5"/>'
            f'<line x1="{px - 4:.1f}" x2="{px + 4:.1f}" y1="{lo:.1f}" y2="{lo:.1f}" stroke="{color}" stroke-width="1.5"/>'
            f'<line x1="{px - 4:.1f}" x2="{px + 4:.1f}" y1="{hi:.1f}" y2="{hi:.1f}" stroke="{color}" stroke-width="1.5"/>'
            f"{marker}"
            f'<text x="{label_x:.1f}" y="{py + 5:.1f}" text-anchor="{"end" if near_right else "start"}" fill="#1f2328" '
            f'paint-order="stroke" stroke="#fff" stroke-width="3">{model}</text></g>')


def legend(with_custom: bool) -> str:
    """The marker key above the plot."""
    items = ['<circle cx="6" cy="-5" r="5" fill="#2f5fb3"/><text x="16" y="0">standard protocol</text>']
    if with_custom:
        x = 16 + CHARACTER_WIDTH * len("standard protocol") + 24  # the diamond's centre, past the first label
        items.append(f'<path d="M{x:.1f} -11 L{x + 6:.1f} -5 L{x:.1f} 1 L{x - 6:.1f} -5 Z" fill="#fff" stroke="#b7600e" stroke-width="2"/>'
                     f'<text x="{x + 12:.1f}" y="0">custom protocol</text>')
    return f'<g transform="translate({LEFT} {TOP - 16})" fill="#1f2328">{"".join(items)}</g>'


# ---------------------------------------------------------------------- Markdown


def render_markdown(board: dict[str, Any]) -> str:
    """One Markdown table per env under a level-3 heading (it sits inside a README section), ranked by
    success, with the bounds and any custom-protocol table; then PHYRE, a table per split and fold."""
    entries = board["entries"]
    lines = [f"Protocol version {int(board['protocol_version'])}. Success rate with its "
             "Wilson 95% interval; planning time is the mean seconds per episode-plan on the device shown. "
             "Reproduced: run again with `wmbench verify` on the device shown, with how many per-episode outcomes agreed; "
             "otherwise self-reported.", ""]
    for env in env_order(entries):
        lines += [f"### {markdown_text(display_name(env))}", "", *markdown_tables(*tables_of(entries, env=env), GOAL_REACHING_MARKDOWN), ""]
    lines += ["### PHYRE", "", PHYRE_NOTE, ""]
    places = phyre_places(entries)
    for split, fold, folds in places:
        lines += [f"#### {place_name(split, fold, folds)}", "", *markdown_tables(*tables_of(entries, **place_filter(split, fold, folds)), PHYRE_MARKDOWN), ""]
    if not places:
        lines += ["No submissions yet.", ""]
    return "\n".join(lines)


MarkdownColumn = tuple[str, str, Callable[[Entry], str]]  # header, alignment (--- or ---:), cell text

GOAL_REACHING_MARKDOWN: list[MarkdownColumn] = [
    ("success (95% CI)", "---", score_text),
    ("pairs", "---:", pairs_text),
    ("planning s/episode-plan", "---:", lambda e: seconds(e["planning"]["episode_plan_s"])),
    ("precision", "---", lambda e: e["planning"]["precision"]),
    ("device", "---", lambda e: markdown_text(e["planning"]["device"])),
    ("parameters", "---:", lambda e: parameters_text(e["parameters"])),
    ("reproduced", "---", lambda e: markdown_text(reproduction_text(e))),
]
PHYRE_MARKDOWN: list[MarkdownColumn] = [
    ("AUCCESS ×100 (95% CI)", "---", score_text),
    ("solved within 100", "---:", lambda e: percent(e["auccess"]["solved_within_100"])),
    ("tasks", "---:", lambda e: str(e["auccess"]["tasks"])),
    ("device", "---", lambda e: markdown_text(optional_text(e["device"]))),
    ("parameters", "---:", lambda e: parameters_text(e["parameters"])),
    ("date", "---", lambda e: e["date"]),
    ("reproduced", "---", lambda e: markdown_text(reproduction_text(e))),
]


def markdown_tables(standard: list[Entry], custom: list[Entry], references: list[Entry], columns: list[MarkdownColumn]) -> list[str]:
    """The standard table (or 'No submissions yet.'), the bounds, and the custom-protocol table apart."""
    lines = markdown_table(standard, columns) if standard else ["No submissions yet."]
    if references:
        lines += ["", f"Bounds: {markdown_text(bounds_text(references))}. {markdown_text(bounds_reproduction_text(references))}."]
    if custom:
        lines += ["", "Custom protocol (not comparable with the table above):", "", *markdown_table(custom, columns)]
    return lines


def markdown_table(entries: list[Entry], columns: list[MarkdownColumn]) -> list[str]:
    """Rank, model (linked), ``columns``; a deviations column when any entry has one."""
    deviations = any(entry["deviations"] for entry in entries)
    lines = ["| rank | model | " + " | ".join(header for header, _, _ in columns) + " |" + (" deviations |" if deviations else ""),
             "| ---: | --- | " + " | ".join(align for _, align, _ in columns) + " |" + (" --- |" if deviations else "")]
    for entry in entries:
        link, model = first_link(entry), markdown_text(entry["model"])
        cells = [str(rank(entry, entries)), f"[{model}]({link.replace(' ', '%20').replace(')', '%29')})" if link else model,
                 *(cell(entry) for _, _, cell in columns)]
        if deviations:
            cells.append(markdown_text(deviations_text(entry["deviations"])))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


MARKDOWN_SYNTAX = "\\`*_[]~|"  # backslash-escaped: emphasis, code, links and table cells stay text


def markdown_text(text: str) -> str:
    """Text safe in a table cell: HTML escaped (renderers pass raw HTML through), Markdown syntax backslash-escaped, one line."""
    escaped = "".join(f"\\{char}" if char in MARKDOWN_SYNTAX else char for char in escape(text, quote=False))
    return " ".join(escaped.splitlines())


README_START, README_END = "<!-- leaderboard:start -->", "<!-- leaderboard:end -->"


def with_markdown_block(text: str, markdown: str, source: str = "the file") -> str:
    """``text`` with the tables between the leaderboard start and end comments replaced by ``markdown``."""
    if README_START not in text or README_END not in text:
        raise ValueError(f"{source} has no {README_START} ... {README_END} block to fill; add those two lines where the table goes")
    before, rest = text.split(README_START, 1)
    return f"{before}{README_START}\n{markdown}{README_END}{rest.split(README_END, 1)[1]}"
