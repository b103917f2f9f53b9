"""The tables of benchmarks/README.md, generated from the records in benchmarks/results/.

    python benchmarks/readme.py            # write the tables between the README's markers
    python benchmarks/readme.py --check    # exit 1 when the README differs from what the records give

Each table sits between a `<!-- table: NAME -->` and a `<!-- end table: NAME -->` line (`fer_book.markers`) and
states what was measured, the calibration of the same run (images/s, `fer_book/calibrate.py`) where the record
has it, and the command that reproduces it. The prose around the tables is written by hand; no number in it.
A table whose script was removed (issue 73) stays in the README outside any marker, as this file last made it.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fer_book.markers import between, marker_command, write_changed  # noqa: E402

README = Path("benchmarks/README.md")
RESULTS = Path("benchmarks/results")


# ---------------------------------------------------------------------------------------------------- helpers


def load(results: Path, name: str) -> list[dict] | dict:
    """A record: a JSON file's object, or a JSONL file's list of lines."""
    text = (results / name).read_text()
    if name.endswith(".jsonl"):
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return json.loads(text)


def f(value, digits: int = 3) -> str:
    """A number as the tables print it ('–' for none)."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        return f"{value + 0.0:.{digits}f}".replace("-0.000", "0.000")
    return str(value)


def spread(values: Sequence[float], digits: int = 3) -> str:
    """Mean ± standard deviation (n − 1) over seeds; the value alone for one."""
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f(float(values[0]), digits)
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def span(values: Iterable[float], digits: int = 0) -> str:
    """The range of some seconds: '12' or '12–15'."""
    values = sorted(v for v in values if v is not None)
    if not values:
        return "–"
    low, high = f"{values[0]:.{digits}f}", f"{values[-1]:.{digits}f}"
    return low if low == high else f"{low}–{high}"


def calibration(values: Iterable[float | None]) -> str:
    """The calibrations of a table's runs, in images/s."""
    seen = sorted({round(v, 1) for v in values if v})
    if not seen:
        return "not recorded (the record keeps the load average only)"
    return " / ".join(f"{v:.1f}" for v in seen) + " images/s"


def table(what: str, cal: str, command: str, header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """A generated block: what was measured, the calibration, the command, then the Markdown table."""
    lines = [
        f"*Measured:* {what}. *Calibration:* {cal}. *Reproduce:* `{command}`",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def cal_of(record: dict) -> float | None:
    """A record's calibration, wherever its script put it."""
    for key in ("calibration_images_per_s", "calibration"):
        value = record.get(key)
        if isinstance(value, dict):
            value = value.get("images_per_s", value.get("before"))
        if value:
            return value
    return None


# ---------------------------------------------------------------------------------------------- preprocessing


def preprocess(results: Path) -> str:
    rec = load(results, "preprocess.json")
    load_avg = rec["machine"]["load_avg_before"][0], rec["machine"]["load_avg_after"][0]
    rows = [
        (r["detector"], r["mode"], r["workers"], r["clips"], f(r["clips_per_s"], 2), f(r["faces_per_s"], 1),
         f(r["detection_rate"], 3))
        for r in rec["results"]
    ]  # fmt: skip
    first = table(
        f"video → face crops on the {rec['sample']['clips']}-clip synthetic sample (1280×720, 15 frames), end to "
        f"end; `pipeline` = `preprocess_dataset`'s defaults, `naive` = every frame at full resolution",
        f"not recorded (load average {load_avg[0]:.1f} before, {load_avg[1]:.1f} after, {rec['machine']['cpus']} CPUs)",
        "benchmarks/bench_preprocess.py",
        ("detector", "mode", "workers", "clips", "clips/s", "faces/s", "detection rate"),
        rows,
    )
    sides = sorted({str(r["max_side"]) for r in rec["max_side_sweep"]}, key=lambda x: int(x) if x.isdigit() else 1e9)
    cells: dict[str, dict[str, str]] = {}
    for r in rec["max_side_sweep"]:
        cells.setdefault(r["detector"], {})[str(r["max_side"])] = f"{r['detection_rate']:.2f} / {r['ms_per_frame']}"
    second = table(
        "the detection size swept (`max_side`, px): detection rate / ms per frame",
        "not recorded",
        "benchmarks/bench_preprocess.py",
        ("detector", *sides),
        [(d, *(c.get(s, "") for s in sides)) for d, c in cells.items()],
    )
    return first + "\n\n" + second


def preprocess_real(results: Path) -> str:
    busy, idle = load(results, "preprocess_real.json"), load(results, "preprocess_real_idle.json")
    stages: dict[tuple[str, str], dict[str, str]] = {}
    for r in busy["stages"]:
        where = "real" if r["clips"].startswith("real") else "sample"
        cell = f"{r['cpu_ms']} ({r.get('cpu_median_ms', '–')})"
        stages.setdefault((r["stage"], r["option"]), {})[where] = cell
    first = table(
        f"CPU ms per clip and stage, fastest of {busy['stages'][0].get('repeats', 7)} (median), the real RAVDESS clip "
        f"(720×720 H.264, 122 frames) and a sample clip (1280×720, 15 frames); start-up once per worker",
        f"{busy['calibration_cnn']['images_per_s']} images/s (OpenCV workload {busy['calibration_before']['ms']} ms "
        f"before, {busy['calibration_after']['ms']} ms after)",
        f"benchmarks/bench_preprocess.py --real --copies {busy['copies']} --repeats 7 --calibrate-cnn",
        ("stage", "option", "real clip", "sample clip"),
        [(s, o, c.get("real", ""), c.get("sample", "")) for (s, o), c in stages.items()]
        + [(r["stage"], r["option"], r["cpu_ms"], "") for r in busy["startup"]],
    )
    rows = []
    for name, rec in (("busy", busy), ("idle", idle)):
        for r in rec["pipeline"] if rec is idle else []:
            rows.append((
                name, r["clips_set"].split(" 720")[0].split(" 1280")[0], r["clips"], r["workers"],
                f(r["scale_to_face"]), r["wall_s"], r["cpu_s"], r["clips_per_s"], r["cpu_ms_per_clip"],
                f"{r['load_before']}–{r['load_after']}",
            ))  # fmt: skip
        est = rec["idle_estimate_real"]
        rows.append((name, "estimate on 2 idle cores, long run", "", 2, "reference / adopted", "", "",
                     f"{est['reference']['clips_per_s_long_run']} / {est['adopted']['clips_per_s_long_run']}", "", ""))  # fmt: skip
    second = table(
        "`preprocess_dataset` end to end (start-up included) on an idle machine, and the long-run estimate from "
        "a worker's CPU time per clip on the busy and the idle machine",
        f"{busy['calibration_cnn']['images_per_s']} images/s (busy); idle: not recorded (OpenCV workload "
        f"{idle['calibration_before']['ms']} ms)",
        f"benchmarks/bench_preprocess.py --real --copies {idle['copies']} --out benchmarks/results/preprocess_real_idle.json",
        ("machine", "clips", "n", "workers", "scale_to_face", "wall s", "CPU s", "clips/s", "CPU ms/clip", "load"),
        rows,
    )
    return first + "\n\n" + second


def small_faces(results: Path) -> str:
    rec = load(results, "small_faces.json")
    sides = list(dict.fromkeys(r["min_side"] for r in rec["rows"]))
    cells: dict[str, dict[int, str]] = {}
    for r in rec["rows"]:
        cells.setdefault(r["detector"], {})[r["min_side"]] = f"{r['detection_rate']:.2f} ({r['ms_per_image']:.1f} ms)"
    return table(
        f"detection rate (ms per image) on {rec['rows'][0]['images']} real faces cropped to "
        f"{rec['crop_side']}×{rec['crop_side']}, upsampled to `min_side` px",
        "not recorded",
        "benchmarks/bench_small_faces.py",
        ("detector", *map(str, sides)),
        [(d, *(c.get(s, "") for s in sides)) for d, c in cells.items()],
    )


# ------------------------------------------------------------------------------------------------ the recipe


def recipe_seeds(results: Path) -> str:
    rec = load(results, "recipe_seeds.json")
    groups: dict[str, list[dict]] = {}
    for r in rec["runs"]:
        groups.setdefault(r["recipe"], []).append(r)
    rows = []
    for name, runs in groups.items():
        acc = [r["accuracy"] for r in runs]
        rows.append((
            name, " ".join(f"{a:.3f}" for a in acc), spread(acc, 2) if len(acc) > 2 else "–",
            f"{sum(r['learnt'] for r in runs)}/{len(runs)}", sum(r["alive_units"] == 0 for r in runs),
            sum(r["train_loss_vs_chance"] >= 0.97 for r in runs), span(r["seconds"] for r in runs),
        ))  # fmt: skip
    return table(
        f"{rec['dataset']}, {rec['size']} px, {rec['protocol']} split, up to {rec['epochs']} epochs: test accuracy "
        "per seed; learnt = accuracy ≥ 0.65; dead = no Dense unit alive on the test faces; stuck = lowest training "
        "loss ≥ 0.97 × ln 2",
        f"not recorded (load average {rec['machine']['load'][0]:.1f})",
        "benchmarks/recipe_seeds.py --work /tmp/recipe [--recipes NAME …] [--seeds 0 1 2 3 4] [--cli]",
        ("recipe", "accuracy per seed", "mean ± std", "learnt", "dead", "stuck", "s/run"),
        rows,
    )


def book_times(results: Path) -> str:
    rec = load(results, "book_times.json")
    budget, slow = rec["budget_machine_images_per_s"], rec["slow_machine_images_per_s"]
    cells = {name[:2]: s for name, s in rec["seconds"].items()}
    cells |= {
        "summed": rec["total_seconds"],
        f"wall ({rec['jobs']} at a time)": rec["wall_seconds"],
        f"wall at {budget:.0f} images/s (budget {rec['budget_seconds']})": rec[
            "projected_wall_seconds_on_budget_machine"
        ],
        f"wall at {slow:.0f} images/s": rec["projected_wall_seconds_on_slow_machine"],
    }
    return table(
        "seconds per executed chapter (01–10) of the book's last recorded build, and the wall time projected by "
        "calibration",
        calibration([rec["calibration"]["images_per_s"]]),
        "make book EVERY_CELL=1 && python -m fer_book.book_times --stage _build/stage",
        tuple(cells),
        [tuple(cells.values())],
    )


def lesson_rows(runs: list[dict], models: set[str]) -> list[tuple]:
    rows = []
    for rec in runs:
        a = rec["args"]
        if a["model"] not in models or len(rec["runs"]) < 3:
            continue
        s, r = rec["summary"], rec["runs"]
        data = f"{a['data']}, {a['protocol']}, {a['size']} px"
        if a.get("subjects") not in (None, "0"):
            data += f", {a['subjects']} {'actors' if a['data'] == 'sample' else 'people'}"
        if a.get("per_class") not in (None, "0"):
            data += f", {a['per_class']} per class"
        bn = "0.9" if a.get("bn_momentum") else ("0.99" if a["model"] != "paper-cnn" else "")
        rows.append((
            a["tag"] or "–", data, *((a["model"], a["epochs"], bn) if len(models) > 1 else (a["epochs"],)),
            a["patience"], a["lr"], f"{a['dropout']}" + (f", L1 {a['l1']}" if float(a["l1"]) else ""),
            len(r), s["train_acc"].replace(" (one run)", ""), s["gap"].replace(" (one run)", ""),
            s["test_acc"].replace(" (one run)", "").replace(" ± nan", ""),
            sum(x["collapsed"] for x in r), span(x["seconds"] for x in r),
        ))  # fmt: skip
    return rows


def lesson_runs(results: Path) -> str:
    return table(
        "the paper's CNN (`train.fit.train_run`) per data set and setting, over seeds: final training accuracy, "
        "training − validation gap, test accuracy (mean ± std), runs flagged collapsed; patience 100 = no early stop; "
        "records of fewer than 3 seeds (early probes) stay in the file only",
        "not recorded (the records keep the load average)",
        "benchmarks/lesson_runs.py --data DATA --protocol P --side S --epochs E --patience P --lr LR "
        "--dropout D --l1 L1 --subjects N --seeds 0,1,2 --tag TAG (each row's values)",
        ("tag", "data, split, side", "epochs", "patience", "lr", "dropout", "seeds", "train acc", "gap", "test acc",
         "collapsed", "s/run"),
        lesson_rows(load(results, "lesson_runs.jsonl"), {"paper-cnn"}),
    )  # fmt: skip


def lesson_runs_bn(results: Path) -> str:
    return table(
        "the batch-normalised models of chapter 7 over seeds, with Keras's momentum 0.99 and with 0.9 "
        "(`models.networks.batch_norm`)",
        "not recorded (the records keep the load average)",
        "benchmarks/lesson_runs.py --model MODEL --data sample --protocol random --side S --epochs E --subjects N "
        "--seeds 0,1,2 --tag TAG (each row's values)",
        ("tag", "data, split, side", "model", "epochs", "BN momentum", "patience", "lr", "dropout", "seeds",
         "train acc", "gap", "test acc", "collapsed", "s/run"),
        lesson_rows(load(results, "lesson_runs.jsonl"), {"mini-xception", "mobilenet-inception"}),
    )  # fmt: skip


def final_vs_best(results: Path) -> str:
    rec = load(results, "final_vs_best.jsonl")[-1]
    cap = int(rec["args"]["cap"])
    settings = list(dict.fromkeys(r["setting"] for r in rec["runs"]))
    rows, finals = [], {}
    for epochs in (cap, 100, int(rec["args"]["epochs"])):
        for setting in settings:
            runs = [r for r in rec["runs"] if r["setting"] == setting]
            c = [r["curves"] for r in runs]
            best = [min(range(epochs), key=lambda e, x=x: x["val_loss"][e]) for x in c]
            final = [x["test_accuracy"][epochs - 1] for x in c]
            finals[(epochs, setting)] = final
            rows.append((
                setting, epochs, ", ".join(str(b + 1) for b in best), spread(final),
                spread([x["test_accuracy"][b] for x, b in zip(c, best)]),
                f"{statistics.mean(x['test_macro_f1'][epochs - 1] for x in c):.3f} / "
                f"{statistics.mean(x['test_macro_f1'][b] for x, b in zip(c, best)):.3f}",
                spread([x["accuracy"][epochs - 1] - x["val_accuracy"][epochs - 1] for x in c]),
            ))  # fmt: skip
    first, second = settings
    for epochs in (cap, 100):
        lead = statistics.mean(finals[(epochs, second)]) - statistics.mean(finals[(epochs, first)])
        widest = max(statistics.stdev(finals[(epochs, s)]) for s in settings)
        rows.append((f"lead of the remedy's final weights (widest std {widest:.3f})", epochs, "", f"{lead:+.3f}",
                     "", "", ""))  # fmt: skip
    for setting in settings:
        stops = [r["stops"] for r in rec["runs"] if r["setting"] == setting]
        text = "; ".join(f"patience {p}: " + "/".join(str(x[p]) for x in stops) for p in stops[0])
        rows.append((setting, "", f"would stop at {text}", "", "", "", ""))
    return table(
        f"chapter 5's two settings, seeds {rec['args']['seeds']}, {rec['args']['epochs']} epochs without stopping, "
        "the 128 test faces scored after every epoch: test accuracy of the final weights and of the best epoch "
        "(lowest validation loss) up to each cap",
        calibration([cal_of(rec)]),
        f"benchmarks/final_vs_best.py --epochs {rec['args']['epochs']} --cap {cap} --seeds {rec['args']['seeds']}",
        ("setting", "epochs", "best epochs", "test acc, final", "at the best epoch", "macro F1 final / best",
         "train − val gap, final"),
        rows,
    )  # fmt: skip


def lesson_robustness(results: Path) -> str:
    runs = load(results, "lesson_robustness.json")["runs"]
    # each chapter's latest measurement: the number (from 1) of the record's run that holds it
    latest = {chapter: number for number, run in enumerate(runs, 1) for chapter in run["claims"]}
    rows = []
    for chapter, number in sorted(latest.items()):
        claims = runs[number - 1]["claims"][chapter]
        graded = {k: c for k, c in claims.items() if not c["checked as"].startswith("==")} or claims
        name, closest = min(graded.items(), key=lambda item: item[1]["smallest margin"])
        held = sum(c["holds in all"] for c in claims.values())
        rows.append((chapter, f"{held} of {len(claims)}", f"{name} ({closest['checked as']})",
                     f(closest["smallest margin"]), number))  # fmt: skip
    dropped = sum(
        not c["holds in all"] for rec in runs for claims in rec.get("no_longer_checked", {}).values()
        for c in claims.values()
    )  # fmt: skip
    used = [runs[number - 1] for number in sorted(set(latest.values()))]
    figures = [rec[key]["images_per_s"] for rec in used for key in ("default_calibration", "calibration")]
    header = ("chapter", "claims holding in all three", "closest claim other than a count (checked as)")
    return table(
        "each checked claim in the book's execution (`default`), under other seeds (offset "
        f"{runs[-1]['seed_offset']}) and with one TensorFlow thread (`threads1`): how many hold in all three, and the "
        f"claim closest to its threshold ({dropped} claims that failed here are no longer checked); `run`: the "
        "record's run that measured the chapter last (its `note` says at which settings)",
        calibration(figures),
        "benchmarks/lesson_robustness.py --default _build/stage --work _build/robustness [--only 06 10]",
        (*header, "smallest margin", "run"),
        rows,
    )


def class_of_30(results: Path) -> str:
    rec = load(results, "class_of_30.json")
    per = rec["seconds_per_notebook"]
    rows = [(rec["chapter"], rec["students"], rec["isolation"], rec["full_marks"], rec["total_seconds"],
             per["median"], per["min"], per["max"], rec["budget_seconds"])]  # fmt: skip
    return table(
        "a class of honest submissions graded with `fer_book grade` (otter run, each in a bubblewrap sandbox); seconds",
        calibration([rec["calibration"]["images_per_s"]]),
        f"benchmarks/class_of_30.py (chapter {rec['chapter']}, {rec['students']} students)",
        ("chapter", "students", "isolation", "full marks", "total s", "median s", "min s", "max s", "budget s"),
        rows,
    )


# --------------------------------------------------------------------------------------- serving and the page


def crop_skew(results: Path) -> str:
    recs = load(results, "crop_skew.jsonl")
    blocks = []
    for run in dict.fromkeys(r["run_name"] for r in recs):
        by = {r["label"]: r for r in recs if r["run_name"] == run}
        before, after = by["before"], by["after"]
        rows = []
        for b in (x for x in before["rows"] if x["set"].startswith("all")):
            a = next(x for x in after["rows"] if (x["set"], x["path"]) == (b["set"], b["path"]))
            rows.append((
                f"{b['set']} ({b['frames']})", b["path"], f(b["accuracy"]), f(a["accuracy"]), f(b["agrees_with_train"]),
                f(a["agrees_with_train"]), f"{b['input_mean_abs_diff']} ({b['input_max_abs_diff']})",
                f"{a['net_input_mean_abs_diff']} ({a['net_input_max_abs_diff']})",
            ))  # fmt: skip
        extra = " --run generated" if run != "reference" else ""
        blocks.append(table(
            f"run `{run}` served three ways from the same frame and box (the 246 frames of the three real sets pooled; "
            "per set in the record): accuracy, share of predictions agreeing "
            "with the train path, mean (largest) gray-level difference of the network's input from the train path; "
            "before (d9f536f, script of 610b6a1) and after issue 37",
            f"before {before['calibration_images_per_s']}, after {after['calibration_images_per_s']} images/s",
            f"benchmarks/crop_skew.py --label after{extra}",
            ("set (frames)", "path", "acc before", "acc after", "agrees before", "agrees after", "input diff before",
             "input diff after"),
            rows,
        ))  # fmt: skip
    return "\n\n".join(blocks)


def resize_cost(results: Path) -> str:
    rows = [
        (r["label"], r["first_epoch_s"], r["median_cached_epoch_s"], r["train_images_per_s"],
         f"{r['calibration_images_per_s']} / {r['calibration_after_images_per_s']}")
        for r in load(results, "resize_cost.jsonl")
    ]  # fmt: skip
    return table(
        "the reference configuration on the sample, 6 epochs, early stopping off: before (32×32 float32 cached) "
        "and after (180×180 uint8 cached, resized by the model every batch)",
        "in the table (before / after the run)",
        "benchmarks/resize_cost.py --label after",
        ("code", "first epoch s", "median cached epoch s", "training images/s", "calibration, images/s"),
        rows,
    )


def demo_page(results: Path) -> str:
    rec, built = load(results, "demo_page.json"), load(results, "demo_page_built.json")
    mb = 1e6
    rows = [
        ("test folder", name, f(v["frames"]), v["median_emotion_ms"], v["median_total_ms"])
        for name, v in rec["per_frame"].items()
    ]
    rows += [
        ("built book", name, v["frames"], v["median_emotion_ms"], v["median_total_ms"])
        for name, v in built.items()
        if isinstance(v, dict) and "frames" in v
    ]
    sizes = "; ".join(
        f"{k} default: folder {s['folder_bytes'] / mb:.1f} MB, one wasm build {s['one_wasm_build_bytes'] / mb:.1f} MB, "
        f"models {sum(s['models_bytes'].values()) / mb:.2f} MB"
        for k, s in rec["size"].items()
    )
    return table(
        f"median ms per frame after 5 warm-up frames ({rec['browser']}); {sizes}; the built page downloads "
        f"{built['page_bytes_downloaded'] / mb:.1f} MB",
        f"not recorded (load average {rec['machine']['load_average'][0]:.1f})",
        "FER_DEMO_BENCHMARK=benchmarks/results/demo_page.json python -m pytest -p no:xdist tests/test_demo_models.py",
        ("where", "model", "frames", "emotion ms", "detect + emotion ms"),
        rows,
    )


# -------------------------------------------------------------------------------------- the book's wild network


def wild_options(results: Path) -> str:
    recs = load(results, "wild_options.jsonl")
    groups: dict[str, list[dict]] = {}
    for r in recs:
        groups.setdefault(r["option"], []).append(r)
    rows = [
        (option, ", ".join(str(r["seed"]) for r in rs), rs[0]["epochs"], f"{rs[0]['params']:,}",
         spread([r["accuracy"] for r in rs]), spread([r["macro_f1"] for r in rs]),
         spread([r["tta"]["flip"]["accuracy"] for r in rs]), spread([r["cross"]["none"]["accuracy"] for r in rs]),
         spread([r["cross"]["none"]["macro_f1"] for r in rs]), span(r["train_seconds"] for r in rs))
        for option, rs in groups.items()
    ]  # fmt: skip
    return table(
        "`train --recipe wild` over seeds and each option once (first seed) on generated 48-px crops, scored on "
        "their test side (plain and with flip test-time augmentation) and across on the London faces",
        calibration(cal_of(r) for r in recs),
        "benchmarks/wild_options.py --crops CROPS --cross OTHER_CROPS --epochs N --seeds 0 1 2 --options …",
        ("option", "seeds", "epochs", "params", "test acc", "test macro F1", "acc, flip TTA", "London acc",
         "London macro F1", "train s"),
        rows,
    )  # fmt: skip


TABLES: dict[str, tuple[Callable[[Path], str], ...]] = {  # a README block: its tables, in order
    "preprocess": (preprocess,),
    "preprocess_real": (preprocess_real,),
    "small_faces": (small_faces,),
    "recipe_seeds": (recipe_seeds,),
    "book_times": (book_times,),
    "lesson_runs": (lesson_runs,),
    "lesson_runs_bn": (lesson_runs_bn,),
    "final_vs_best": (final_vs_best,),
    "robustness": (lesson_robustness, class_of_30),
    "crop_skew": (crop_skew, resize_cost),
    "demo_page": (demo_page,),
    "wild_options": (wild_options,),
}


def markers(name: str) -> tuple[str, str]:
    return f"<!-- table: {name} -->", f"<!-- end table: {name} -->"


def render(text: str, results: Path, where: Path) -> str:
    """`text` (the README) with every table regenerated from `results`."""
    for name, makers in TABLES.items():
        text = between(text, markers(name), "\n\n".join(make(results) for make in makers), where)
    return text


def write(root: Path, check: bool) -> bool:
    """Regenerate the README under `root` (unless `check`); whether it was current."""
    path = root / README
    text = path.read_text()
    return write_changed(path, text, render(text, root / RESULTS, path), check)


def main(argv: Sequence[str] | None = None) -> int:
    """Write the tables (0), or with `--check` exit 1 when the README differs; 2 when a marker is missing."""
    prog, stale = "python benchmarks/readme.py", "benchmarks/README.md is stale"
    return marker_command(argv, prog, __doc__.splitlines()[0], write, "benchmarks/README.md", stale, ROOT)


if __name__ == "__main__":
    sys.exit(main())
