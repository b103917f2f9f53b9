"""Inference: the emotion of every face in an image or a video, with an optional annotated copy.

`Recognizer` crops each face exactly as preprocessing does (the model's `CropSpec`); videos are streamed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fer_utils.data.media import check_media, frame_rate, open_clip, read_image, to_uint8
from fer_utils.errors import InputError, MediaError, OutputError
from fer_utils.faces.crops import CropSpec, FaceDetector, make_detector, spec_crop
from fer_utils.registry import DEFAULT_DETECTOR, FACE_DETECTORS
from fer_utils.storage.atomic import atomic_file
from fer_utils.storage.run_files import probability_columns

if TYPE_CHECKING:
    import keras

    from fer_utils.train.runs import LoadedRun, RunFolder


@dataclass(frozen=True)
class FacePrediction:
    """One face in one frame: its box, the predicted emotion and every class's probability."""

    frame_index: int
    face: int
    x: int
    y: int
    w: int
    h: int
    emotion: str
    probabilities: dict[str, float]


@dataclass
class FrameResult:
    """One frame (BGR or gray, as decoded), its faces (largest first) and their model input crops (uint8 gray)."""

    frame_index: int
    image: np.ndarray
    faces: list[FacePrediction]
    crops: list[np.ndarray]


def stream_frames(path: Path, every: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(index, frame) of a still image, or of every (`every`-th) video frame, one at a time (others not decoded)."""
    path = Path(path)
    if every is not None and every < 1:
        raise InputError(f"every must be a positive step or None, got {every}")
    if check_media(path) == "image":
        yield 0, read_image(path)
        return
    step, index, decoded = every or 1, 0, 0
    with open_clip(path, threads=None) as capture:
        while capture.grab():
            if index % step == 0:
                ok, frame = capture.retrieve()
                if ok and frame is not None:
                    decoded += 1
                    yield index, frame
            index += 1
    if decoded == 0:
        raise MediaError(f"{path.name}: no frame could be decoded")


FALLBACK_FPS = 25.0  # an annotated copy's frame rate when its source's container does not say
# the names an annotated copy may take to be written as a video (mp4v), the default first
VIDEO_OUT_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v")


def check_annotated_out(out: Path | None, media: Path | None = None) -> None:
    """OutputError, before any work, unless `out` is None, a video name for a clip, or an image name OpenCV writes for
    a still (each the other way round would hold one frame, or one frame as a video)."""
    import cv2

    if out is None:
        return
    is_video_out = Path(out).suffix.lower() in VIDEO_OUT_SUFFIXES
    if not is_video_out and not cv2.haveImageWriter(str(out)):
        raise OutputError(
            f"--out {out}: OpenCV cannot write an image named {Path(out).name}; use .png or .jpg, "
            f"or for a video {', '.join(VIDEO_OUT_SUFFIXES)}"
        )
    if media is None:
        return
    kind = check_media(media)
    if is_video_out and kind == "image":
        raise OutputError(
            f"--out {out} is a video, but {Path(media).name} is a still: name it {Path(out).stem}.png (or .jpg)"
        )
    if not is_video_out and kind != "image":
        raise OutputError(
            f"--out {out} is an image, but {Path(media).name} is a {'GIF' if kind == 'gif' else 'video'}: "
            f"the annotated copy would hold its first frame only; name it {Path(out).stem}.mp4 (or "
            f"{', '.join(VIDEO_OUT_SUFFIXES[1:])}) for the annotated video"
        )


class Recognizer:
    """The one inference path (CLI and chapters): a prediction per face and frame, cropped as the model's `spec`."""

    def __init__(
        self,
        model: keras.Model | None = None,
        classes: Sequence[str] | None = None,
        detector: str | FaceDetector | None = None,
        *,
        spec: CropSpec | None = None,
        tta: str | None = None,
    ) -> None:
        """`model` None: the package's pretrained model (`deploy.pretrained`) with its classes, crops and TTA;
        `tta` None: the model's own (its run's recipe), else none."""
        import keras

        from fer_utils.evaluate.metrics import check_tta
        from fer_utils.models.networks import check_classes, input_side

        if model is None:
            from fer_utils.deploy.pretrained import pretrained_run

            if classes is not None:
                raise InputError("classes go with a model of yours: the pretrained model has its own")
            loaded = pretrained_run()
            model, classes, spec, tta = loaded.model, loaded.classes, spec or loaded.spec, tta or loaded.tta
        if not isinstance(model, keras.Model):
            raise InputError(
                f"Recognizer takes a loaded keras.Model, not {type(model).__name__} {model!r}: for a run folder or a "
                "model file in one, use Recognizer.of_run(folder)"
            )
        if classes is None:
            raise InputError("give the model's classes (in its output order) with the model")
        self.tta = check_tta(tta or "none")
        if len(model.input_shape) != 4:
            raise InputError(
                f"{model.name} reads clips {tuple(model.input_shape[1:])}, not single images: predict it on a video "
                "with sequences.predict_clip (the CLI's predict does)"
            )
        side = input_side(model)
        spec = spec or (CropSpec(side=side) if side else CropSpec())
        if side is not None and side != spec.side:
            raise InputError(
                f"the model takes {side}×{side} crops but its crop spec cuts {spec.side}×{spec.side}: pass the "
                "spec of the crops it was trained on (Recognizer.of_run reads it from the run)"
            )
        if spec.align:
            raise InputError(
                "the model was trained on eye-aligned crops, which the recognizer does not make: its predictions "
                "would come from differently cropped faces; train on crops made without --align"
            )
        if detector is None:
            detector = spec.detector if spec.detector in FACE_DETECTORS else DEFAULT_DETECTOR
        self.detector = make_detector(detector) if isinstance(detector, str) else detector
        self.spec = spec.served_with(self.detector.name)
        self.model, self.size, self.margin = model, self.spec.side, self.spec.margin
        self.classes = check_classes(model, classes)

    @classmethod
    def of_run(
        cls,
        run: RunFolder | LoadedRun | str | os.PathLike,
        detector: str | FaceDetector | None = None,
        tta: str | None = None,
    ) -> Recognizer:
        """A run's own recognizer (`run`: a run, or its folder): its model, classes, crop spec and (`tta` None) served
        TTA, so that it crops and reads faces as the model was made to."""
        from fer_utils.train.runs import LoadedRun, RunFolder

        if isinstance(run, (str, os.PathLike)):
            run = RunFolder(Path(run))
        loaded = run if isinstance(run, LoadedRun) else run.open()
        return cls(loaded.model, loaded.classes, detector, spec=loaded.spec, tta=tta or loaded.tta)

    def frame(self, image: np.ndarray, frame_index: int = 0) -> FrameResult:
        """Detect every face in `image` (BGR/gray, any size), crop each as in preprocessing, classify."""
        if not isinstance(image, np.ndarray):
            raise InputError(
                f"frame takes an image as an array (BGR or gray), not {type(image).__name__}: for a file, use "
                "predict_media(path)"
            )
        boxes = self.detector.detect(image)
        crops = [spec_crop(image, box, self.spec) for box in boxes]
        if not crops:
            return FrameResult(frame_index, image, [], [])
        faces = []
        for i, (box, p) in enumerate(zip(boxes, self.probabilities(np.stack(crops)))):
            emotion = self.classes[int(p.argmax())]
            scores = {name: float(v) for name, v in zip(self.classes, p)}
            faces.append(FacePrediction(frame_index, i, box.x, box.y, box.w, box.h, emotion, scores))
        return FrameResult(frame_index, image, faces, crops)

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        """Class probabilities (N, classes) of uint8 gray crops (N, size, size), averaged over `tta`'s views."""
        from fer_utils.evaluate.metrics import tta_probabilities

        images = np.asarray(crops)
        if images.ndim != 3:
            raise InputError(
                f"probabilities takes a stack of gray crops (N, side, side), got shape {images.shape}: "
                "for one crop, pass crop[None]"
            )
        images = images[..., None].astype(np.float32)
        return tta_probabilities(lambda x: np.asarray(self.model.predict_on_batch(x)), images, self.tta)

    def stream(self, path: Path, every: int | None = None) -> Iterator[FrameResult]:
        """`frame` for each (`every`-th) frame of an image or video, one at a time (see `stream_frames`)."""
        for index, image in stream_frames(Path(path), every):
            yield self.frame(image, index)

    def table(self, faces: Sequence[FacePrediction]) -> pd.DataFrame:
        """One row per face: frame_index, face, box, emotion, then one probability column per class."""
        columns = probability_columns(self.classes)
        rows = [{**asdict(p), **dict(zip(columns, (p.probabilities[c] for c in self.classes)))} for p in faces]
        return pd.DataFrame(rows, columns=["frame_index", "face", "x", "y", "w", "h", "emotion", *columns])

    def predict_media(self, path: Path, every: int | None = None, out: Path | None = None) -> pd.DataFrame:
        """Every face of an image or of every (`every`-th) video frame as a table, whose `attrs` say how many frames
        were read (`frames_read`, with or without a face) and their shape (`frame_shape`); `out`: the annotated copy."""
        from fer_utils.storage.outputs import check_outputs

        path = Path(path)
        check_outputs({"out": out}, reads=[path], overwrite=True)  # never onto the input; the CLI asks first
        check_annotated_out(out, path)
        faces: list[FacePrediction] = []
        read, shape = 0, None
        fps = FALLBACK_FPS if out is None else frame_rate(path) or FALLBACK_FPS  # a clip opened again only to annotate
        with AnnotatedWriter(out, fps / (every or 1)) as writer:
            for result in self.stream(path, every):
                faces.extend(result.faces)
                read, shape = read + 1, result.image.shape
                writer.write(annotate(result.image, result.faces))
        table = self.table(faces)
        table.attrs.update(frames_read=read, frame_shape=shape)
        return table


class AnnotatedWriter:
    """Writes annotated frames to `out` (an image, or an mp4v video) atomically; does nothing when `out` is None."""

    def __init__(self, out: Path | None, fps: float) -> None:
        self.out, self.fps, self.writer, self.image = (Path(out) if out else None), fps, None, None
        self.video = ExitStack()  # the video's temporary file (`atomic_file`), opened with the first frame

    def __enter__(self) -> AnnotatedWriter:
        return self

    def write(self, frame: np.ndarray) -> None:
        """Add one annotated frame (BGR)."""
        import cv2

        if self.out is None:
            return
        if self.out.suffix.lower() not in VIDEO_OUT_SUFFIXES:
            self.image = self.image if self.image is not None else frame  # a still: the first frame
            return
        if self.writer is None:
            tmp = self.video.enter_context(atomic_file(self.out, keep_suffix=True))  # VideoWriter reads the suffix
            height, width = frame.shape[:2]
            self.writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (width, height))
            if not self.writer.isOpened():
                raise OutputError(f"OpenCV cannot write an mp4v video named {self.out.name}")
        self.writer.write(frame)

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, trace: object) -> None:
        import cv2

        from fer_utils.storage.outputs import write_atomic

        if self.writer is not None:
            self.writer.release()
        if kind is None and self.image is not None:  # the still, encoded by its suffix (imwrite only returns False)
            try:
                ok, encoded = cv2.imencode(self.out.suffix, self.image)
            except cv2.error:
                ok = False
            if not ok:
                raise OutputError(f"cannot write an image named {self.out.name} (unknown extension?)")
            write_atomic(self.out, encoded.tobytes(), "--out")
        self.video.__exit__(kind, value, trace)  # the video renamed into place, or removed after an error


def annotate(image: np.ndarray, predictions: Sequence[FacePrediction]) -> np.ndarray:
    """A BGR copy of `image` with each face's box and "emotion probability" label drawn on it."""
    import cv2

    canvas = to_uint8(image)
    canvas = cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR) if canvas.ndim == 2 else canvas[..., :3].copy()
    # The label scales with the frame (often shown at a third of its size), on a black band: readable anywhere.
    scale = max(0.5, max(canvas.shape[:2]) / 400)
    thickness = max(1, round(scale * 1.5))
    for p in predictions:
        cv2.rectangle(canvas, (p.x, p.y), (p.x + p.w, p.y + p.h), (0, 255, 0), thickness + 1)
        label = f"{p.emotion} {p.probabilities[p.emotion]:.2f}"
        (width, height), baseline = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        band = height + baseline + 6
        above = p.y - thickness - 1 - band  # the band sits on the box's top edge, not over it
        top = above if above >= 0 else p.y + thickness + 2  # no room above the face: inside the box
        cv2.rectangle(canvas, (p.x, top), (p.x + width + 6, top + band), (0, 0, 0), -1)
        origin = (p.x + 3, top + height + 3)
        cv2.putText(canvas, label, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 255, 0), thickness, cv2.LINE_AA)
    return canvas
