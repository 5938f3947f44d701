"""Draws the backlog-growth plot (workload 6) with matplotlib; bench/run runs it in its venv.

    python plot.py DATA.json OUT.png

DATA: {"title": str, "chunk": int, "series": [{"label": str, "checkpoints": [[finished, seconds], ...]}]}
Each series becomes jobs/s per chunk of finished jobs (chunk / time between two checkpoints).
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def rates(checkpoints, chunk):
    xs, ys, prev = [], [], 0.0
    for finished, seconds in checkpoints:
        dt = seconds - prev
        if dt > 0:
            xs.append(finished)
            ys.append(chunk / dt)
        prev = seconds
    return xs, ys


def main(data_path, out_path):
    with open(data_path) as f:
        data = json.load(f)
    chunk = data["chunk"]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for s in data["series"]:
        xs, ys = rates(s["checkpoints"], chunk)
        ax.plot(xs, ys, marker="o", label=s["label"])
    ax.set_title(data["title"])
    ax.set_xlabel(f"jobs finished (each point: the last {chunk:,})")
    ax.set_ylabel("jobs/s over that chunk")
    ax.set_ylim(bottom=0)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{int(v):,}"))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{int(v):,}"))
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
