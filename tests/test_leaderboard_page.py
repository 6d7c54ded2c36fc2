"""The leaderboard page: HTML and Markdown of a synthetic board (goal-reaching envs and PHYRE), reproduced and self-reported
entries, escaping, and the page in a real headless Chromium."""

from __future__ import annotations

import base64
import html
import math
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from wmbench.leaderboard_page import render_html, render_markdown
from wmbench.eval.results import validate

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
HOSTILE = "<script>window.injected = 1</script> Smith & Sons"
MARKDOWN_HOSTILE = "**Best** _model_ [paper](https://evil.example) `x` ~~y~~ \\ | 1 |"
EMPTY = {"format": 1, "protocol_version": 1, "entries": []}
SELF_REPORTED = {"status": "self-reported"}


def reproduced(agreement: float = 1.0, episodes: int = 50, status: str = "reproduced") -> dict:
    return {"status": status, "device": "AMD EPYC (CPU, 2 threads)", "date": "2026-12-06", "agreement": agreement, "episodes": episodes}


def entry(model: str, env: str, rate: float, plan_s: float, table: str = "standard", **fields) -> dict:
    """A schema-valid entry over 50 episodes, its interval 12 points either side."""
    return {
        "model": model, "env": env, "protocol_version": 1, "table": table,
        "success": {"rate": rate, "successes": round(50 * rate), "episodes": 50, "ci95": [max(0.0, rate - 0.12), min(1.0, rate + 0.12)]},
        "planning": {"episode_plan_s": plan_s, "device": "cpu (2 cores)", "precision": "float32"},
        "parameters": 1_850_000, "checkpoint_sha256": None, "eval_set_sha256": "a" * 64, "results_sha256": "b" * 64, "run_sha256": "c" * 64,
        "wmbench_version": "0.1.0", "date": "2025-01-15", "authors": ["A. Author"], "links": [], "reproduction": SELF_REPORTED,
        "planner": "cem 300x30, horizon 5", "deviations": {}, **fields,
    }


def phyre_entry(model: str, split: str, fold: int, value: float, solved: float, table: str = "standard", tasks: int = 200, **fields) -> dict:
    """A schema-valid PHYRE entry, its interval 3 points either side."""
    return {
        "model": model, "env": "phyre", "protocol_version": 1, "table": table, "split": split, "fold": fold,
        "agent": model if table == "reference" else "world-model",
        "auccess": {"value": value, "ci95": [max(0.0, value - 0.03), min(1.0, value + 0.03)], "solved_within_100": solved, "tasks": tasks},
        "parameters": None if table == "reference" else 1_850_000, "checkpoint_sha256": None,
        "device": None if table == "reference" else "NVIDIA H100", "results_sha256": "b" * 64, "run_sha256": "c" * 64, "wmbench_version": "0.1.0",
        "date": "2025-02-01", "authors": [], "links": [], "reproduction": SELF_REPORTED, "deviations": {}, **fields,
    }


@pytest.fixture(scope="module")
def board() -> dict:
    entries = [
        entry("LeWM", "pusht", 0.62, 2.51, links=["https://example.org/lewm"], reproduction=reproduced()),
        entry("PLDM", "pusht", 0.40, 9.8, parameters=None, reproduction=reproduced(0.94, status="not-reproduced")),
        entry(HOSTILE, "pusht", 0.22, 0.35),
        entry("DINO-WM", "pusht", 0.74, 31.0, authors=["B. One", "C. Two"]),
        entry("LeWM big budget", "pusht", 0.80, 12.0, table="custom", deviations={"budget": [50, 100]}),
        entry("oracle", "pusht", 0.96, 0.01, table="reference", reproduction=reproduced()),
        entry("random", "pusht", 0.04, 0.0, table="reference"),
        entry("LeWM", "tworoom", 0.88, 0.9),
        entry(MARKDOWN_HOSTILE, "reacher", 0.5, 1.0),
        entry("PLDM", "tworoom", 0.97, 4.2),
        entry("oracle", "tworoom", 1.0, 0.01, table="reference"),
        entry("random", "tworoom", 0.0, 0.0, table="reference"),
        phyre_entry("LeWM", "within", 0, 0.62, solved=0.97, links=["https://example.org/lewm"]),
        phyre_entry("PLDM", "within", 0, 0.55, solved=0.99),
        phyre_entry("LeWM 3 tasks", "within", 0, 0.71, solved=1.0, table="custom", tasks=3, deviations={"tasks": [200, 3]}),
        phyre_entry("oracle", "within", 0, 1.0, solved=1.0, table="reference", reproduction=reproduced(episodes=200)),
        phyre_entry("random", "within", 0, 0.402, solved=0.96, table="reference"),
        phyre_entry("LeWM", "cross", 0, 0.48, solved=0.95),
    ]
    board = {"format": 1, "protocol_version": 1, "entries": entries}
    validate(board, "leaderboard")
    return board


def standard(board: dict, env: str, key: str = "success", split: str = "within") -> list[str]:
    """The env's standard models, best success first or fastest first (key="planning"); for PHYRE (env "phyre", split, fold 0)
    best AUCCESS first or most solved first (key="solved")."""
    entries = [e for e in board["entries"] if e["env"] == env and e["table"] == "standard" and e.get("split", split) == split]
    order = {"success": lambda e: -e["success"]["rate"], "planning": lambda e: e["planning"]["episode_plan_s"],
             "auccess": lambda e: -e["auccess"]["value"], "solved": lambda e: -e["auccess"]["solved_within_100"]}[key]
    return [e["model"] for e in sorted(entries, key=order)]


def svg_coordinates(page: str) -> list[float]:
    return [float(v) for v in re.findall(r'\b(?:x|y|x1|x2|y1|y2|cx|cy)="([^"]*)"', " ".join(re.findall(r"<svg.*?</svg>", page, re.S)))]


def test_html_is_self_contained_and_escaped(board):
    page = render_html(board)
    assert "<title>wmbench leaderboard</title>" in page and "Protocol version <b data-protocol-version>1</b>" in page
    assert HOSTILE not in page and html.escape(HOSTILE) in page
    assert "src=" not in page and "url(" not in page and "@import" not in page  # nothing to fetch
    assert "Custom protocol (not comparable with the table above)" in page and "budget: 50 → 100" in page
    assert '22.0% <span class="ci">(10.0–34.0)</span>' in page and "2.51 s" in page and "1.85M" in page and "—" in page
    assert page.index('id="pusht"') < page.index('id="tworoom"') < page.index('id="reacher"') < page.index('id="cube"') < page.index('id="phyre"')
    assert all(math.isfinite(v) for v in svg_coordinates(page))


def test_html_has_a_phyre_table_per_split_and_fold(board):
    page = render_html(board)
    phyre = page.split('<section id="phyre"')[1]
    assert '<a href="#phyre">PHYRE</a>' in page and "<svg" not in phyre
    assert phyre.index("<h3>Within-template, fold 0</h3>") < phyre.index("<h3>Cross-template, fold 0</h3>")
    within = phyre.split("<h3>Cross-template, fold 0</h3>")[0]
    assert re.findall(r'data-table="standard".*?</table>', within, re.S)[0].count("<tr data-model") == 2
    assert within.index('data-model="LeWM"') < within.index('data-model="PLDM"')  # ranked by AUCCESS
    assert '62.0 <span class="ci">(59.0–65.0)</span>' in within and "97.0%" in within and "NVIDIA H100" in within
    assert "<b>Reference bounds:</b> oracle 100.0 (97.0–100.0); random 40.2 (37.2–43.2)" in within
    assert "<h4>Custom protocol (not comparable with the table above)</h4>" in within and "tasks: 200 → 3" in within
    assert "No submissions yet." in render_html(EMPTY).split('<section id="phyre"')[1]


def test_html_shows_what_was_reproduced(board):
    page = render_html(board)
    pusht = page.split('<section id="pusht"')[1].split("</section>")[0]
    assert '<span class="label">Reproduced</span>' in pusht
    lewm = pusht.split('<tr data-model="LeWM"')[1].split("</tr>")[0]
    assert ('<td class="reproduction" data-value="1.0"><span class="reproduced">✓ 50/50 agree</span>'
            '<span class="device">AMD EPYC (CPU, 2 threads), 2026-12-06</span></td>') in lewm
    pldm = pusht.split('<tr data-model="PLDM"')[1].split("</tr>")[0]
    assert '<td class="reproduction" data-value="0.94"><span class="not-reproduced">✗ not reproduced: 47/50 agree</span>' in pldm
    dino = pusht.split('<tr data-model="DINO-WM"')[1]
    assert '<td class="reproduction" data-value=""><span class="self-reported">self-reported</span></td>' in dino
    assert ("oracle reproduced on AMD EPYC (CPU, 2 threads), 2026-12-06: 50/50 agree; random self-reported" in pusht.split('class="bounds"')[1])
    phyre = page.split('<section id="phyre"')[1]
    assert "oracle reproduced on AMD EPYC (CPU, 2 threads), 2026-12-06: 200/200 agree; random self-reported" in phyre


class Tables(HTMLParser):
    """Every table of a page: its attributes, its header cells and its body rows, each cell with its attributes, its text
    pieces and (a header) whether a button is inside."""

    def __init__(self, page: str):
        super().__init__()
        self.tables: list[dict] = []
        self.cell: dict | None = None
        self.body = False
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append({"attrs": attrs, "head": [], "rows": []})
        elif tag == "tbody":
            self.body = True
        elif tag == "tr" and self.body:
            self.tables[-1]["rows"].append({"attrs": attrs, "cells": []})
        elif tag in ("th", "td"):
            self.cell = {"attrs": attrs, "text": [], "button": False}
            (self.tables[-1]["head"] if tag == "th" else self.tables[-1]["rows"][-1]["cells"]).append(self.cell)
        elif tag == "button" and self.cell is not None:
            self.cell["button"] = True

    def handle_endtag(self, tag):
        if tag in ("th", "td"):
            self.cell = None
        elif tag == "tbody":
            self.body = False

    def handle_data(self, data):
        if self.cell is not None and data.strip():
            self.cell["text"].append(data.strip())


def test_every_column_of_every_table_sorts(board):
    """Every header is a sort button; every body cell carries what it sorts by in data-value: a finite number for a numeric
    column, the text shown for a text column, nothing where the cell shows an em dash or nothing (those sort last)."""
    tables = Tables(render_html(board)).tables
    assert len(tables) == 7  # Push-T standard and custom, Two-Room, Reacher; PHYRE within-template standard and custom, cross-template
    assert [len(table["head"]) for table in tables] == [10, 11, 10, 10, 10, 11, 10]  # custom tables add the deviations
    for table in tables:
        head = [th["attrs"] for th in table["head"]]
        assert all(th["button"] for th in table["head"]) and [th["data-sort"] for th in head][:2] == ["rank", "model"]
        assert all(th["data-type"] in ("number", "text") and th["data-first"] in ("ascending", "descending") for th in head)
        assert [th["data-sort"] for th in head if "aria-sort" in th] in (["success"], ["auccess"])  # the order the rows come in
        assert [int(row["attrs"]["data-order"]) for row in table["rows"]] == list(range(len(table["rows"])))
        for row in table["rows"]:
            assert len(row["cells"]) == len(head)
            for th, td in zip(head, row["cells"]):
                value, shown = td["attrs"]["data-value"], td["text"]
                if shown == ["—"]:
                    assert value == ""
                elif th["data-type"] == "number":
                    assert value == "" or math.isfinite(float(value)), (th["data-sort"], value)
                else:
                    assert value == "; ".join(shown), (th["data-sort"], value, shown)  # deviations: one a line, "; " in the value
        ranks = [int(row["cells"][0]["attrs"]["data-value"]) for row in table["rows"]]
        assert ranks == sorted(ranks)  # sorting by rank gives the rows back their first order
    pusht_custom = tables[1]
    assert [th["attrs"]["data-sort"] for th in pusht_custom["head"]][2] == "deviations"
    assert pusht_custom["rows"][0]["cells"][2]["attrs"]["data-value"] == "budget: 50 → 100"
    pldm = next(row for row in tables[0]["rows"] if row["attrs"]["data-model"] == "PLDM")
    assert [cell["attrs"]["data-value"] for cell in pldm["cells"][:6]] == ["3", "PLDM", "0.4", "50", "9.8", ""]  # no parameters: last


def test_plot_text_is_at_least_10px_on_a_420px_page(board):
    """The SVG scales its text with its width; it is never drawn narrower than its min-width (a narrow page scrolls the figure
    instead), so at 420 px, as at any width, its smallest font is at least 10 CSS px."""
    page = render_html(board)
    style = page.split("<style>")[1].split("</style>")[0]
    assert re.search(r"figure \{[^}]*overflow-x: auto", style) and re.search(r"\.table-wrap \{[^}]*overflow-x: auto", style)
    assert not re.search(r"(svg|text)[^{}]*\{[^}]*font", style)  # the SVG's own font-size attributes are all there is
    svgs = re.findall(r"<svg.*?</svg>", page, re.S)
    assert len(svgs) == 3
    for svg in svgs:
        width = float(re.search(r'viewBox="0 0 ([\d.]+) [\d.]+"', svg)[1])
        min_width = float(re.search(r'<svg[^>]*style="[^"]*min-width: ([\d.]+)px', svg)[1])
        fonts = [float(size) for size in re.findall(r'font-size="([\d.]+)"', svg)]
        assert "font-size:" not in svg and fonts and min_width > 420 - 2 * 14  # wider than a 420 px page's content: it scrolls
        assert min(fonts) * min_width / width >= 10


def test_markdown_shows_what_was_reproduced_and_escapes_names(board):
    text = render_markdown(board)
    pusht = text.split("### Push-T")[1].split("\n### ")[0]
    assert "| 1.85M | reproduced on AMD EPYC (CPU, 2 threads), 2026-12-06: 50/50 agree |" in pusht.split("[LeWM]")[1].splitlines()[0]
    assert "| not reproduced on AMD EPYC (CPU, 2 threads), 2026-12-06: 47/50 agree |" in pusht.split("| PLDM |")[1].splitlines()[0]
    assert "| self-reported |" in pusht.split("| DINO-WM |")[1].splitlines()[0]
    assert ("Bounds: oracle 96.0% (84.0–100.0) — cem 300x30, horizon 5, 50 of 200 pairs; random 4.0% (0.0–16.0) — cem 300x30, horizon 5, 50 of 200 pairs. oracle reproduced on AMD EPYC (CPU, 2 threads), 2026-12-06: "
            "50/50 agree; random self-reported.") in pusht
    [row] = [line for line in text.split("### Reacher")[1].split("\n### ")[0].splitlines() if line.startswith("| 1 |")]
    assert "| \\*\\*Best\\*\\* \\_model\\_ \\[paper\\](https://evil.example) \\`x\\` \\~\\~y\\~\\~ \\\\ \\| 1 \\| |" in row
    assert row.count(" | ") == 8  # nine cells: the escaped pipes open none
    assert "| 1 | LeWM | 48.0 (45.0–51.0) | 95.0% | 200 | NVIDIA H100 | 1.85M | 2025-02-01 | self-reported |" in text


def test_plot_handles_one_entry_equal_times_and_an_empty_board():
    board = {"format": 1, "protocol_version": 1, "entries": [
        entry("solo", "reacher", 0.5, 1.0), entry("twin", "cube", 0.3, 2.0), entry("twin 2", "cube", 0.6, 2.0), entry("instant", "other", 0.1, 0.0)]}
    page = render_html(board)
    assert page.count("<svg") == 3 and all(math.isfinite(v) for v in svg_coordinates(page))
    assert page.index('id="cube"') < page.index('id="other"') and "No submissions yet." in page  # Push-T and Two-Room
    empty = render_html(EMPTY)
    assert empty.count("No submissions yet.") == 5 and "<svg" not in empty  # four envs and PHYRE


def test_markdown_lists_every_standard_entry_by_success(board):
    text = render_markdown(board)
    assert text == render_markdown(board) and "<script>" not in text
    for env, heading in (("pusht", "### Push-T"), ("tworoom", "### Two-Room")):
        ranked = text.split(heading)[1].split("\n### ")[0].split("Custom protocol")[0]
        cells = [row.split(" | ")[1] for row in ranked.splitlines() if re.match(r"\| \d", row)]
        assert [re.sub(r"^\[(.*)\]\(https://[^)]*\)$", r"\1", cell) for cell in cells] == [html.escape(m, quote=False) for m in standard(board, env)]
    assert "| 1 | DINO-WM | 74.0% (62.0–86.0) | 50 of 200 | 31.0 | float32 | cpu (2 cores) | 1.85M |" in text and "[LeWM](https://example.org/lewm)" in text
    assert "Bounds: oracle 96.0% (84.0–100.0) — cem 300x30, horizon 5, 50 of 200 pairs; random 4.0% (0.0–16.0) — cem 300x30, horizon 5, 50 of 200 pairs." in text
    assert "Custom protocol (not comparable with the table above):" in text and "| budget: 50 → 100 |" in text
    assert render_markdown(EMPTY).count("No submissions yet.") == 5


def test_markdown_lists_phyre_per_split_and_fold(board):
    phyre = render_markdown(board).split("### PHYRE")[1]
    assert phyre.index("#### Within-template, fold 0") < phyre.index("#### Cross-template, fold 0")
    assert "| 1 | [LeWM](https://example.org/lewm) | 62.0 (59.0–65.0) | 97.0% | 200 | NVIDIA H100 | 1.85M | 2025-02-01 |" in phyre
    assert phyre.index("| [LeWM]") < phyre.index("| PLDM |") and "| 1 | LeWM | 48.0 (45.0–51.0) |" in phyre.split("#### Cross")[1]
    assert "Bounds: oracle 100.0 (97.0–100.0); random 40.2 (37.2–43.2)." in phyre
    assert "Custom protocol (not comparable with the table above):" in phyre and "| tasks: 200 → 3 |" in phyre


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Debian's headless Chromium through Selenium, its console log readable."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        pytest.fail(f"{' and '.join(missing)} missing: install them with `apt-get install -y chromium chromium-driver`")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never download a driver
        driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def severe(driver) -> list[dict]:
    return [message for message in driver.get_log("browser") if message["level"] == "SEVERE"]


def test_page_in_a_real_browser(board, browser, tmp_path):
    from selenium.webdriver.common.by import By

    def table(env: str, kind: str = "standard", split: str = "within"):
        where = f'[data-split="{split}"][data-fold="0"]' if env == "phyre" else ""
        return browser.find_element(By.CSS_SELECTOR, f'table[data-env="{env}"][data-table="{kind}"]{where}')

    def rows(env: str, split: str = "within") -> list[str]:
        return [row.get_attribute("data-model") for row in table(env, split=split).find_elements(By.CSS_SELECTOR, "tbody tr")]

    page = tmp_path / "index.html"
    page.write_text(render_html(board), encoding="utf-8")
    browser.get(page.as_uri())
    assert browser.title == "wmbench leaderboard" and severe(browser) == []

    for env in ("pusht", "tworoom"):
        assert all(model in table(env).text for model in standard(board, env))
        assert rows(env) == standard(board, env)
        assert len(browser.find_elements(By.CSS_SELECTOR, f'svg[data-env="{env}"] g.point[data-table="standard"]')) == len(standard(board, env))
        assert len(browser.find_elements(By.CSS_SELECTOR, f'svg[data-env="{env}"] g.reference')) == 2
    assert "LeWM big budget" in table("pusht", "custom").text
    assert HOSTILE in table("pusht").text and browser.execute_script("return window.injected") is None

    planning = table("pusht").find_element(By.CSS_SELECTOR, 'th[data-sort="planning"]')
    success = table("pusht").find_element(By.CSS_SELECTOR, 'th[data-sort="success"]')
    planning.find_element(By.TAG_NAME, "button").click()
    assert rows("pusht") == standard(board, "pusht", "planning") and planning.get_attribute("aria-sort") == "ascending"
    assert success.get_attribute("aria-sort") is None
    planning.find_element(By.TAG_NAME, "button").click()
    assert rows("pusht") == standard(board, "pusht", "planning")[::-1] and planning.get_attribute("aria-sort") == "descending"
    success.find_element(By.TAG_NAME, "button").click()
    assert rows("pusht") == standard(board, "pusht") and success.get_attribute("aria-sort") == "descending"
    assert rows("tworoom") == standard(board, "tworoom")

    assert rows("phyre") == standard(board, "phyre", "auccess") and rows("phyre", "cross") == standard(board, "phyre", "auccess", "cross")
    assert "LeWM 3 tasks" in table("phyre", "custom").text
    table("phyre").find_element(By.CSS_SELECTOR, 'th[data-sort="solved"] button').click()
    assert rows("phyre") == standard(board, "phyre", "solved")

    browser.set_window_size(1280, 2000)
    artifacts = Path(os.environ.get("WMBENCH_TEST_ARTIFACTS") or Path(__file__).resolve().parents[1] / "test-artifacts")
    artifacts.mkdir(parents=True, exist_ok=True)
    screenshot = artifacts / "leaderboard.png"
    capture = browser.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})  # the whole page
    screenshot.write_bytes(base64.b64decode(capture["data"]))
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 50_000
    assert severe(browser) == []


def assert_sorted(cells: list[list], numeric: bool, descending: bool) -> None:
    """A column's (value, rank order) pairs, top row first: values in order, empty values last, ties in rank order."""
    values = [value for value, _ in cells]
    filled = [value for value in values if value]
    assert values == filled + [""] * (len(values) - len(filled)), values
    keys = [float(value) if numeric else value.casefold() for value in filled]
    assert keys == sorted(keys, reverse=descending), values
    assert all(value != below or order < order_below for (value, order), (below, order_below) in zip(cells, cells[1:])), cells


def test_every_column_sorts_in_a_real_browser(board, browser, tmp_path):
    """Each header's button sorts its table, the column's first order on the first click (the other way for the column the
    rows came sorted by), the other way on the next; Rank gives the first order back; Enter and Space on a focused button sort."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    page = tmp_path / "index.html"
    page.write_text(render_html(board), encoding="utf-8")
    browser.get(page.as_uri())
    # a table's headers (type, first order, aria-sort); column arguments[1]'s (value, rank order), top row first
    header_states = "Array.from(arguments[0].tHead.rows[0].cells, th => [th.dataset.type, th.dataset.first, th.getAttribute('aria-sort')])"
    column_cells = "Array.from(arguments[0].tBodies[0].rows, row => [row.cells[arguments[1]].dataset.value, Number(row.dataset.order)])"
    headers, read = f"return {header_states}", f"return {column_cells}"
    click = f"arguments[0].tHead.rows[0].cells[arguments[1]].querySelector('button').click(); return [{header_states}, {column_cells}]"
    flip = {"ascending": "descending", "descending": "ascending"}
    tables = browser.find_elements(By.TAG_NAME, "table")
    assert len(tables) == 7
    for table in tables:
        for index in range(len(browser.execute_script(headers, table))):
            kind, first, current = browser.execute_script(headers, table)[index]
            order = flip[current] if current else first
            for _ in range(2):
                states, cells = browser.execute_script(click, table, index)
                assert [state for _, _, state in states] == [order if column == index else None for column in range(len(states))]
                assert_sorted(cells, kind == "number", descending=order == "descending")
                order = flip[order]
        _, rows = browser.execute_script(click, table, 0)
        assert [order for _, order in rows] == list(range(len(rows)))  # by rank: the first order again

    pusht = tables[0]
    model = pusht.find_element(By.CSS_SELECTOR, 'th[data-sort="model"] button')
    model.send_keys(Keys.ENTER)
    assert_sorted(browser.execute_script(read, pusht, 1), False, descending=False)
    model.send_keys(Keys.SPACE)
    assert_sorted(browser.execute_script(read, pusht, 1), False, descending=True)
    assert pusht.find_element(By.CSS_SELECTOR, 'th[data-sort="model"]').get_attribute("aria-sort") == "descending"
    assert severe(browser) == []


def test_page_reads_at_420_and_1300px(board, browser, tmp_path):
    """At 420 px the page itself never scrolls sideways: each table and plot scrolls in its own box, and every plot text is
    at least 10 px; at 1300 px a custom table's deviations are on screen and not squeezed."""
    page = tmp_path / "index.html"
    page.write_text(render_html(board), encoding="utf-8")
    browser.get(page.as_uri())

    def at_width(width: int, script: str) -> dict:
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": width, "height": 2000, "deviceScaleFactor": 1, "mobile": False})
        try:
            return browser.execute_script(script)
        finally:
            browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    narrow = at_width(420, """
        const rendered = text => { const m = text.getScreenCTM(); return parseFloat(getComputedStyle(text).fontSize) * Math.hypot(m.a, m.b); };
        const scrolls = box => box.scrollWidth > box.clientWidth;
        return {view: window.innerWidth, page: document.documentElement.scrollWidth,
                text: Array.from(document.querySelectorAll("svg text"), rendered),
                tables: Array.from(document.querySelectorAll(".table-wrap"), scrolls),
                figures: Array.from(document.querySelectorAll("figure"), scrolls)};
    """)
    assert narrow["view"] == 420 and narrow["page"] <= 420
    assert len(narrow["text"]) > 30 and min(narrow["text"]) >= 10
    assert len(narrow["tables"]) == 7 and all(narrow["tables"]) and len(narrow["figures"]) == 3 and all(narrow["figures"])

    wide = at_width(1300, """
        const table = document.querySelector('table[data-env="pusht"][data-table="custom"]');
        const box = table.parentElement.getBoundingClientRect(), column = table.querySelector('th[data-sort="deviations"]').getBoundingClientRect();
        return {view: window.innerWidth, inside: column.left >= box.left && column.right <= box.right, width: column.width};
    """)
    assert wide["view"] == 1300 and wide["inside"] and wide["width"] >= 120


def test_bounds_at_the_same_rate_share_one_labelled_line():
    board = {**EMPTY, "entries": [entry("LeWM", "tworoom", 0.6, 0.7), entry("oracle", "tworoom", 1.0, 0.5, table="reference"),
                                  entry("expert", "tworoom", 1.0, 0.01, table="reference"),
                                  entry("random", "tworoom", 0.04, 0.0, table="reference")]}
    page = render_html(board)
    assert page.count('<g class="reference"') == 2
    assert '<g class="reference" data-model="expert, oracle">' in page and "expert, oracle 100.0%</text>" in page
