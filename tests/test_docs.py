"""The README and the documentation: short, complete, built without a warning, and seen in a real browser.

The docs are built here (Sphinx, as ``make docs`` builds them: warnings as errors, nitpicky) into a scratch folder;
their code blocks run as tests of their own (``pytest README.md docs/``, conftest.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README_WORDS = 1000

pytest.importorskip("sphinx", reason="the docs extra is not installed: pip install -e '.[docs]'")
sys.path.insert(0, str(DOCS / "_ext"))


def words(markdown: str) -> int:
    """Words as a reader counts them: prose and code alike, markup aside."""
    return len(re.findall(r"[\w'’.-]*\w", markdown))


def test_the_readme_is_at_most_a_thousand_words() -> None:
    assert words((ROOT / "README.md").read_text(encoding="utf-8")) <= README_WORDS


def test_the_word_count_counts_every_word() -> None:
    assert words("## Install\n\n`pip install torch==2.13.0` and (see [docs](docs/x.md))") == 10


def test_the_readme_is_the_wheels_long_description() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^readme = "README.md"$', pyproject, re.MULTILINE)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HTML, built as ``make docs`` builds it; a warning fails the build."""
    out = tmp_path_factory.mktemp("docs") / "html"
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html", str(DOCS), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def inventory(html: Path) -> dict[str, set[str]]:
    from sphinx.util.inventory import InventoryFile

    with (html / "objects.inv").open("rb") as handle:
        found = InventoryFile.load(handle, "", lambda base, path: path)
    data = getattr(found, "data", found)
    return {kind: set(entries) for kind, entries in data.items()}


def public_names() -> dict[str, set[str]]:
    """Every name a user may type: the package's ``__all__``, the fixtures, the markers, the pytest options, and
    the ``lmbehave`` commands with their options, keyed by the inventory entries that document them."""
    from lmbehave_docs import fixtures

    import pytest_lmbehave
    from pytest_lmbehave.cli import build_parser
    from pytest_lmbehave.config.options import OPTIONS
    from pytest_lmbehave.plugin.markers import MARKERS

    commands: set[str] = set()
    options: set[str] = set()
    for action in build_parser()._subparsers._group_actions:  # type: ignore[union-attr]
        for name, sub in action.choices.items():
            commands.add(f"lmbehave {name}")
            options |= {
                f"lmbehave-{name}.{o}" for a in sub._actions for o in a.option_strings if o not in ("-h", "--help")
            }
    return {
        "py": {f"pytest_lmbehave.{name}" for name in pytest_lmbehave.__all__},
        "std:fixture": set(fixtures()),
        "std:marker": set(MARKERS),
        "std:cmdoption": {f"pytest.{option.flag}" for option in OPTIONS} | options,
        "std:label": commands,
    }


def test_a_shown_closing_line_matches_a_run_past_a_minute() -> None:
    """pytest adds "(0:01:26)" to its closing line past a minute, and centres the line anew: a slow first run (the
    embedded model converted on the way) still matches the README's line; another count does not."""
    from docs_examples import compare

    shown = ["============================== 4 passed in 0.00s ==============================="]
    assert compare(shown, "========================= 4 passed in 86.54s (0:01:26) =========================") is None
    assert compare(shown, "========================= 3 passed in 86.54s (0:01:26) =========================")


def test_every_public_name_has_a_reference_entry(built: Path) -> None:
    documented = inventory(built)
    python = set().union(*(entries for kind, entries in documented.items() if kind.startswith("py:")))
    missing = []
    for kind, names in public_names().items():
        have = python if kind == "py" else documented.get(kind, set())
        missing += [f"{kind} {name}" for name in sorted(names - have)]
    assert not missing, f"no reference entry in docs/reference for: {missing}"


def test_a_name_left_out_of_the_reference_is_caught(built: Path) -> None:
    documented = inventory(built)
    documented["std:marker"].discard("sampled")
    assert "sampled" in public_names()["std:marker"] - documented["std:marker"]


def test_the_margin_figure_is_drawn_from_a_committed_report(built: Path) -> None:
    figure = built / "_images" / "margins.png"
    assert figure.is_file() and figure.stat().st_size > 10_000
    page = (built / "explanation" / "verdicts.html").read_text(encoding="utf-8")
    assert "margins.png" in page


REFERENCE = re.compile(r"\b(docs/[\w/.-]+\.md)(?:#([\w-]+))?|README(?:\.md)? \"([^\"]+)\"")


def references() -> list[tuple[str, str, str | None]]:
    """Every pointer into the docs (``docs/PAGE.md#anchor``) or a README section (``README "Title"``) written in the
    code, the tests, the tools and the Makefile: (where, page, anchor)."""
    found = []
    files = [ROOT / "Makefile", *ROOT.glob("tools/*"), *ROOT.glob("bench/*.py")]
    files += [*ROOT.glob("pytest_lmbehave/**/*.py"), *ROOT.glob("tests/*.py"), *ROOT.glob("specs/*.py")]
    files = [path for path in files if path.name != "test_docs.py"]  # its own examples of broken references
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in REFERENCE.finditer(line):
                where = f"{path.relative_to(ROOT)}:{number}"
                if match.group(3) is not None:
                    found.append((where, "README.md", match.group(3)))
                else:
                    found.append((where, match.group(1), match.group(2)))
    return found


def anchors(markdown: str) -> set[str]:
    """The anchors MyST gives a page's headings (GitHub's rule: lower case, punctuation dropped, spaces to dashes)."""
    titles = re.findall(r"^#{1,6} (.+)$", markdown, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-") for title in titles}


def broken(reference: tuple[str, str, str | None]) -> str | None:
    where, page, anchor = reference
    path = ROOT / page
    if not path.is_file():
        return f"{where}: {page} does not exist"
    text = path.read_text(encoding="utf-8")
    if page == "README.md" and anchor is not None:
        titles = {title.strip() for title in re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE)}
        return None if anchor in titles else f'{where}: README.md has no section "{anchor}"'
    if anchor is not None and anchor not in anchors(text):
        return f"{where}: {page} has no section #{anchor}"
    return None


def test_every_reference_to_a_docs_page_or_section_exists() -> None:
    found = references()
    assert len(found) >= 5  # the code does point into the docs
    problems = [problem for problem in map(broken, found) if problem]
    assert not problems, "\n".join(problems)


def test_a_reference_to_a_missing_section_is_caught() -> None:
    assert broken(("x.py:1", "docs/explanation/statistics.md", "no-such-section")) is not None
    assert broken(("x.py:1", "README.md", "Sets per SIMD level")) is not None
    assert broken(("x.py:1", "docs/nowhere.md", None)) is not None
    assert broken(("x.py:1", "docs/explanation/verdicts.md", "root-causes")) is None


def test_the_pages_render_in_chromium_with_title_navigation_and_search(built: Path, tmp_path: Path) -> None:
    """Headless Chromium (installed by `make test`) renders the index, a reference page and a search: each has its
    title and the navigation, the search finds pages through the search index, and no screenshot is blank."""
    import shutil

    if shutil.which("chromium") is None:
        pytest.skip("headless Chromium is not installed: apt-get install chromium (make test installs it)")
    from look import look
    from PIL import Image, ImageStat

    seen = look(built, tmp_path)
    titles = {
        "index": "pytest-lmbehave",
        "reference-api": "API - pytest-lmbehave",
        "search": "Search - pytest-lmbehave",
    }
    for name, (shot, dom) in seen.items():
        html = dom.read_text(encoding="utf-8")
        assert re.search(rf"<title>{re.escape(titles[name])}[^<]*</title>", html), name
        assert 'class="sidebar-tree"' in html and "Tutorials" in html, f"{name}: no navigation"
        with Image.open(shot) as image:
            spread = ImageStat.Stat(image.convert("L")).stddev[0]
        assert spread > 10, f"{name}: the screenshot is blank (pixel spread {spread:.1f})"
    search = seen["search"][1].read_text(encoding="utf-8")
    found = re.search(r"found (\d+) pages? matching", search)
    assert found and int(found.group(1)) >= 1, "the search index found nothing for assert_close"
