"""What a student's kernel hands the grader, and how: answers as plain data, never as live objects.

`fer_book grade` never checks an answer inside the student's kernel. The kernel only *produces* the
answers (`Answers`, made by the grader before the first cell): after an exercise's cell it writes the
answer as plain data (`encode`): numbers, text, lists, dicts, NumPy arrays, pandas tables, bytes, a
Keras model as its `.keras` file; a function the exercise asks for is named, and later called *in the
kernel* on the arguments the checker sends (`Answers.call`), its result handed back as plain data again.
A separate process that the student's code never touched reads that data back (`decode`) and runs the
pristine checkers on it (`fer_book.grade_referee`).

`decode` is the trust boundary: it reads JSON, NumPy's `.npy` format without pickles
(`allow_pickle=False`) and Keras's `.keras` format in safe mode (no Python code: no lambdas, no classes
outside Keras), and builds only the types listed here (a dataclass only from `DATACLASSES`). Whatever
the kernel wrote, decoding gives data or an `ExchangeError`; it never runs the student's code.
The other direction (the checker's arguments to the student's function, written by the grader's own
process) is a pickle that the student's kernel reads: trusted data into an untrusted process.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
import io
import json
import pickle
import reprlib
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePath

import numpy as np
import pandas as pd

from fer_utils.book.book_errors import ExchangeError

TAG = "$"
MAX_DEPTH = 40  # nesting a decoded answer may have
# The dataclasses an answer may hold, rebuilt field by field (the only classes `decode` instantiates).
DATACLASSES = ("fer_utils.faces.detectors.Box", "fer_utils.data.splits.Split")
# pandas extension dtypes a table column may have (their values travel as a list of plain values).
EXTENSION_DTYPES = ("string", "Int8", "Int16", "Int32", "Int64", "Float32", "Float64", "boolean")
NUMPY_KINDS = "biufcmMSU"  # NumPy dtype kinds that `.npy` stores without pickles (not object arrays)
ANSWERS_NAME = "__fer_answers__"  # the kernel's `Answers`, made by the grader before the student's first cell


class ModelUnreadable(ExchangeError):
    """A Keras model of the student's that safe mode cannot load (a lambda, a class of the student's own):
    a wrong answer, not a garbled one."""


@dataclasses.dataclass(frozen=True)
class FunctionAnswer:
    """An answer that is a function of the student's: its name (it stays in the kernel, called there)."""

    name: str


@dataclasses.dataclass(frozen=True)
class Raised:
    """What a student's function raised when the checker called it: the exception's type name and text."""

    type_name: str
    message: str


class Unreadable:
    """An answer of a type that does not travel as data (an object of the student's own class): its type
    name and a short repr, so that a checker's message can say what it got."""

    def __init__(self, type_name: str, text: str) -> None:
        self.type_name, self.text = type_name, text

    def __repr__(self) -> str:
        return self.text


def _npy(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode()


def _keras_model(value: object) -> bool:
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(value, keras.Model)


def is_function(value: object) -> bool:
    """Whether an answer is code to call (a function, a method, a `functools.partial`, …): not a class, not a
    Keras model (a model is data: it travels as its file)."""
    return callable(value) and not isinstance(value, type) and not _keras_model(value)


def _unsupported(value: object) -> dict:
    return {TAG: "unsupported", "type": type(value).__name__, "repr": reprlib.repr(value)}


def _column(values: pd.Series | pd.Index) -> dict:
    """One column (or index) of a table: a `.npy` array, categories and codes, or a list of plain values."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categorical = pd.Categorical(values)
        return {
            TAG: "categorical",
            "categories": _index(categorical.categories),
            "codes": _npy(np.asarray(categorical.codes)),
            "ordered": bool(dtype.ordered),
        }
    if isinstance(dtype, np.dtype) and dtype.kind in NUMPY_KINDS:
        return {TAG: "ndarray", "npy": _npy(np.asarray(values))}
    name = str(dtype) if str(dtype) in EXTENSION_DTYPES else "object"
    return {TAG: "values", "dtype": name, "items": [encode(None if v is pd.NA or v is pd.NaT else v) for v in values]}


def _index(index: pd.Index) -> dict:
    """A table's index or column labels (a MultiIndex does not travel)."""
    if isinstance(index, pd.MultiIndex):
        raise ExchangeError("a table with a MultiIndex")
    if isinstance(index, pd.RangeIndex):
        return {TAG: "range", "start": index.start, "stop": index.stop, "step": index.step, "name": encode(index.name)}
    return {TAG: "index", "values": _column(index), "name": encode(index.name)}


def encode(value: object, functions: bool = False, depth: int = 0) -> object:
    """`value` as JSON-able plain data (see the module's docstring); a value of any other type becomes an
    `unsupported` record naming its type. With `functions`, a function is named (a FunctionAnswer)."""
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return value
    if depth > MAX_DEPTH:
        return _unsupported(value)
    if value is Ellipsis:
        return {TAG: "ellipsis"}
    if kind is list:
        return [encode(item, depth=depth + 1) for item in value]
    if kind is tuple:
        return {TAG: "tuple", "items": [encode(item, depth=depth + 1) for item in value]}
    if kind is dict:
        return {
            TAG: "dict",
            "items": [[encode(k, depth=depth + 1), encode(v, depth=depth + 1)] for k, v in value.items()],
        }
    if kind in (bytes, bytearray):
        return {TAG: "bytes", "data": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, PurePath):
        return {TAG: "path", "text": str(value)}
    if isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind in NUMPY_KINDS:
        return {TAG: "ndarray" if isinstance(value, np.ndarray) else "scalar", "npy": _npy(np.asarray(value))}
    try:
        if kind is pd.DataFrame:
            columns = [_column(value.iloc[:, i]) for i in range(value.shape[1])]
            return {TAG: "dataframe", "columns": _index(value.columns), "index": _index(value.index), "data": columns}
        if kind is pd.Series:
            return {TAG: "series", "index": _index(value.index), "values": _column(value), "name": encode(value.name)}
    except ExchangeError:
        return _unsupported(value)
    if dataclasses.is_dataclass(value) and f"{kind.__module__}.{kind.__qualname__}" in DATACLASSES:
        fields = {f.name: encode(getattr(value, f.name), depth=depth + 1) for f in dataclasses.fields(value)}
        return {TAG: "dataclass", "class": f"{kind.__module__}.{kind.__qualname__}", "fields": fields}
    if _keras_model(value):
        with tempfile.TemporaryDirectory(prefix="fer-answer-") as folder:
            path = Path(folder) / "model.keras"
            value.save(path)  # type: ignore[attr-defined]
            return {TAG: "keras", "data": base64.b64encode(path.read_bytes()).decode()}
    if functions and is_function(value):
        return {TAG: "function", "name": str(getattr(value, "__name__", "your function"))}
    return _unsupported(value)


def _load_npy(text: object) -> np.ndarray:
    if not isinstance(text, str):
        raise ExchangeError("an array that is not base64 text")
    try:
        return np.load(io.BytesIO(base64.b64decode(text, validate=True)), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ExchangeError(f"an array that NumPy cannot read without pickles ({exc})") from exc


def _load_keras(text: object) -> object:
    """A Keras model from its `.keras` bytes, loaded in safe mode (no Python code of the student's runs)."""
    import keras

    if not isinstance(text, str):
        raise ExchangeError("a Keras model that is not base64 text")
    with tempfile.TemporaryDirectory(prefix="fer-model-") as folder:
        path = Path(folder) / "model.keras"
        path.write_bytes(base64.b64decode(text, validate=True))
        try:
            return keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as exc:  # any failure to read a student's file back is that answer's problem
            raise ModelUnreadable(
                f"the grader cannot read your Keras model back ({type(exc).__name__}: {exc})"
            ) from exc


def _decode_column(data: object, depth: int) -> pd.Series:
    record = _record(data)
    kind = record[TAG]
    if kind == "ndarray":
        return pd.Series(_load_npy(record.get("npy")))
    if kind == "categorical":
        categories = _decode_index(record.get("categories"), depth + 1)
        codes = _load_npy(record.get("codes"))
        if codes.ndim != 1 or codes.dtype.kind not in "iu":
            raise ExchangeError("categorical codes that are not a vector of integers")
        return pd.Series(pd.Categorical.from_codes(codes, categories, ordered=bool(record.get("ordered"))))
    if kind == "values":
        items = record.get("items")
        dtype = record.get("dtype")
        if not isinstance(items, list) or dtype not in (*EXTENSION_DTYPES, "object"):
            raise ExchangeError("a table column that is not a list of values")
        values = [decode(item, depth + 1) for item in items]
        return pd.Series(values, dtype=dtype) if dtype != "object" else pd.Series(values, dtype=object)
    raise ExchangeError(f"a table column of kind {kind!r}")


def _decode_index(data: object, depth: int) -> pd.Index:
    record = _record(data)
    name = decode(record.get("name"), depth + 1)
    if record[TAG] == "range":
        parts = [record.get(k) for k in ("start", "stop", "step")]
        if not all(type(p) is int for p in parts) or parts[2] == 0:
            raise ExchangeError("a range index that is not three integers")
        return pd.RangeIndex(*parts, name=name)
    if record[TAG] == "index":
        return pd.Index(_decode_column(record.get("values"), depth + 1), name=name)
    raise ExchangeError(f"an index of kind {record[TAG]!r}")


def _record(data: object) -> dict:
    if not isinstance(data, dict) or not isinstance(data.get(TAG), str):
        raise ExchangeError("a record without its kind")
    return data


def _dataclass(name: object) -> type:
    if name not in DATACLASSES:
        raise ExchangeError(f"a class that answers cannot hold ({name!r})")
    module, _, qualname = str(name).rpartition(".")
    return getattr(importlib.import_module(module), qualname)


def decode(data: object, depth: int = 0) -> object:
    """The value that `encode` wrote (JSON already parsed): ExchangeError for anything else."""
    if data is None or type(data) in (bool, int, float, str):
        return data
    if depth > MAX_DEPTH:
        raise ExchangeError(f"an answer nested more than {MAX_DEPTH} levels deep")
    if type(data) is list:
        return [decode(item, depth + 1) for item in data]
    record = _record(data)
    kind = record[TAG]
    if kind == "ellipsis":
        return Ellipsis
    if kind == "tuple":
        return tuple(decode(item, depth + 1) for item in _items(record))
    if kind == "dict":
        pairs = [decode(pair, depth + 1) for pair in _items(record)]
        if not all(type(pair) is list and len(pair) == 2 for pair in pairs):
            raise ExchangeError("a dict that is not a list of pairs")
        try:
            return {key: value for key, value in pairs}
        except TypeError as exc:
            raise ExchangeError(f"a dict with a key that is no key ({exc})") from exc
    if kind == "bytes":
        try:
            return base64.b64decode(str(record.get("data")), validate=True)
        except ValueError as exc:
            raise ExchangeError("bytes that are not base64 text") from exc
    if kind == "path":
        return Path(str(record.get("text")))
    if kind in ("ndarray", "scalar"):
        array = _load_npy(record.get("npy"))
        if kind == "scalar":
            if array.shape != ():
                raise ExchangeError("a scalar with a shape")
            return array[()]
        return array
    if kind == "dataframe":
        columns = _decode_index(record.get("columns"), depth + 1)
        index = _decode_index(record.get("index"), depth + 1)
        data_columns = record.get("data")
        if not isinstance(data_columns, list) or len(data_columns) != len(columns):
            raise ExchangeError("a table whose columns and labels differ in number")
        series = [_decode_column(column, depth + 1) for column in data_columns]
        if any(len(s) != len(index) for s in series):
            raise ExchangeError("a table whose columns and index differ in length")
        table = pd.concat([s.reset_index(drop=True) for s in series], axis=1) if series else pd.DataFrame(index=index)
        table.columns = columns
        table.index = index
        return table
    if kind == "series":
        index = _decode_index(record.get("index"), depth + 1)
        values = _decode_column(record.get("values"), depth + 1)
        if len(values) != len(index):
            raise ExchangeError("a series whose values and index differ in length")
        values.index, values.name = index, decode(record.get("name"), depth + 1)
        return values
    if kind == "dataclass":
        cls = _dataclass(record.get("class"))
        fields = record.get("fields")
        names = [f.name for f in dataclasses.fields(cls)]
        if not isinstance(fields, dict) or set(fields) != set(names):
            raise ExchangeError(f"a {cls.__name__} with other fields than {names}")
        return cls(**{name: decode(fields[name], depth + 1) for name in names})
    if kind == "keras":
        return _load_keras(record.get("data"))
    if kind == "function":
        return FunctionAnswer(str(record.get("name"))[:200])
    if kind == "unsupported":
        return Unreadable(str(record.get("type"))[:200], str(record.get("repr"))[:500])
    raise ExchangeError(f"a record of unknown kind {kind!r}")


def _items(record: dict) -> list:
    items = record.get("items")
    if not isinstance(items, list):
        raise ExchangeError(f"a {record[TAG]} without its items")
    return items


def rebuilt(data: object) -> object:
    """`decode(data)`, where a record that a library refuses to rebuild (categorical codes out of range, a
    bad dtype: a ValueError or TypeError of pandas or NumPy) is an ExchangeError too, never a crash of the
    process that reads it."""
    try:
        return decode(data)
    except ExchangeError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError, MemoryError) as exc:
        raise ExchangeError(f"a value that cannot be rebuilt ({type(exc).__name__}: {str(exc)[:300]})") from exc


def read_answer(text: str) -> object:
    """The answer a kernel wrote (its JSON text), decoded: ExchangeError when it is no answer."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ExchangeError(f"not JSON ({exc})") from exc
    return rebuilt(data)


def read_result(text: str) -> object:
    """What a student's function returned when the checker called it (`Answers.call`), decoded, or a
    `Raised` for what it raised: ExchangeError when the text is neither."""
    try:
        record = _record(json.loads(text))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ExchangeError(f"not JSON ({exc})") from exc
    if record[TAG] == "returned":
        return rebuilt(record.get("value"))
    if record[TAG] == "raised":
        return Raised(str(record.get("type"))[:200], str(record.get("message"))[:2000])
    raise ExchangeError(f"a call's result of kind {record[TAG]!r}")


class ModelPickler(pickle.Pickler):
    """Pickles a checker's arguments for the student's kernel, writing each Keras model among `models`
    (key -> model) once into its own file beside them and each of their layers as a reference to it, so
    that a layer arrives with its model (`layer.output` needs the model around it)."""

    def __init__(self, file: io.BufferedWriter, folder: Path, models: dict[str, object]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.folder = folder
        self.models = {id(model): key for key, model in models.items()}
        self.layers = {
            id(layer): (key, i)
            for key, model in models.items()
            for i, layer in enumerate(model.layers)  # type: ignore[attr-defined]
        }
        self.objects = {id(model): model for model in models.values()}

    def persistent_id(self, obj: object) -> tuple | None:
        if id(obj) in self.models:
            key = self.models[id(obj)]
            path = self.folder / f"model-{key}.pickle"
            if not path.exists():
                with path.open("wb") as fh:
                    pickle.dump(self.objects[id(obj)], fh, protocol=pickle.HIGHEST_PROTOCOL)
            return ("model", key)
        if id(obj) in self.layers:
            key, index = self.layers[id(obj)]
            self.persistent_id(self.objects[next(i for i, k in self.models.items() if k == key)])
            return ("layer", key, index)
        return None


class ModelUnpickler(pickle.Unpickler):
    """Reads what ModelPickler wrote: each model from its own file (once), each layer from its model."""

    def __init__(self, file: io.BufferedReader, folder: Path, loaded: dict[str, object]) -> None:
        super().__init__(file)
        self.folder, self.loaded = folder, loaded

    def persistent_load(self, pid: tuple) -> object:
        key = str(pid[1])
        if key not in self.loaded:
            with (self.folder / f"model-{key}.pickle").open("rb") as fh:
                self.loaded[key] = pickle.load(fh)
        model = self.loaded[key]
        return model if pid[0] == "model" else model.layers[int(pid[2])]  # type: ignore[attr-defined]


class Answers:
    """The kernel side of grading, made by the grader before the student's first cell: writes each answer
    as plain data, keeps the functions an exercise asks for, and calls them on the checker's arguments.
    Everything it writes is the student's claim: the grader decodes it (`decode`) and checks it elsewhere."""

    def __init__(self) -> None:
        self.functions: dict[int, Callable[..., object]] = {}
        self.models: dict[str, object] = {}

    def export(self, number: int, path: str, value: object) -> None:
        """Write the answer to exercise `number` to `path` (a function is kept here, and named)."""
        if is_function(value):
            self.functions[number] = value
        Path(path).write_text(json.dumps(encode(value, functions=True)))

    def call(self, number: int, arguments: str, path: str) -> None:
        """Call the function of exercise `number` on the pickled `arguments`; write what it returned (or
        raised) to `path` as plain data."""
        with open(arguments, "rb") as fh:
            args, kwargs = ModelUnpickler(fh, Path(arguments).parent, self.models).load()
        try:
            result = {TAG: "returned", "value": encode(self.functions[number](*args, **kwargs))}
        except BaseException as exc:  # the student's code: whatever it raises is part of the answer
            result = {TAG: "raised", "type": type(exc).__name__, "message": str(exc)}
        Path(path).write_text(json.dumps(result))

    @staticmethod
    def save_reference(path: str, /, *args: object, **kwargs: object) -> None:
        """Pickle a checker's reference arguments (the grader's own run of the book's chapter only)."""
        with open(path, "wb") as fh:
            pickle.dump((args, kwargs), fh, protocol=pickle.HIGHEST_PROTOCOL)
