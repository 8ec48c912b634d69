"""Write benchmark results: JSON (everything), Markdown tables, TREC run/qrels files, plots."""

from __future__ import annotations

import json
from pathlib import Path

HEAD = ("hit@1", "hit@3", "hit@5", "hit@10", "mrr@10", "ndcg@10", "recall@10", "recall@100", "latency_p50_ms", "latency_p95_ms")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.1f}" if v >= 10 else f"{v:.3f}"
    return str(v)


def table(rows: dict[str, dict], cols=HEAD, first: str = "mode") -> str:
    cols = [c for c in cols if any(c in r for r in rows.values())]
    lines = [f"| {first} | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, r in rows.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |")
    return "\n".join(lines)


def write_trec(folder: Path, name: str, qrels: dict, runs: dict[str, dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{name}.qrels", "w", encoding="utf-8") as f:
        for q, rels in qrels.items():
            for d, r in rels.items():
                f.write(f"{q} 0 {d} {r}\n")
    for mode, run in runs.items():
        with open(folder / f"{name}.{mode}.run", "w", encoding="utf-8") as f:
            for q, docs in run.items():
                for rank, (d, s) in enumerate(sorted(docs.items(), key=lambda kv: -kv[1]), 1):
                    f.write(f"{q} Q0 {d} {rank} {s:.6f} {mode}\n")


def plot_sets(results: dict, folder: Path) -> list[str]:
    """hit@k curves per mode for each set, per-language hit@1 bars, latency distributions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    sets = list(results)
    fig, axes = plt.subplots(1, len(sets), figsize=(4.2 * len(sets), 3.4), squeeze=False)
    for ax, name in zip(axes[0], sets):
        for mode, r in results[name]["modes"].items():
            ax.plot([1, 3, 5, 10], [r["hit@1"], r["hit@3"], r["hit@5"], r["hit@10"]], marker="o", label=mode)
        ax.set_title(f"{name} ({results[name]['split']})")
        ax.set_xlabel("k")
        ax.set_ylabel("hit@k")
        ax.set_xticks([1, 3, 5, 10])
        ax.grid(alpha=0.3)
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(folder / "hit_at_k.png", dpi=110)
    plt.close(fig)
    made.append("hit_at_k.png")

    seed = results.get("seed")
    if seed:
        langs = sorted({g for r in seed["modes"].values() for g in r["by"]["lang"]})
        modes = list(seed["modes"])
        fig, ax = plt.subplots(figsize=(6.5, 3.4))
        w = 0.8 / len(modes)
        for i, m in enumerate(modes):
            vals = [seed["modes"][m]["by"]["lang"].get(g, {}).get("hit@1", 0) for g in langs]
            ax.bar([j + i * w for j in range(len(langs))], vals, width=w, label=m)
        ax.set_xticks([j + 0.4 - w / 2 for j in range(len(langs))], langs)
        ax.set_ylabel("hit@1")
        ax.set_title("seed set: hit@1 by query language")
        ax.legend(fontsize=8)
        ax.set_ylim(0, 1)
        fig.tight_layout()
        fig.savefig(folder / "seed_by_language.png", dpi=110)
        plt.close(fig)
        made.append("seed_by_language.png")

    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    lat = [(f"{n}:{m}", r["latencies_ms"]) for n in sets for m, r in results[n]["modes"].items() if r.get("latencies_ms")]
    if lat:
        ax.boxplot([v for _, v in lat], showfliers=False)
        ax.set_xticks(range(1, len(lat) + 1), [k for k, _ in lat], rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("ms per query (warm)")
        ax.set_title("search latency")
        fig.tight_layout()
        fig.savefig(folder / "latency.png", dpi=110)
        made.append("latency.png")
    plt.close(fig)
    return made


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1, default=float))
