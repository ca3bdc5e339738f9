"""The one table `benchmarks/run` prints: every figure of issue 11, its baseline, ratio and target.

Each benchmark, when `BENCH_ROWS` names a file, appends one JSON line per figure through
`record`; `python benchmarks/figures.py FILE` prints them in the order they were recorded. A
figure with a baseline is judged by its ratio (figure / baseline, measured in the same run);
one without, by its value. Nothing here measures anything.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

_MORE = ">="


def record(
    part: str,
    figure: str,
    value: float,
    unit: str,
    *,
    baseline: float | None = None,
    target: tuple[str, float] | None = None,
    on_value: bool = False,
) -> None:
    """Append one figure to `$BENCH_ROWS`, if set. `target` is (">=" or "<=", bound); it bounds
    the ratio when there is a baseline, else (or with `on_value`) the value itself."""
    rows = os.environ.get("BENCH_ROWS")
    if not rows:
        return
    line: dict[str, object] = {
        "part": part,
        "figure": figure,
        "value": value,
        "unit": unit,
        "baseline": baseline,
    }
    if target is not None:
        line["target"] = [*target, "value" if on_value or baseline is None else "ratio"]
    with Path(rows).open("a") as out:
        out.write(json.dumps(line) + "\n")


def _number(value: float, unit: str) -> str:
    if unit in ("s", "ms", "x"):
        return f"{value:.2f} {unit}"
    return f"{value:,.0f} {unit}"


def render(lines: list[dict[str, object]]) -> list[str]:
    head = ("part", "figure", "measured", "baseline", "ratio", "target", "met")
    rows = [head]
    for r in lines:
        value, unit, baseline = float(r["value"]), str(r["unit"]), r["baseline"]
        ratio = None if baseline is None else value / float(baseline)
        target, met = "", ""
        if "target" in r:
            op, bound, on = r["target"]
            judged = ratio if on == "ratio" else value
            target = f"{op} {bound:g}x" if on == "ratio" else f"{op} {_number(bound, unit)}"
            ok = judged >= bound if op == _MORE else judged <= bound
            met = "yes" if ok else "NO"
        rows.append(
            (
                str(r["part"]),
                str(r["figure"]),
                _number(value, unit),
                "" if baseline is None else _number(float(baseline), unit),
                "" if ratio is None else f"{ratio:.2f}",
                target,
                met,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    left = {0, 1}
    out = []
    for n, row in enumerate(rows):
        cells = [
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


def main() -> None:
    lines = [json.loads(x) for x in Path(sys.argv[1]).read_text().splitlines() if x.strip()]
    table = render(lines)
    print("\n".join(table))
    missed = sum(1 for line in table if line.endswith(" NO"))
    print(f"\n{len(lines)} figures, {missed} target(s) missed")


if __name__ == "__main__":
    main()
