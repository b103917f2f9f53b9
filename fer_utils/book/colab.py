"""What each chapter checks on Colab after installing the package, when its first import loads the kit.

Colab's commonest failure: `pip install` brings a numpy other than the one the kernel imported, and later imports
fail confusingly until the runtime restarts. The check also says whether TensorFlow sees a GPU."""

from __future__ import annotations

import importlib.metadata
import sys
from dataclasses import dataclass, field

RESTART_ADVICE = "Restart the session (Runtime → Restart session), then run the notebook again from the top."


@dataclass(frozen=True)
class RuntimeReport:
    """The numpy the kernel runs and the one installed, the GPUs TensorFlow sees, and what to tell the reader."""

    numpy_loaded: str | None
    numpy_installed: str | None
    gpus: list[str] = field(default_factory=list)
    message: str = ""

    @property
    def needs_restart(self) -> bool:
        """True when pip replaced the numpy this kernel already imported."""
        return None not in (self.numpy_loaded, self.numpy_installed) and self.numpy_loaded != self.numpy_installed


def runtime_report() -> RuntimeReport:
    """Check numpy first, loaded against installed (TensorFlow cannot import safely over a changed one), then GPUs."""
    loaded = getattr(sys.modules.get("numpy"), "__version__", None)
    try:
        installed = importlib.metadata.version("numpy")
    except importlib.metadata.PackageNotFoundError:
        installed = None
    if None not in (loaded, installed) and loaded != installed:
        message = f"numpy changed under this kernel: {loaded} is loaded, pip installed {installed}. " + RESTART_ADVICE
        return RuntimeReport(loaded, installed, [], message)
    import tensorflow as tf

    gpus = [gpu.name for gpu in tf.config.list_physical_devices("GPU")]
    message = (
        f"TensorFlow sees {len(gpus)} GPU(s): {', '.join(gpus)}."
        if gpus
        else "TensorFlow sees no GPU: training will be slow. Runtime → Change runtime type → a GPU."
    )
    return RuntimeReport(loaded, installed, gpus, message)


def check_runtime() -> RuntimeReport | None:
    """On Colab (its `google.colab` module is loaded): print the report and return it; elsewhere None, silently."""
    if "google.colab" not in sys.modules:
        return None
    report = runtime_report()
    print(report.message, flush=True)
    return report


def require_fresh_runtime() -> None:
    """On Colab: `check_runtime`, then an ImportError saying to restart when pip replaced the loaded numpy."""
    report = check_runtime()
    if report is not None and report.needs_restart:
        raise ImportError(report.message)
