"""The figures the book quotes from others, each with its source.

The only numbers typed into a chapter's prose (its results are glued) are quoted figures, listed here with the
words their paragraph must hold, so that `fer_book.prose` can tell them from a result typed by hand."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Cited:
    """A figure quoted from `source`, written as `text`; `near` (a regex) must match in its paragraph: whose it is."""

    text: str
    source: str
    near: str

    def __format__(self, spec: str) -> str:
        return self.text

    def stated_in(self, paragraph: str) -> bool:
        """Whether `paragraph` names this figure's source (its `near` words)."""
        return re.search(self.near, paragraph, re.IGNORECASE) is not None


CITED: dict[str, Cited] = {
    "keras_bn_momentum": Cited("0.99", "Keras's BatchNormalization default momentum", r"keras"),
    "mobilenet_bn_momentum": Cited("0.999", "keras.applications.MobileNetV2's batch-normalisation momentum", r"keras"),
    "cremad_bytes": Cited("2.44", "CREMA-D's size, from the clip index the package ships", r"CREMA-D|GB"),
    # chapter 5 at 100 epochs instead of its 45 (benchmarks/final_vs_best.py, benchmarks/README.md "Fifth pass")
    "remedy_final_lead_100_epochs": Cited(
        "0.049",
        "benchmarks/README.md, Fifth pass: the remedy's final weights minus the unregularized ones, 100 epochs",
        r"benchmarks",
    ),
    "remedy_final_spread_100_epochs": Cited(
        "0.051",
        "benchmarks/README.md, Fifth pass: the larger std over seeds of those final weights, 100 epochs",
        r"benchmarks",
    ),
    "paper_lstm_accuracy": Cited(
        "98.90", "the paper's strongest comparator on RAVDESS, an LSTM (its comparison table)", r"paper"
    ),
    "paper_lstm_ratio": Cited("116.5", "the paper: the LSTM's parameters over its CNN's", r"paper"),
    "bn_default_momentum_accuracy": Cited(
        "0.110 ± 0.023",
        "benchmarks/README.md, \"Batch normalisation's momentum\": mini-Xception with Keras's default momentum",
        r"benchmarks/README\.md",
    ),
    "fer2013_faces": Cited("35,887", "FER-2013's size (Goodfellow et al. 2013), the peer's training data", r"FER-2013"),
    "tinyfer_privatetest_accuracy": Cited(
        "67.07",
        "TinyFER-Lite's accuracy (%) on FER-2013's PrivateTest (Khalid 2026, engrXiv 10.31224/7466)",
        r"TinyFER",
    ),
    # ../shared/measurements/fer2013-readme-path.md: the README's path, measured outside the project
    "wild_privatetest_accuracy": Cited(
        "0.637", "`--recipe wild`, seed 0, on FER-2013's PrivateTest, measured outside the project", r"PrivateTest"
    ),
    # the paper's own results, as its abstract and tables state them (scored by fer_book.scorecard)
    "paper_params": Cited("542,136", "the paper: its CNN's parameters (180×180×1 input, 8 classes)", r"paper"),
    "paper_resnet50_ratio": Cited("47", "the paper: ResNet50's parameters over its CNN's (Tables I and II)", r"paper"),
    "paper_ravdess_accuracy": Cited("92", "the paper: its CNN's accuracy (%) on RAVDESS, 80/20 split", r"paper"),
    "paper_ravdess_f1": Cited("92", "the paper: its CNN's F1 (%) on RAVDESS, 80/20 split", r"paper"),
    "paper_savee_accuracy": Cited(
        "94", "the paper: its CNN's accuracy (%) on SAVEE with dropout 0.5 and L1, 80/20 split", r"paper"
    ),
    "paper_savee_f1": Cited(
        "92", "the paper: its CNN's F1 (%) on SAVEE with dropout 0.5 and L1, 80/20 split", r"paper"
    ),
    "paper_mead_accuracy": Cited("97", "the paper: its CNN's accuracy (%) on MEAD, 80/20 split", r"paper"),
    "paper_mead_f1": Cited("97", "the paper: its CNN's F1 (%) on MEAD, 80/20 split", r"paper"),
}


def cited(key: str) -> Cited:
    """The figure registered under `key` (KeyError naming the known keys otherwise)."""
    try:
        return CITED[key]
    except KeyError:
        raise KeyError(f"no cited figure {key!r}; the book cites {sorted(CITED)}") from None
