"""The fast pieces of `make bench` (tools/bench.py): parsing, the FLOP arithmetic, the table.
Nothing here executes a notebook or runs the bench."""

import json

import pytest

from tools import bench

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) CPU @ 2.20GHz
flags\t\t: fpu vme
"""


def test_cpu_model_reads_the_model_name():
    assert bench.cpu_model(CPUINFO) == "Intel(R) Xeon(R) CPU @ 2.20GHz"
    assert bench.cpu_model("processor\t: 0\nModel\t\t: Raspberry Pi 4 Model B\n") == (
        "Raspberry Pi 4 Model B"
    )
    assert bench.cpu_model("processor\t: 0\n") == ""


def test_parse_peak_reads_the_last_printed_line():
    cell = {
        "outputs": [
            {"name": "stderr", "text": "a warning\n"},
            {"name": "stdout", "text": json.dumps({"rss": 3 * 2**20, "gpu": None}) + "\n"},
        ]
    }
    assert bench.parse_peak(cell) == {"peak_rss_mb": 3.0, "peak_gpu_mb": None}
    cell["outputs"][1]["text"] = json.dumps({"rss": 2**21, "gpu": 2**30})
    assert bench.parse_peak(cell) == {"peak_rss_mb": 2.0, "peak_gpu_mb": 1024.0}


def test_peak_cell_prints_parsable_json(capsys):
    exec(bench.PEAK_CELL, {})
    peak = bench.parse_peak({"outputs": [{"name": "stdout", "text": capsys.readouterr().out}]})
    assert peak["peak_rss_mb"] > 10  # this Python process holds more than 10 MB


def test_read_train_log_tags_each_run(tmp_path):
    log = tmp_path / "train.jsonl"
    assert bench.read_train_log(log, "chapters/x.ipynb") == []
    log.write_text('{"desc": "a", "steps": 2}\n\n{"desc": "b", "steps": 3}\n')
    runs = bench.read_train_log(log, "chapters/x.ipynb")
    assert [(r["notebook"], r["desc"], r["steps"]) for r in runs] == [
        ("chapters/x.ipynb", "a", 2),
        ("chapters/x.ipynb", "b", 3),
    ]


def run(desc, seconds, steps=10, samples=640, flops=1e9, ceiling=None):
    out = {"desc": desc, "seconds": seconds, "steps": steps, "samples": samples}
    out["flops_per_step"] = flops
    return out if ceiling is None else out | {"ceiling_flops_per_s": ceiling, "ceiling_batch": 2048}


def test_heaviest_runs_by_time_with_throughput_and_share_of_peak():
    runs = [run("short", 1.0), run("long", 4.0), run("none", 3.0, flops=None), run("mid", 2.0)]
    top = bench.heaviest_runs(runs, peak_flops=1e10)
    assert [r["desc"] for r in top] == ["long", "none", "mid"]
    assert top[0]["samples_per_s"] == pytest.approx(160.0)
    assert top[0]["flops_per_s"] == pytest.approx(2.5e9)  # 10 steps x 1 GFLOP in 4 s
    assert top[0]["peak_ratio"] == pytest.approx(0.25)
    assert top[1]["flops_per_s"] is None and top[1]["peak_ratio"] is None
    assert top[0]["ceiling_ratio"] is None and top[0]["ceiling_peak_ratio"] is None  # not logged
    assert bench.heaviest_runs(runs, 1e10, top=1)[0]["desc"] == "long"


def test_every_run_of_five_seconds_or_more_is_listed_with_its_ceiling():
    runs = [run(f"r{s}", float(s), ceiling=1e10) for s in (1, 5, 6, 7, 8)] + [run("tiny", 4.99)]
    listed = bench.heaviest_runs(runs, peak_flops=4e10, top=3)
    assert [r["desc"] for r in listed] == ["r8", "r7", "r6", "r5"]  # r5 at the edge, not r1
    assert listed[0]["ceiling_ratio"] == pytest.approx(1.25e9 / 1e10)  # 10 GFLOP in 8 s
    assert listed[0]["ceiling_peak_ratio"] == pytest.approx(0.25)
    assert [r["desc"] for r in bench.heaviest_runs(runs[:2], 4e10, top=3)] == ["r5", "r1"]


def test_targets_say_which_are_met():
    cpu = fake_report()["kernels"]["mmbook-cpu"]
    book, each = bench.targets(cpu)  # the matmul-peak target is retired
    assert book == ("whole book in 300 s or less", "16.5 s", True)
    assert each == (
        "each notebook in 60 s or less",
        "slowest chapters/b.ipynb: 12.5 s (1 failed)",
        False,  # a notebook that failed has not met its limit
    )


@pytest.mark.parametrize(
    ("slowest_s", "total_s", "met"),
    [
        (60.0, 300.0, (True, True)),  # each limit holds at its edge
        (60.1, 300.1, (False, False)),
    ],
)
def test_targets_edges(slowest_s, total_s, met):
    cpu = fake_report()["kernels"]["mmbook-cpu"]
    cpu["notebooks"] = [{"path": "chapters/a.ipynb", "budget_s": 90.0, "seconds": slowest_s}]
    cpu["total_s"] = total_s
    assert tuple(ok for _, _, ok in bench.targets(cpu)) == met  # (whole book, each notebook)


def test_formatters():
    assert bench.gflops(2.5e9) == "2.5" and bench.gflops(1.234e11) == "123"
    assert bench.gflops(1.1406e12) == "1,141" and bench.gflops(999.4e9) == "999"
    assert bench.gflops(None) == "-"
    assert bench.percent(0.25) == "25%" and bench.percent(0.00028) == "0.028%"
    assert bench.seconds(3.14159) == "3.1" and bench.seconds(None) == "-"


def fake_report():
    """A small report shaped like the bench's: one notebook over budget, one failed."""
    cpu = {
        "device": "cpu",
        "notebooks": [
            {"path": "chapters/a.ipynb", "budget_s": 10.0, "seconds": 4.0, "peak_rss_mb": 500.0},
            {"path": "chapters/b.ipynb", "budget_s": 10.0, "seconds": 12.5, "peak_rss_mb": 900.0},
            {"path": "chapters/c.ipynb", "budget_s": 20.0, "error": "CellExecutionError: boom"},
        ],
        "total_s": 16.5,
        "matmul_peak": {"flops": 1e11, "size": 2048, "dtype": "float32"},
        "training_runs": [{"notebook": "chapters/b.ipynb", **run("big", 4.0, ceiling=1e10)}],
        "nbval": {"seconds": 20.0, "returncode": 0, "total_s": 18.0},
    }
    cpu["heaviest_training"] = bench.heaviest_runs(cpu["training_runs"], 1e11)
    return {
        "schema": 1,
        "machine": {
            "date": "2026-01-02 03:04 UTC",
            "python": "3.11.7",
            "torch": "2.14.1",
            "platform": "Linux",
            "cpu": "Test CPU",
            "cores": 2,
            "torch_threads": 2,
            "gpu": None,
        },  # fmt: skip
        "complete": False,
        "skipped": ["book"],
        "kernels": {"mmbook-cpu": cpu, "mmbook-gpu": {"skipped": "no CUDA device"}},
        "book": {"skipped": "--skip book"},
    }


def test_format_table_flags_what_matters():
    text = bench.format_table(fake_report())
    lines = {}  # first line starting with each word: the notebook table comes first
    for line in text.splitlines():
        if line.strip():
            lines.setdefault(line.split()[0], line)
    assert "OVER BUDGET" in lines["chapters/b.ipynb"]
    assert "OVER BUDGET" not in lines["chapters/a.ipynb"]
    assert "FAILED: CellExecutionError: boom" in lines["chapters/c.ipynb"]
    assert "16.5" in lines["total"] and "300" in lines["total"]
    assert "mmbook-gpu: skipped (no CUDA device)" in text
    assert "100 GFLOP/s" in text  # the peak
    assert "'big': 10 steps in 4.0 s, 160 samples/s, 2.5 GFLOP/s, 25% of its ceiling, " in text
    assert "ceiling 10% of peak" in text
    assert "nbval: 20.0 s for make, 18.0 s in notebooks, passed" in text
    assert "make book: skipped (--skip book)" in text
    assert "    met      whole book in 300 s or less: 16.5 s" in text
    assert "matmul peak or more" not in text  # the retired target


def test_bench_kernel_takes_the_logs_own_time_off_the_notebook(monkeypatch, tmp_path):
    def fake_run(path, kernel, log):
        lines = [
            {"desc": "a", "seconds": 6.0, "steps": 2, "samples": 8, "hook_s": 1.5},
            {"desc": "b", "seconds": 1.0, "steps": 2, "samples": 8, "hook_s": 0.25},
        ]
        log.write_text("".join(json.dumps(line) + "\n" for line in lines))
        return {"path": "chapters/x.ipynb", "budget_s": 30.0, "seconds": 10.0}

    monkeypatch.setattr(bench, "run_notebook", fake_run)
    monkeypatch.setattr(bench, "matmul_peak", lambda device: {"flops": 1e10, "size": 8})
    result = bench.bench_kernel(
        "mmbook-cpu", [bench.ROOT / "chapters/x.ipynb"], tmp_path, {"nbval"}
    )
    (row,) = result["notebooks"]
    assert row["seconds"] == 10.0 - 1.75 and row["wall_s"] == 10.0
    assert row["bench_overhead_s"] == 1.75 and result["total_s"] == 8.25


def test_cpu_kind_names_family_model_and_clock_of_the_first_processor():
    info = (
        "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 23\nmodel\t\t: 1\n"
        "model name\t: AMD EPYC\ncpu MHz\t\t: 1996.250\n\nprocessor\t: 1\nmodel\t\t: 9\n"
    )
    assert bench.cpu_kind(info) == "AMD EPYC, family 23, model 1, 1996 MHz"
    assert bench.cpu_kind(CPUINFO).startswith("Intel(R) Xeon(R) CPU @ 2.20GHz")
    assert bench.cpu_kind("")  # the platform's name, or "unknown CPU"
