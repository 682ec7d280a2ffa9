"""Time and peak memory of parsing (or refusing) hostile golden-dataset uploads, before and after the
streaming limits.

    .venv/bin/python benchmarks/dataset_upload_limits.py [--dir PATH] [--only NAME ...] [--timeout 600] [--skip-old]

Builds the files once into --dir (default: a folder under the system temp dir, kept for the next run), then
parses each in a fresh subprocess, once with the parser as it was before the limits (``evaluator/datasets.py``
from the commit before ``evaluator/dataset_readers.py`` was added, loaded under another name and given the
file's bytes, as its view did) and once with the current one (given the open file, as the view now does).
Per file and parser it prints the outcome, the wall time and ru_maxrss (the process's peak resident memory,
Django included; the baseline after imports is printed on its own line) of a plain run, and tracemalloc's peak
(Python allocations from just before reading the file) from a second, traced run: tracing slows allocation-heavy
code severalfold, so it is kept out of the timed run.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MB = 2**20


# --- The hostile files ------------------------------------------------------------------------------


def build_wide_xlsx(path: Path) -> None:
    """~70 KB: 8,000 short rows, and one header cell in column XFD, so the sheet declares 16,384 columns."""
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.cell(row=1, column=1, value="question")
    sheet.cell(row=1, column=16_384, value="notes")
    for row in range(2, 8_002):
        sheet.cell(row=row, column=1, value=f"q{row}")
    workbook.save(path)


def build_million_xlsx(path: Path) -> None:
    """A million rows of one short question each, written as openpyxl (and Excel) write them."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(["question"])
    for row in range(1, 1_000_001):
        sheet.append([f"What is {row}?"])
    workbook.save(path)


def build_repeated_rows_xlsx(path: Path) -> None:
    """~30 KB: a valid workbook whose sheet repeats ``<row r="2"/>`` a million times (openpyxl parses and drops
    each, keeping an element for every one)."""
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["question"])
    sheet.append(["q"])
    plain = path.with_suffix(".plain.xlsx")
    workbook.save(plain)
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                head, _sep, tail = data.decode().partition("</sheetData>")
                data = (head + '<row r="2"/>' * 1_000_000 + "</sheetData>" + tail).encode()
            target.writestr(info.filename, data)
    plain.unlink()


def build_limit_xlsx(path: Path) -> None:
    """20,000 rows of 64 cells (question, reference, tags as text, 61 columns of numbers): the most cells the
    defaults accept, so the slowest accepted workbook. Its sheet is written directly (openpyxl takes minutes)."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    letters = [get_column_letter(column) for column in range(1, 65)]
    header = ["question", "reference", "tags"] + [f"score_{column}" for column in range(4, 65)]

    def cell(letter: str, row: int, value) -> str:
        if isinstance(value, str):
            return f'<c r="{letter}{row}" t="inlineStr"><is><t>{value}</t></is></c>'
        return f'<c r="{letter}{row}"><v>{value}</v></c>'

    def sheet_rows():
        yield (
            '<row r="1">'
            + "".join(cell(letter, 1, name) for letter, name in zip(letters, header, strict=True))
            + "</row>"
        )
        for row in range(2, 20_002):
            values = [f"질문 {row}", f"정답 {row}", "hr"] + list(range(4, 65))
            yield (
                f'<row r="{row}">'
                + "".join(cell(letter, row, value) for letter, value in zip(letters, values, strict=True))
                + "</row>"
            )

    workbook = Workbook()
    plain = path.with_suffix(".plain.xlsx")
    workbook.save(plain)
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                xml = data.decode().replace('<dimension ref="A1:A1"/>', '<dimension ref="A1:BL20001"/>')
                assert "<sheetData></sheetData>" in xml and "A1:BL20001" in xml, xml
                data = xml.replace(
                    "<sheetData></sheetData>", "<sheetData>" + "".join(sheet_rows()) + "</sheetData>"
                ).encode()
            target.writestr(info.filename, data)
    plain.unlink()


def build_limit_csv(path: Path) -> None:
    """Just under 50 MB and 20,000 rows: the largest file the defaults accept."""
    passage = "연차 휴가는 입사 1년 후 15일이 주어지며, 사용하지 않은 연차는 이월된다. " * 10
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["question", "reference", "contexts", "tags"])
        for row in range(1, 20_001):
            writer.writerow(
                [
                    f"질문 {row}: 연차 휴가는 며칠인가요?",
                    "15일입니다. " * 20,
                    json.dumps([passage, passage], ensure_ascii=False),
                    "hr, 휴가",
                ]
            )
    assert path.stat().st_size < 50 * MB, path.stat().st_size


def build_nested_jsonl(path: Path) -> None:
    path.write_text('{"question": "Q1"}\n{"question": "Q2", "extra": ' + "[" * 100_000 + "]" * 100_000 + "}\n")


def build_long_field_csv(path: Path) -> None:
    """One 200,000-character answer: under the cell limit, over the csv module's default 131,072."""
    path.write_text("question,reference\nQ1," + "가" * 200_000 + "\n", encoding="utf-8")


FILES = {
    "wide.xlsx": (build_wide_xlsx, "xlsx declaring 16,384 columns"),
    "million.xlsx": (build_million_xlsx, "xlsx with 1,000,000 rows"),
    "repeated.xlsx": (build_repeated_rows_xlsx, "xlsx repeating one row element 1,000,000 times"),
    "limit.xlsx": (build_limit_xlsx, "xlsx at the limits (20,000 rows x 64 columns)"),
    "limit.csv": (build_limit_csv, "CSV at the limits (20,000 rows, ~50 MB)"),
    "nested.jsonl": (build_nested_jsonl, "JSONL nested 100,000 levels"),
    "long_field.csv": (build_long_field_csv, "CSV with a 200,000-character field"),
}


# --- One parse, in a child process -----------------------------------------------------------------


def _old_module(path: Path):
    spec = importlib.util.spec_from_file_location("datasets_before_limits", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def child(parser: str, path: Path, old_source: Path, traced: bool) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import openpyxl.reader.excel  # noqa: F401  (a web process has it loaded after its first upload: not timed)

    module = _old_module(old_source) if parser == "old" else importlib.import_module("evaluator.datasets")
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    try:
        if parser == "old":
            parsed = module.dataset_file_parse(filename=path.name, content=path.read_bytes())
        else:
            with path.open("rb") as upload:
                parsed = module.dataset_file_parse(filename=path.name, content=upload)
        outcome = f"accepted, {len(parsed.rows)} rows"
    except module.DatasetFileError as exc:
        outcome = f"refused: {str(exc.problems[0])[:90]}"
    except BaseException as exc:  # what the view would have turned into a 500
        outcome = f"CRASHED (HTTP 500): {type(exc).__name__}: {str(exc)[:60]}"
    print(
        json.dumps(
            {
                "outcome": outcome,
                "seconds": time.perf_counter() - started,
                "peak": tracemalloc.get_traced_memory()[1] if traced else None,
                "baseline_rss": baseline * 1024,
                "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            }
        )
    )


def run(parser: str, path: Path, old_source: Path, timeout: int, *, traced: bool) -> dict:
    """One parse in a fresh process (ru_maxrss survives exec, so the parent stays small: files are built in
    children too)."""
    command = [sys.executable, __file__, "--child", parser, str(path), str(old_source), "traced" if traced else "plain"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"outcome": f"killed after {timeout} s", "seconds": None, "peak": None, "rss": None}
    if done.returncode:
        return {"outcome": f"child died: {done.stderr.strip()[-200:]}", "seconds": None, "peak": None, "rss": None}
    return json.loads(done.stdout.strip().splitlines()[-1])


def old_source_write(folder: Path) -> Path:
    added = subprocess.run(
        ["git", "log", "--diff-filter=A", "--format=%H", "--", "evaluator/dataset_readers.py"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout.split()
    revision = f"{added[-1]}^" if added else "HEAD"
    source = subprocess.run(
        ["git", "show", f"{revision}:evaluator/datasets.py"], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout
    path = folder / "datasets_before_limits.py"
    path.write_text(source)
    print(f"old parser: evaluator/datasets.py at {revision}")
    return path


def _mb(value) -> str:
    return "-" if value is None else f"{value / MB:,.0f} MB"


def _seconds(value) -> str:
    return "-" if value is None else f"{value:.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "dataset_upload_limits")
    parser.add_argument("--only", nargs="*", choices=sorted(FILES))
    parser.add_argument("--timeout", type=int, default=600, help="seconds per parse before the child is killed")
    parser.add_argument("--skip-old", action="store_true")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    old_source = old_source_write(args.dir)
    names = args.only or list(FILES)
    for name in names:
        if not (args.dir / name).exists():
            started = time.perf_counter()
            subprocess.run([sys.executable, __file__, "--build", name, str(args.dir / name)], check=True, cwd=ROOT)
            print(f"built {name} in {time.perf_counter() - started:.0f} s")
    baseline = None
    print(f"\n{'file':<16}{'size':>10}  {'parser':<6}{'time':>9}{'max RSS':>10}{'tracemalloc':>13}  outcome")
    for name in names:
        path = args.dir / name
        for which in (() if args.skip_old else ("old",)) + ("new",):
            plain = run(which, path, old_source, args.timeout, traced=False)
            traced = run(which, path, old_source, args.timeout, traced=True)
            baseline = plain.get("baseline_rss") or baseline
            size = f"{path.stat().st_size / 1024:,.0f} KB"
            print(
                f"{name:<16}{size:>10}  {which:<6}{_seconds(plain['seconds']):>9}{_mb(plain['rss']):>10}"
                f"{_mb(traced['peak']):>13}  {plain['outcome']}",
                flush=True,
            )
    print(f"\nmax RSS after imports, before parsing: {_mb(baseline)}")
    for name in names:
        print(f"  {name}: {FILES[name][1]}")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        child(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), sys.argv[5] == "traced")
    elif len(sys.argv) == 4 and sys.argv[1] == "--build":
        FILES[sys.argv[2]][0](Path(sys.argv[3]))
    else:
        main()
