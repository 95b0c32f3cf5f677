"""`make stats`: the page book/stats.md, generated from the committed bench report.

    python -m tools.stats_page [--copy _build/bench/report.json]
                               [--compare _build/bench/compare.json]

``--copy`` first copies a fresh report (from ``make bench``) to book/bench/report.json, and
``--compare`` a side-by-side comparison (from ``make compare``) to book/bench/compare.json. The
page is written from those committed reports, the notebooks listed in _toc.yml and each
notebook's declared budget, so regenerating it gives the same text (tests/test_stats_page.py
checks).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from tools.bench import LONG_RUN_S, TOP_RUNS, gflops, percent, seconds, targets
from tools.budgets import BOOK_BUDGET_S, budget_of
from tools.toc import toc_pages

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "book" / "bench" / "report.json"
COMPARE = ROOT / "book" / "bench" / "compare.json"
#: The whole book's time against its baseline's, side by side, that the speed work aims at.
TARGET_RATIO = 0.70
PAGE = ROOT / "book" / "stats.md"


def toc_notebooks(toc_text: str) -> list[str]:
    """Every ``chapters/...`` entry of _toc.yml, in reading order, as ``chapters/x.ipynb``."""
    return [f"{page}.ipynb" for page in toc_pages(toc_text) if page.startswith("chapters/")]


def table(header: list[str], align: str, rows: list[list[str]]) -> list[str]:
    """A Markdown table; ``align`` holds one of 'l', 'r', 'c' per column."""
    rule = {"l": "---", "r": "---:", "c": ":---:"}
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(rule[a] for a in align) + " |",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def whole(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def peak_memory(nb: dict) -> str:
    """Peak resident memory in MB, and the GPU's peak allocation when there was one."""
    gpu = nb.get("peak_gpu_mb")
    return whole(nb["peak_rss_mb"]) + ("" if gpu is None else f" (GPU {gpu:.0f})")


def notebook_rows(kernel: dict, notebooks: list[str], budgets: dict[str, float | None]):
    measured = {nb["path"]: nb for nb in kernel["notebooks"]}
    rows = []
    for path in notebooks:
        link = "{doc}`../" + path.removesuffix(".ipynb") + "`"
        budget = budgets.get(path)
        nb = measured.get(path)
        if nb is None or "error" in nb:
            state = "not measured" if nb is None else "failed"
            rows.append([link, "-", whole(budget), "-", state])
            continue
        within = "-" if budget is None else ("yes" if nb["seconds"] <= budget else "**no**")
        rows.append([link, seconds(nb["seconds"]), whole(budget), peak_memory(nb), within])
    total = kernel["total_s"]
    within = "yes" if total <= BOOK_BUDGET_S else "**no**"
    label = "**whole book**" if set(notebooks) <= set(measured) else "**the notebooks measured**"
    rows.append([label, seconds(total), whole(BOOK_BUDGET_S), "", within])
    return rows


def kernel_section(name: str, kernel: dict, notebooks: list[str], budgets: dict) -> list[str]:
    if "skipped" in kernel:
        return [f"Not measured on `{name}`: {kernel['skipped']}."]
    lines = [
        f"Each notebook executed top to bottom on the `{name}` kernel, from the kernel's start to "
        "the end of its last cell, less the time the benchmark's own training log spent in it "
        "(FLOP counts and ceilings), against the `budget_s` it declares; peak memory is the "
        "kernel process's largest resident set.",
        "",
        *table(
            ["Chapter", "Time (s)", "Budget (s)", "Peak memory (MB)", "Within budget"],
            "lrrrc",
            notebook_rows(kernel, notebooks, budgets),
        ),
        "",
    ]
    if "nbval" in kernel:
        v = kernel["nbval"]
        state = "passed" if v["returncode"] == 0 else "failed"
        lines += [
            f"The nbval check of these notebooks (`make {name.replace('mmbook', 'nbval')}`) took "
            f"{seconds(v['seconds'])} s, {seconds(v.get('total_s'))} s of it in the notebooks; "
            f"it {state}.",
            "",
        ]
    peak = kernel["matmul_peak"]
    lines += [
        f"The {len(kernel['training_runs'])} training runs; below, each that took "
        f"{LONG_RUN_S:g} s or more (at least the {TOP_RUNS} longest), with the work it does in all "
        "(FLOPs per step times steps). FLOPs per step are counted by "
        "`torch.utils.flop_counter.FlopCounterMode` on one forward and backward pass (the "
        "optimizer step is not counted); a run's time includes its evaluations. The peak is the "
        f"best fp32 product of two {peak['size']} x {peak['size']} matrices through torch on the "
        f"same device: **{gflops(peak['flops'])} GFLOP/s**. A run's *ceiling* is the best "
        "FLOP/s of the same model's forward and backward pass on its first batch and on that batch "
        "repeated, doubling, until per-step overheads vanish (`tools/train_log.py`; the batch "
        "where the best was found is shown), measured in the same "
        "run: the share of the ceiling says how much of what the model's shapes allow the run "
        "gets, and the ceiling's share of the peak how far those shapes are from the peak at all "
        "(small matrices and element-wise work keep a narrow model far below it).",
        "",
    ]
    rows = [
        [
            "{doc}`../" + run["notebook"].removesuffix(".ipynb") + "`",
            "`" + run["desc"].replace("`", "'") + "`",
            str(run["steps"]),
            seconds(run["seconds"]),
            f"{run['samples_per_s']:.0f}",
            gflops(
                None if run.get("flops_per_step") is None else run["flops_per_step"] * run["steps"]
            ),
            gflops(run["flops_per_s"]),
            percent(run.get("ceiling_ratio")),
            gflops(run.get("ceiling_flops_per_s"))
            + (f" at {run['ceiling_batch']:,}" if "ceiling_batch" in run else ""),
            percent(run.get("ceiling_peak_ratio")),
        ]
        for run in kernel["heaviest_training"]
    ]
    header = ["Chapter", "Run", "Steps", "Time (s)", "Samples/s", "GFLOP in all", "GFLOP/s"]
    header += ["Share of own ceiling", "Ceiling (GFLOP/s at batch)", "Ceiling's share of peak"]
    return lines + table(header, "llrrrrrrrr", rows)


def compare_section(compare: dict, notebooks: list[str]) -> list[str]:
    """The side-by-side timing of two commits (``make compare``): seconds and ratio per page."""
    m, rows = compare["machine"], compare["notebooks"]
    base, new = compare["baseline_commit"], compare["new_commit"]
    lines = [
        "",
        "## Side by side with an earlier commit",
        "",
        "These machines' speed drifts by 40-80% within a day, so seconds measured at different "
        "times cannot show what a change gained. `make compare BASELINE=<commit>` runs each "
        "notebook of the earlier commit and of the current one back to back on the "
        "`mmbook-cpu` kernel, alternating which goes first, in one run on one machine, and "
        f"reports the ratio. This run: `make compare BASELINE={compare['baseline']}` "
        f"(commit `{base}` against `{new}`), {compare['rounds']} round(s), {m['date']}, "
        f"{m['cpu']} with {m['cores']} cores. Each time runs from the kernel's start to the last "
        "cell, as nbval counts it. A ratio compares whole pages: where a page gained or lost "
        "content between the two commits, its ratio measures that too.",
        "",
    ]
    book = compare["book"]
    if book["ratio"] is not None:
        met = "met" if book["ratio"] <= TARGET_RATIO else "**not met**"
        lines += [
            f"The target for the whole book is a ratio of {TARGET_RATIO:.2f} or less at equal "
            f"results; this run gives {book['ratio']:.2f}: {met}.",
            "",
        ]

    def ratio(value: float | None, bold: bool = False) -> str:
        return "-" if value is None else ("**{:.2f}**" if bold else "{:.2f}").format(value)

    order = [nb for nb in notebooks if nb in rows] + sorted(set(rows) - set(notebooks))
    body = [
        ["{doc}`../" + path.removesuffix(".ipynb") + "`"]
        + [seconds(rows[path]["baseline"]), seconds(rows[path]["new"]), ratio(rows[path]["ratio"])]
        for path in order
    ]
    body.append(
        [
            "**the whole book**",
            seconds(book["baseline"]),
            seconds(book["new"]),
            ratio(book["ratio"], True),
        ]
    )
    header = ["Chapter", f"`{base}` (s)", f"`{new}` (s)", "New / old"]
    return lines + table(header, "lrrr", body)


def render(
    report: dict,
    notebooks: list[str],
    budgets: dict[str, float | None],
    compare: dict | None = None,
) -> str:
    """The text of book/stats.md."""
    m = report["machine"]
    lines = [
        "(execution-stats)=",
        "# Execution statistics",
        "",
        "How fast the book runs: every chapter against its time budget, the training runs against "
        "the machine's own matrix-multiply peak, and the build. Measured by `make bench` on "
        f"{m['date']} and written into this page by `make stats` from the committed report "
        "`book/bench/report.json`.",
        "",
    ]
    if not report["complete"]:
        lines += [
            "```{note}",
            "Provisional: this report covers only part of the book"
            + (f" (skipped: {', '.join(report['skipped'])})" if report["skipped"] else "")
            + ". `make bench && make stats` on an idle machine measures all of it.",
            "```",
            "",
        ]
    lines += ["## The machine", ""]
    lines += table(
        ["Item", "Value"],
        "ll",
        [
            ["Date", m["date"]],
            ["CPU", f"{m['cpu']}, {m['cores']} cores ({m['torch_threads']} torch threads)"],
            ["GPU", m["gpu"] or "none"],
            ["Python", m["python"]],
            ["PyTorch", m["torch"]],
            ["Platform", m["platform"]],
        ],
    )
    cpu = report["kernels"].get("mmbook-cpu", {})
    if "notebooks" in cpu:
        lines += ["", "## The targets", ""]
        lines += [
            "The book sets itself two speed targets on a 2-core CPU. Where one is not met, "
            "this table says so. (A third, the heaviest training run at 30% of the matmul peak, "
            "was retired: how near a run can come to the peak is set by its model's shapes, so "
            "each long run is reported below against its own ceiling and against the peak.)",
            "",
        ]
        rows = targets(cpu)
        lines += table(
            ["Target", "Measured", "Met"],
            "llc",
            [[t, m.replace("'", "`"), "yes" if ok else "**no**"] for t, m, ok in rows],
        )
    titles = {"mmbook-cpu": "On the CPU", "mmbook-gpu": "On the GPU"}
    for name, kernel in report["kernels"].items():
        lines += ["", f"## {titles.get(name, name)}", ""]
        lines += kernel_section(name, kernel, notebooks, budgets)
    if compare is not None:
        lines += compare_section(compare, notebooks)
    lines += ["", "## Building the book", ""]
    book = report["book"]
    if "skipped" in book:
        lines.append(f"Not measured in this report ({book['skipped']}).")
    else:
        lines.append(
            f"`make book` took {seconds(book['scratch_s'])} s from scratch and "
            f"{seconds(book['rebuild_s'])} s again with nothing changed"
            + ("." if book["returncode"] == 0 else "; it failed.")
        )
    return "\n".join(lines) + "\n"


def page_text(report_path: Path = REPORT, compare_path: Path = COMPARE) -> str:
    """Render the page from ``report_path`` (and ``compare_path`` when there is one), _toc.yml
    and the notebooks' declared budgets."""
    report = json.loads(report_path.read_text(encoding="utf-8"))
    compare = None
    if compare_path.exists():
        compare = json.loads(compare_path.read_text(encoding="utf-8"))
    notebooks = toc_notebooks((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    budgets = {nb: budget_of(ROOT / nb) for nb in notebooks if (ROOT / nb).exists()}
    return render(report, notebooks, budgets, compare)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copy", type=Path, help="a fresh report to commit first")
    parser.add_argument("--compare", type=Path, help="a fresh `make compare` report to commit")
    args = parser.parse_args(argv)
    for source, target in ((args.copy, REPORT), (args.compare, COMPARE)):
        if source:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    PAGE.write_text(page_text(), encoding="utf-8")
    print(f"wrote {PAGE.relative_to(ROOT)} from {REPORT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
