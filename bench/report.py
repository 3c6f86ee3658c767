"""Results: one JSON file per scale under docs/benchmarks/, and docs/BENCHMARKS.md's generated
part written from all of them (the hand-written text around the markers is kept)."""

import json
import os
import platform
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import django

from . import pg
from .runner import ROOT, Measurement, scale_tag

DOCS = ROOT / "docs"


def results_dir(docs: Path) -> Path:
    return docs / "benchmarks"
START, END = "<!-- generated:start -->", "<!-- generated:end -->"


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                         if line.startswith("MemTotal")))
    wrk = shutil.which("wrk")
    wrk_version = subprocess.run([wrk, "--version"], capture_output=True, text=True).stdout if wrk else ""
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(memory_kb / 2**20, 1),
            "os": platform.platform(), "python": platform.python_version(), "django": django.get_version(),
            "postgresql": pg.settings_summary(), "wrk": wrk_version.split("\n")[0].strip()}


def save(scale: float, command: str, sizes: dict, runs: int, measurements: list[Measurement],
         docs: Path = DOCS) -> Path:
    results_dir(docs).mkdir(parents=True, exist_ok=True)
    path = results_dir(docs) / f"scale-{scale_tag(scale)}.json"
    existing = json.loads(path.read_text()) if path.exists() else {}
    results = {entry["key"]: entry for entry in existing.get("results", [])}
    results.update({m.key: m.as_dict() for m in measurements})  # a partial run (--only) keeps the others
    path.write_text(json.dumps({
        "scale": scale, "command": command, "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "runs": runs, "dataset": sizes, "machine": machine(), "results": list(results.values()),
    }, indent=1, default=str) + "\n")
    return path


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    text = f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{text} {unit}".strip()


def _ratio(entry: dict) -> str:
    return "—" if entry["ratio"] is None else f"{entry['ratio']:.2f}×"


def _met(entry: dict) -> str:
    return {True: "yes", False: "**no**", None: "—"}[entry["met"]]


def _notes(entry: dict) -> str:
    extra = {key: value for key, value in entry["extra"].items() if key != "checks"}
    checks = entry["extra"].get("checks", {})
    parts = [f"{key}: {value}" for key, value in extra.items()]
    parts += [f"{name}: {'yes' if ok else '**no**'}" for name, ok in checks.items()]
    return "; ".join(parts).replace("|", "/")


def _table(data: dict) -> list[str]:
    lines = ["| Benchmark | Product (median) | Baseline (median) | Ratio | Target | Met | Details |",
             "|---|---|---|---|---|---|---|"]
    for entry in data["results"]:
        lines.append(f"| **{entry['title']}** | {_number(entry['median'], entry['unit'])} | "
                     f"{_number(entry['baseline_median'], entry['unit'])} — {entry['baseline_title']} | "
                     f"{_ratio(entry)} | {entry['target']} | {_met(entry)} | {_notes(entry)} |")
    return lines


def _growth(all_data: list[dict]) -> list[str]:
    """Each figure across the scales measured, and how it grew against the data."""
    scales = sorted(data["scale"] for data in all_data)
    by_scale = {data["scale"]: {entry["key"]: entry for entry in data["results"]} for data in all_data}
    keys = list(dict.fromkeys(key for data in all_data for key in (e["key"] for e in data["results"])))
    lines = ["| Benchmark | " + " | ".join(f"scale {scale:g}" for scale in scales) + " | Growth |",
             "|---|" + "---|" * (len(scales) + 1)]
    for key in keys:
        cells, present = [], []
        for scale in scales:
            entry = by_scale[scale].get(key)
            cells.append(_number(entry["median"], entry["unit"]) if entry else "—")
            if entry:
                present.append((scale, entry["median"]))
        growth = "—"
        if len(present) >= 2 and present[0][1]:
            (small, low), (large, high) = present[0], present[-1]
            growth = f"×{high / low:.3g} for ×{large / small:g} data"
        title = next(by_scale[s][key]["title"] for s in scales if key in by_scale[s])
        lines.append(f"| {title} | " + " | ".join(cells) + f" | {growth} |")
    return lines


def render(docs: Path = DOCS) -> str:
    all_data = sorted((json.loads(path.read_text()) for path in results_dir(docs).glob("scale-*.json")),
                      key=lambda data: -data["scale"])
    lines = [START, ""]
    for data in all_data:
        sizes = ", ".join(f"{count:,} {name.replace('_', ' ')}" for name, count in data["dataset"].items())
        host, server = data["machine"], data["machine"]["postgresql"]
        lines += [f"### Scale {data['scale']:g}", "",
                  f"`{data['command']}` — {data['date']}, median of {data['runs']} runs.", "",
                  f"Dataset: {sizes}.", "",
                  f"Machine: {host['cpu']}, {host['cores']} cores, {host['memory_gb']} GB; {host['os']}; "
                  f"Python {host['python']}, Django {host['django']}, PostgreSQL "
                  f"{server.get('server_version')} (shared_buffers {server.get('shared_buffers')}, "
                  f"work_mem {server.get('work_mem')}); {host['wrk'] or 'no wrk'}.", "",
                  *_table(data), ""]
    if len(all_data) > 1:
        lines += ["### Growth with the size of the dataset", "", *_growth(all_data), ""]
    lines.append(END)
    return "\n".join(lines)


def write(docs: Path = DOCS) -> Path:
    report = docs / "BENCHMARKS.md"
    text = report.read_text() if report.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    before, rest = text.split(START, 1) if START in text else (text + "\n", END)
    after = rest.split(END, 1)[1] if END in rest else ""
    report.write_text(before + render(docs) + after)
    return report
