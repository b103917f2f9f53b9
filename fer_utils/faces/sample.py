"""The embedded synthetic sample: RAVDESS-named clips animated from the 24 real neutral stills.

Each clip bends one actor's still by a per-emotion landmark template (a thin-plate-spline warp) from neutral to the
peak, with head motion and lighting jitter, laid out as RAVDESS so the real pipeline runs on it unchanged. Same
arguments, same bytes. For teaching the pipeline, not for claims about real faces; CC BY-NC-SA 4.0, as the stills."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from fer_utils.assets import still_paths, stills_dir
from fer_utils.data.corpora import RAVDESS_ACTORS, RAVDESS_EMOTIONS
from fer_utils.errors import InputError, OutputError, SetupError
from fer_utils.storage.atomic import atomic_file

N_FRAMES = 15
FPS = 15
FRAME_SIZE: tuple[int, int] = (1280, 720)  # (width, height), RAVDESS's
EMOTION_CODES: tuple[int, ...] = tuple(int(code) for code in RAVDESS_EMOTIONS)
INTENSITY_GAIN: dict[int, float] = {1: 1.0, 2: 1.4}
GRID_STEP = 8  # pixels between coarse-grid points of the warp field (at the still's 398×224)
PEAK_AT = 0.35  # fraction of the clip at which the expression reaches its peak (then held)
ANCHOR_RING = 1.7  # radius of the zero-displacement ring around the face, in landmark radii
FOURCC = "mp4v"

BROWS = tuple(range(17, 27))  # dlib's 68-point groups, down to MIDLINE
BROWS_INNER = (20, 21, 22, 23)
BROWS_OUTER = (17, 18, 25, 26)
UPPER_LIDS = (37, 38, 43, 44)
LOWER_LIDS = (40, 41, 46, 47)
NOSE_BASE = (31, 32, 33, 34, 35)
CHEEKS = (2, 3, 13, 14)
CORNER_NEIGHBOURS = (49, 53, 55, 59)  # outer-lip points next to the corners: follow them part-way
MOUTH_CORNERS = (48, 54, 60, 64)
UPPER_LIP = (49, 50, 51, 52, 53, 61, 62, 63)
LOWER_LIP = (55, 56, 57, 58, 59, 65, 66, 67)
UPPER_LIP_MID = (50, 51, 52, 61, 62, 63)  # without the points next to the corners, where the lips are thin
LOWER_LIP_MID = (56, 57, 58, 65, 66, 67)
JAW_LOW = (6, 7, 8, 9, 10)
JAW_MID = (4, 5, 11, 12)
MIDLINE = (8, 27, 28, 29, 30, 33, 51, 57, 62, 66)
# The warp's control points: all but the inner lip (60-67), which on a closed mouth would pin a point to two moves.
CONTROL_POINTS = tuple(range(60))

# Peak moves per emotion at normal intensity: (landmarks, outward from the midline, downward) in inter-ocular distances
# (~45 px), adding up; caricatures of FACS action units that a 96-px crop shows (happy AU12+AU6, sad AU1+AU15, angry
# AU4+AU23/24, fearful AU1+2+4+AU5+AU20, disgust AU10+AU9, surprised AU1+2+AU26/27; calm: lowered lids, faint smile).
EMOTION_TEMPLATES: dict[str, tuple[tuple[tuple[int, ...], float, float], ...]] = {
    "neutral": (),
    "calm": (
        (MOUTH_CORNERS, 0.06, -0.06),
        (CORNER_NEIGHBOURS, 0.03, -0.03),
        (BROWS, 0.0, 0.05),
        (UPPER_LIDS, 0.0, 0.025),
        (LOWER_LIP, 0.0, -0.03),
    ),
    "happy": (
        (MOUTH_CORNERS, 0.18, -0.17),
        (CORNER_NEIGHBOURS, 0.09, -0.09),
        (UPPER_LIP, 0.03, -0.04),
        (LOWER_LIP, 0.03, 0.04),
        (LOWER_LIDS, 0.0, -0.03),
        (NOSE_BASE, 0.04, -0.03),
        (CHEEKS, 0.02, -0.07),
        (JAW_MID, 0.0, -0.04),
    ),
    "sad": (
        (MOUTH_CORNERS, -0.04, 0.16),
        (CORNER_NEIGHBOURS, -0.02, 0.07),
        (BROWS_INNER, -0.03, -0.14),
        (BROWS_OUTER, 0.0, 0.05),
        (UPPER_LIDS, 0.0, 0.02),
        (LOWER_LIP, 0.0, -0.06),
        (JAW_LOW, 0.0, -0.05),
    ),
    "angry": (
        (BROWS, -0.03, 0.09),
        (BROWS_INNER, -0.05, 0.04),
        (UPPER_LIDS, 0.0, 0.02),
        (LOWER_LIDS, 0.0, -0.02),
        (UPPER_LIP_MID, 0.0, 0.04),
        (LOWER_LIP_MID, 0.0, -0.05),
        (MOUTH_CORNERS, -0.08, 0.02),
        (CORNER_NEIGHBOURS, -0.04, 0.0),
        (NOSE_BASE, 0.02, -0.02),
    ),
    "fearful": (
        (BROWS, 0.0, -0.15),
        (BROWS_INNER, -0.05, -0.05),
        (UPPER_LIDS, 0.0, -0.06),
        (MOUTH_CORNERS, 0.18, 0.05),
        (CORNER_NEIGHBOURS, 0.08, 0.02),
        (LOWER_LIP, 0.0, 0.12),
        (JAW_LOW, 0.0, 0.08),
    ),
    "disgust": (
        (UPPER_LIP, 0.0, -0.14),
        (NOSE_BASE, 0.04, -0.09),
        (BROWS_INNER, -0.04, 0.08),
        (BROWS, 0.0, 0.03),
        (LOWER_LIDS, 0.0, -0.03),
        (MOUTH_CORNERS, -0.04, 0.06),
        (CORNER_NEIGHBOURS, -0.02, 0.05),
        (LOWER_LIP, 0.0, 0.04),
    ),
    "surprised": (
        (BROWS, 0.0, -0.20),
        (UPPER_LIDS, 0.0, -0.07),
        (JAW_LOW, 0.0, 0.24),
        (JAW_MID, 0.0, 0.09),
        (LOWER_LIP, 0.0, 0.26),
        (MOUTH_CORNERS, -0.04, 0.12),
        (CORNER_NEIGHBOURS, -0.03, 0.06),
        (UPPER_LIP, 0.0, -0.04),
    ),
}

README = """# Synthetic RAVDESS-style sample (NOT real data)

Every clip here is **synthetic**: one of the 24 real neutral RAVDESS stills, warped by
`fer_utils.faces.sample` with a hand-made landmark template per emotion, a neutral-to-peak ramp, small head
motion and lighting jitter. Names and layout follow RAVDESS (`Actor_XX/02-01-EE-II-SS-01-XX.mp4`);
the two neutral clips per actor differ by statement, since RAVDESS has no strong neutral.

Good for: running and teaching the whole pipeline (indexing, face detection, cropping, training,
evaluation, deployment). Not good for: any claim about emotion recognition accuracy on real faces.

Generated with: {params}
Clips: {n_clips} ({n_frames} frames at {fps} fps, {width}x{height}); list in `clips.csv`.
License: CC BY-NC-SA 4.0, see ATTRIBUTION.md.
"""

DERIVATIVE_NOTE = """
## This folder

The clips in this folder are synthetic derivatives of the stills above, made by
`fer_utils.faces.sample` (landmark-driven warping, scaling, head motion and lighting changes). They are
shared under the same license, CC BY-NC-SA 4.0, for non-commercial use only, with this attribution.
They are not RAVDESS recordings and show no real emotional expression.
"""


@dataclass(frozen=True)
class ClipSpec:
    """One clip to render: its RAVDESS fields and its file name."""

    actor: int
    emotion_code: int
    intensity: int
    statement: int
    repetition: int = 1

    @property
    def clip_id(self) -> str:
        """RAVDESS identifier: video-only (02), speech (01), then the clip's fields."""
        fields = (self.emotion_code, self.intensity, self.statement, self.repetition, self.actor)
        return "02-01-" + "-".join(f"{value:02d}" for value in fields)

    @property
    def relpath(self) -> str:
        """Path below the sample folder, laid out as RAVDESS ships it."""
        return f"Actor_{self.actor:02d}/{self.clip_id}.mp4"


def plan_clips(actors: Sequence[int], emotions: Sequence[int], intensities: Sequence[int]) -> list[ClipSpec]:
    """Every clip of the sample; neutral's k-th variant uses statement k instead of intensity k."""
    rules = (
        (actors, RAVDESS_ACTORS, "RAVDESS actors are 1..24"),
        (emotions, EMOTION_CODES, "RAVDESS emotion codes are 1..8"),
        (intensities, INTENSITY_GAIN, "intensities are 1 (normal) and 2 (strong)"),
    )
    for values, valid, rule in rules:
        for value in values:
            if value not in valid:
                raise InputError(f"{rule}, got {value}")
    return [
        ClipSpec(actor, 1, 1, statement=level) if code == 1 else ClipSpec(actor, code, level, statement=1)
        for actor in actors
        for code in emotions
        for level in intensities
    ]


def template_displacement(emotion: str, landmarks: np.ndarray) -> np.ndarray:
    """Peak displacement (68, 2) in pixels of `emotion`'s template on a face with these landmarks."""
    pts = np.asarray(landmarks, dtype=np.float64)
    iod = float(np.linalg.norm(pts[36:42].mean(axis=0) - pts[42:48].mean(axis=0)))
    side = np.sign(pts[:, 0] - pts[27:31, 0].mean())
    side[list(MIDLINE)] = 0.0
    moves = np.zeros((68, 2))
    for indices, outward, downward in EMOTION_TEMPLATES[emotion]:
        idx = list(indices)
        moves[idx, 0] += outward * side[idx]
        moves[idx, 1] += downward
    return moves * iod


def _anchors(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Zero-displacement points keeping the warp local: a ring around the face, the border but its bottom (jaw drop)."""
    height, width = shape
    centre = landmarks.mean(axis=0)
    radius = ANCHOR_RING * float(np.linalg.norm(landmarks - centre, axis=1).max())
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    ring = centre + radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    xs, ys = np.linspace(0, width - 1, 5), np.linspace(0, height - 1, 3)
    border = [(x, 0.0) for x in xs] + [(x, y) for x in (0, width - 1) for y in ys[1:]]
    return np.vstack([ring, np.array(border)])


def warp_field(landmarks: np.ndarray, displacement: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Backward warp field (H, W, 2) float32 that moves `landmarks` by `displacement`: the spline goes through the
    *moved* landmarks, so sampling at `q - field(q)` brings each exactly there (not only to first order)."""
    import cv2
    from scipy.interpolate import RBFInterpolator

    height, width = shape
    anchors = _anchors(landmarks, shape)
    control = list(CONTROL_POINTS)
    points = np.vstack([landmarks[control] + displacement[control], anchors])
    values = np.vstack([displacement[control], np.zeros_like(anchors)])
    spline = RBFInterpolator(points, values, kernel="thin_plate_spline")
    gw, gh = width // GRID_STEP + 1, height // GRID_STEP + 1
    gx, gy = np.meshgrid(np.linspace(0, width - 1, gw), np.linspace(0, height - 1, gh))
    coarse = spline(np.stack([gx.ravel(), gy.ravel()], axis=1)).reshape(gh, gw, 2).astype(np.float32)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)


def ramp(n_frames: int) -> np.ndarray:
    """Expression strength per frame: 0 to 1 at PEAK_AT (easing out), then held: early sampled frames show it too."""
    t = np.clip(np.arange(n_frames) / max(1.0, PEAK_AT * (n_frames - 1)), 0.0, 1.0)
    return 1.0 - (1.0 - t) ** 2


def _source_map(grid: np.ndarray, landmarks: np.ndarray, angle: float, shift: tuple[float, float]) -> np.ndarray:
    """The cv2.remap map of the still's pixel `grid` (H, W, 2): face centred, rotated by `angle`, shifted."""
    import cv2

    height, width = grid.shape[:2]
    cx, cy = (float(v) for v in landmarks.mean(axis=0))
    matrix = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
    matrix[0, 2] += width / 2 + shift[0] - cx
    matrix[1, 2] += height / 2 + shift[1] - cy
    inverse = cv2.invertAffineTransform(matrix).astype(np.float32)
    return grid @ inverse[:, :2].T + inverse[:, 2]


def expression_map(source: np.ndarray, landmarks: np.ndarray, displacement: np.ndarray) -> np.ndarray:
    """Compose the expression warp with a frame's `source` map: sample the still at s - field(s), the field looked
    up where the frame samples the still (at the output pixel, head motion would shift it off the features)."""
    import cv2

    if not displacement.any():
        return source
    field = warp_field(landmarks, displacement, source.shape[:2])
    moved = cv2.remap(field, source, None, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return source - moved


def render_clip(
    still: np.ndarray,
    landmarks: np.ndarray,
    spec: ClipSpec,
    path: Path,
    *,
    n_frames: int = N_FRAMES,
    fps: int = FPS,
    frame_size: tuple[int, int] = FRAME_SIZE,
    seed: int = 0,
) -> None:
    """Write one clip of `spec` to `path` (mp4v, atomically): `still` from neutral to the peak; head motion (±1.5°,
    ±1%) and lighting (gain ±6%, offset ±6) follow random sinusoids seeded by the seed and the clip's fields."""
    import cv2

    height, width = still.shape[:2]
    rng = np.random.default_rng([seed, spec.actor, spec.emotion_code, spec.intensity, spec.statement])
    emotion = RAVDESS_EMOTIONS[f"{spec.emotion_code:02d}"]
    peak = template_displacement(emotion, landmarks) * INTENSITY_GAIN[spec.intensity]
    grid = np.stack(np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)), axis=-1)
    phase = rng.uniform(0, 2 * np.pi, size=5)
    freq = rng.uniform(0.4, 1.0, size=5)
    amp = np.array([1.5, 0.01 * width, 0.01 * height, 0.06, 6.0]) * rng.uniform(0.5, 1.0, size=5)
    with atomic_file(path, keep_suffix=True) as tmp:  # the extension last: VideoWriter picks the format by it
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*FOURCC), float(fps), tuple(frame_size))
        if not writer.isOpened():
            raise SetupError(f"OpenCV cannot write {FOURCC} video to {tmp}")
        try:
            for i, strength in enumerate(ramp(n_frames)):
                wave = amp * np.sin(2 * np.pi * freq * i / fps + phase)
                source = _source_map(grid, landmarks, float(wave[0]), (float(wave[1]), float(wave[2])))
                source = expression_map(source, landmarks, strength * peak)
                face = cv2.remap(still, source, None, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                face = cv2.convertScaleAbs(face, alpha=1.0 + wave[3], beta=wave[4])
                writer.write(cv2.resize(face, tuple(frame_size), interpolation=cv2.INTER_LINEAR))
        finally:
            writer.release()


def still_landmarks(actors: Sequence[int]) -> dict[int, np.ndarray]:
    """The 68 dlib landmarks of each actor's still (dlib HOG finds exactly one face in each)."""
    import cv2

    from fer_utils.faces.crops import make_detector, make_landmarker

    detector, landmarker = make_detector("dlib-hog"), make_landmarker()
    paths = still_paths()
    result = {}
    for actor in actors:
        image = cv2.imread(str(paths[actor - 1]))
        boxes = detector.detect(image)
        if len(boxes) != 1:
            raise InputError(f"expected one face in {paths[actor - 1].name}, dlib HOG found {len(boxes)}")
        result[actor] = landmarker.landmarks(image, boxes[0])
    return result


def _render_actor(out: Path, actor: int, landmarks: np.ndarray, specs: list[ClipSpec], options: dict) -> list[dict]:
    """Render every clip of one actor (a worker task); returns one row per clip."""
    import cv2

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # one process per core already; OpenCV's own threads would only contend
    try:
        still = cv2.imread(str(still_paths()[actor - 1]))
        rows = []
        for spec in specs:
            path = out / spec.relpath
            render_clip(still, landmarks, spec, path, **options)
            emotion = RAVDESS_EMOTIONS[f"{spec.emotion_code:02d}"]
            row = {"path": str(path), "clip_id": spec.clip_id, "subject": f"Actor_{actor:02d}", "emotion": emotion}
            rows.append(row | asdict(spec))
    finally:
        cv2.setNumThreads(threads)
    return rows


def _write_docs(out: Path, n_clips: int, params: dict) -> None:
    """ATTRIBUTION.md (the stills' attribution plus the derivative note) and README.md (synthetic!)."""
    attribution = (stills_dir() / "ATTRIBUTION.md").read_text(encoding="utf-8")
    (out / "ATTRIBUTION.md").write_text(attribution.rstrip() + "\n" + DERIVATIVE_NOTE, encoding="utf-8")
    width, height = params["frame_size"]
    joined = ", ".join(f"{k}={v}" for k, v in params.items())
    text = README.format(**params, params=joined, n_clips=n_clips, width=width, height=height)
    (out / "README.md").write_text(text, encoding="utf-8")


def check_sample_folder(out: Path) -> None:
    """OutputError unless `out` is new, empty or an earlier sample (its README.md, written first): nothing written."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file, not a folder (nothing was written)")
    names = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    readme = out / "README.md"
    if names and not (readme.is_file() and readme.read_bytes().startswith(README.splitlines()[0].encode() + b"\n")):
        raise OutputError(
            f"--out {out} holds files the sample did not write ({', '.join(names[:5])}"
            f"{', ...' if len(names) > 5 else ''}): give a new or empty folder (nothing was written)"
        )


def generate_sample(
    out: Path,
    *,
    actors: Sequence[int] = RAVDESS_ACTORS,
    emotions: Sequence[int] = EMOTION_CODES,
    intensities: Sequence[int] = (1, 2),
    n_frames: int = N_FRAMES,
    fps: int = FPS,
    frame_size: tuple[int, int] = FRAME_SIZE,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Generate the sample in `out` (by default 384 clips, 1280×720: `frame_size` must be 16:9); one row per clip
    (`clips.csv`: paths relative to `out`). `workers` processes render an actor each; same arguments, same bytes."""
    if n_frames < 2 or fps < 1:
        raise InputError(f"need n_frames >= 2 and fps >= 1, got {n_frames} and {fps}")
    width, height = frame_size
    if width < 64 or height < 36 or abs(width / height - 16 / 9) > 0.03:
        raise InputError(f"frame_size must be 16:9 like the stills and RAVDESS (e.g. 1280×720), got {frame_size}")
    actors = list(dict.fromkeys(actors))  # an actor listed twice is rendered once
    emotions, intensities = list(dict.fromkeys(emotions)), list(dict.fromkeys(intensities))
    specs = plan_clips(actors, emotions, intensities)
    if not specs:
        raise InputError("nothing to generate: actors, emotions and intensities must not be empty")
    out = Path(out)
    check_sample_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    options = {"n_frames": n_frames, "fps": fps, "frame_size": tuple(frame_size), "seed": seed}
    params = {"actors": _ranges(actors), "emotions": emotions, "intensities": intensities, **options}
    _write_docs(out, len(specs), params)  # first: a folder an interrupted run left is recognised as the sample's
    landmarks = still_landmarks(actors)
    tasks = [(out, a, landmarks[a], [s for s in specs if s.actor == a], options) for a in actors]
    workers = min(len(actors), os.cpu_count() or 1) if workers is None else workers
    rows: list[dict] = []
    with tqdm(total=len(specs), unit="clip", desc="sample", disable=not progress) as bar, ExitStack() as stack:
        render = map  # workers 0 or 1: in this process
        if workers > 1:
            render = stack.enter_context(ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))).map
        for task, result in zip(tasks, render(_render_actor, *zip(*tasks))):
            rows += result
            bar.update(len(task[3]))
    table = pd.DataFrame(rows)
    relative = table.assign(path=table["path"].map(lambda p: Path(p).relative_to(out).as_posix()))
    relative.to_csv(out / "clips.csv", index=False)  # relative paths: the folder can be moved
    return table


def _ranges(values: Sequence[int]) -> str:
    """A short text for a list of ints: '1-24' for a full range, else the comma-separated list."""
    if list(values) == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}-{values[-1]}"
    return ",".join(map(str, values))


def sample_size_bytes(out: Path) -> int:
    """Total bytes of the clips in a sample folder."""
    return sum(p.stat().st_size for p in Path(out).rglob("*.mp4"))
