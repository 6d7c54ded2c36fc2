"""The leaderboard page: HTML and Markdown of a synthetic board (goal-reaching envs and PHYRE), and the page in a real headless Chromium."""

from __future__ import annotations

import base64
import html
import math
import os
import re
from pathlib import Path

import pytest

from wmbench.leaderboard_page import render_html, render_markdown
from wmbench.eval.results import validate

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
HOSTILE = "<script>window.injected = 1</script> Smith & Sons"
EMPTY = {"format": 1, "protocol_version": 1, "entries": []}


def entry(model: str, env: str, rate: float, plan_s: float, table: str = "standard", **fields) -> dict:
    """A schema-valid entry over 50 episodes, its interval 12 points either side."""
    return {
        "model": model, "env": env, "protocol_version": 1, "table": table,
        "success": {"rate": rate, "successes": round(50 * rate), "episodes": 50, "ci95": [max(0.0, rate - 0.12), min(1.0, rate + 0.12)]},
        "planning": {"episode_plan_s": plan_s, "device": "cpu (2 cores)"},
        "parameters": 1_850_000, "checkpoint_sha256": None, "eval_set_sha256": "a" * 64, "results_sha256": "b" * 64,
        "wmbench_version": "0.1.0", "date": "2025-01-15", "authors": ["A. Author"], "links": [],
        "planner": "cem 300x30, horizon 5", "deviations": {}, **fields,
    }


def phyre_entry(model: str, split: str, fold: int, value: float, solved: float, table: str = "standard", tasks: int = 200, **fields) -> dict:
    """A schema-valid PHYRE entry, its interval 3 points either side."""
    return {
        "model": model, "env": "phyre", "protocol_version": 1, "table": table, "split": split, "fold": fold,
        "agent": model if table == "reference" else "world-model",
        "auccess": {"value": value, "ci95": [max(0.0, value - 0.03), min(1.0, value + 0.03)], "solved_within_100": solved, "tasks": tasks},
        "parameters": None if table == "reference" else 1_850_000, "checkpoint_sha256": None,
        "device": None if table == "reference" else "NVIDIA H100", "results_sha256": "b" * 64, "wmbench_version": "0.1.0",
        "date": "2025-02-01", "authors": [], "links": [], "deviations": {}, **fields,
    }


@pytest.fixture(scope="module")
def board() -> dict:
    entries = [
        entry("LeWM", "pusht", 0.62, 2.51, links=["https://example.org/lewm"]),
        entry("PLDM", "pusht", 0.40, 9.8, parameters=None),
        entry(HOSTILE, "pusht", 0.22, 0.35),
        entry("DINO-WM", "pusht", 0.74, 31.0, authors=["B. One", "C. Two"]),
        entry("LeWM big budget", "pusht", 0.80, 12.0, table="custom", deviations={"budget": [50, 100]}),
        entry("oracle", "pusht", 0.96, 0.01, table="reference"),
        entry("random", "pusht", 0.04, 0.0, table="reference"),
        entry("LeWM", "tworoom", 0.88, 0.9),
        entry("PLDM", "tworoom", 0.97, 4.2),
        entry("oracle", "tworoom", 1.0, 0.01, table="reference"),
        entry("random", "tworoom", 0.0, 0.0, table="reference"),
        phyre_entry("LeWM", "within", 0, 0.62, solved=0.97, links=["https://example.org/lewm"]),
        phyre_entry("PLDM", "within", 0, 0.55, solved=0.99),
        phyre_entry("LeWM 3 tasks", "within", 0, 0.71, solved=1.0, table="custom", tasks=3, deviations={"tasks": [200, 3]}),
        phyre_entry("oracle", "within", 0, 1.0, solved=1.0, table="reference"),
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
    assert "<b>Reference bounds:</b> oracle 100.0 (97.0–100.0), random 40.2 (37.2–43.2)" in within
    assert "<h4>Custom protocol (not comparable with the table above)</h4>" in within and "tasks: 200 → 3" in within
    assert "No submissions yet." in render_html(EMPTY).split('<section id="phyre"')[1]


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
    assert "| 1 | DINO-WM | 74.0% (62.0–86.0) | 31.0 | cpu (2 cores) | 1.85M |" in text and "[LeWM](https://example.org/lewm)" in text
    assert "Bounds: oracle 96.0% (84.0–100.0), random 4.0% (0.0–16.0)." in text
    assert "Custom protocol (not comparable with the table above):" in text and "| budget: 50 → 100 |" in text
    assert render_markdown(EMPTY).count("No submissions yet.") == 5


def test_markdown_lists_phyre_per_split_and_fold(board):
    phyre = render_markdown(board).split("### PHYRE")[1]
    assert phyre.index("#### Within-template, fold 0") < phyre.index("#### Cross-template, fold 0")
    assert "| 1 | [LeWM](https://example.org/lewm) | 62.0 (59.0–65.0) | 97.0% | 200 | NVIDIA H100 | 1.85M | 2025-02-01 |" in phyre
    assert phyre.index("| [LeWM]") < phyre.index("| PLDM |") and "| 1 | LeWM | 48.0 (45.0–51.0) |" in phyre.split("#### Cross")[1]
    assert "Bounds: oracle 100.0 (97.0–100.0), random 40.2 (37.2–43.2)." in phyre
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
