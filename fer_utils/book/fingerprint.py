"""The code fingerprint of a model builder (or of a fit function): a hash of the code it runs and of the values
it reads, the part of a cached run's key that says which code trained it (`artifacts.train`).

What is hashed, from the builder on: the source of every function it reaches from the package (`fer_utils`),
from its own module or from the running notebook (`__main__`), transitively, and every such class by its
bases and members (its methods' source, its other attributes' values: Python cannot give the source of a
class defined in a notebook); the values of the globals each of them reads (constants by value: numbers,
text, tuples, dicts, ...; a library's function or class by its dotted name, a module by its name; not the
builtins, the same everywhere), their default arguments and closure cells. A callable
object (an instance with `__call__`) is its class and its attributes' values; `functools.partial`, its
function and arguments. So an edited builder, an edited helper it calls, or a changed constant it reads
(`FILTERS = 16` → 64) gets a new key and trains a new run. Module names are left out for the code of the
package, the builder's module and the notebook: a chapter's saved cell and the package's copy of the same
code have the same fingerprint, and chapters share their cached runs. A value with no stable text (an
arbitrary object, a built-in function passed as the builder) is a FingerprintError naming the builder and
the value: a run keyed without it could be reused after it changed.
"""

from __future__ import annotations

import builtins
import dis
import enum
import functools
import hashlib
import importlib
import inspect
import json
import types
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from pathlib import PurePath

from fer_utils.book.book_errors import FingerprintError

# Values hashed as their repr: the same value gives the same text in every process.
CONSTANT_TYPES = (type(None), bool, int, float, complex, str, bytes, range, PurePath, type(Ellipsis))
# Bytecode that reads a global, and bytecode that reads an attribute of what was just read (`module.name`).
GLOBAL_READS = ("LOAD_GLOBAL", "LOAD_NAME")
ATTRIBUTE_READS = ("LOAD_ATTR", "LOAD_METHOD")
# Class attributes the class's source and members already say, or that Python adds to every class.
CLASS_BOOKKEEPING = ("_abc_impl",)
# The flag of a class made by a `class` statement (CPython's Py_TPFLAGS_HEAPTYPE); built-in classes lack it.
HEAP_TYPE = 1 << 9
# The modules always fingerprinted by source: the package and the running notebook (or script).
HOME_MODULES = ("fer_utils", "__main__")
# What a read global that no module defines (yet) resolves to; recorded as UNBOUND_TEXT.
_UNBOUND = object()
UNBOUND_TEXT = "<unbound>"


def code_fingerprint(build: Callable) -> str:
    """A 12-hex-digit hash of `build`'s code and of what it reads (see the module docstring); a
    FingerprintError when something it reads has no stable value."""
    walk = _Walk(build)
    root = walk.value(build, "the builder")
    text = json.dumps([root, sorted(walk.entries)])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _label(build: object) -> str:
    """How an error names the builder: its qualified name, or its class's for a callable object."""
    if isinstance(build, functools.partial):
        return f"functools.partial({_label(build.func)})"
    name = getattr(build, "__qualname__", None)
    return name if isinstance(name, str) else f"(an instance of {type(build).__qualname__})"


def _home_module(build: object) -> str:
    """The module whose code is fingerprinted by source besides HOME_MODULES: the builder's own (that of the
    function in a partial, a bound method or a wrapper)."""
    while True:
        if isinstance(build, functools.partial):
            build = build.func
        elif isinstance(build, types.MethodType):
            build = build.__func__
        elif not isinstance(build, (types.FunctionType, type)) and hasattr(build, "__wrapped__"):
            build = build.__wrapped__
        else:
            break
    target = build if isinstance(build, (types.FunctionType, type, types.BuiltinFunctionType)) else type(build)
    return getattr(target, "__module__", None) or "__main__"


def _code_text(code: types.CodeType) -> str:
    """A stable text of a code object when no source is at hand (nested code objects by their own text)."""
    consts = [_code_text(c) if isinstance(c, types.CodeType) else repr(c) for c in code.co_consts]
    return repr((code.co_code, consts, code.co_names, code.co_varnames))


def _source(obj: types.FunctionType) -> str | None:
    """The source text of a function; its bytecode when no source is at hand."""
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        code = getattr(obj, "__code__", None)
        return _code_text(code) if code is not None else None


def _global_reads(code: types.CodeType) -> set[tuple[str, ...]]:
    """The globals a code object (and the functions nested in it) reads, each with the attributes read
    from it right after (`models.networks.build_paper_cnn` → ("models", "build_paper_cnn")), and the names it imports
    (`from fer_utils.models.networks import x` → ("<import>", "fer_utils.models.networks", "x"))."""
    reads: set[tuple[str, ...]] = set()
    chain: list[str] = []
    module = None
    constants: list[object] = [None, None]  # the last two constants loaded: an import's level and names
    for instruction in dis.get_instructions(code):
        name = instruction.opname
        if name in ("LOAD_CONST", "LOAD_SMALL_INT"):
            constants = [constants[-1], instruction.argval]
        if chain and name in ATTRIBUTE_READS:
            chain.append(instruction.argval)
            continue
        if chain:
            reads.add(tuple(chain))
            chain = []
        if name in GLOBAL_READS:
            chain = [instruction.argval]
        elif name == "IMPORT_NAME":
            level = constants[0] if isinstance(constants[0], int) else 0
            module = "." * level + instruction.argval
            reads.add(("<import>", module))
        elif name == "IMPORT_FROM" and module:
            reads.add(("<import>", module, instruction.argval))
    if chain:
        reads.add(tuple(chain))
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            reads |= _global_reads(const)
    return reads


class _Walk:
    """One fingerprint's walk from a builder through the code and values it reads.

    `entries` collects one JSON text per function or class reached (its name without the module, its
    source and what it reads); `seen` keeps each from being walked twice (and recursion from looping)."""

    def __init__(self, build: Callable) -> None:
        self.label = _label(build)
        self.modules = {*HOME_MODULES, _home_module(build)}
        self.entries: set[str] = set()
        self.seen: set[int] = set()

    def fail(self, where: str, value: object, why: str, advice: str = "") -> FingerprintError:
        """The error for a value that cannot be fingerprinted, naming the builder, where it was read and why."""
        text = repr(value)
        text = text if len(text) <= 80 else text[:77] + "..."
        advice = advice or (
            "a cached run is keyed by the code and the values a builder reads: make it a constant (a number, text, "
            "a tuple, ...) or a function, or pass it to the builder as an argument"
        )
        return FingerprintError(
            f"cannot fingerprint the builder {self.label}: {where} is {text} ({type(value).__qualname__}), {why}; "
            + advice
        )

    def is_home(self, obj: object) -> bool:
        """Whether `obj`'s code is fingerprinted by source (it comes from the package, the builder's module or
        the notebook), rather than named as a library's."""
        return self.home_module(getattr(obj, "__module__", None) or "")

    def home_module(self, module: str) -> bool:
        """Whether the module named `module` is the package's, the builder's or the notebook's."""
        return module in self.modules or module.split(".")[0] in self.modules

    def value(self, value: object, where: str) -> object:
        """A JSON-able fingerprint of one value a builder reads (see the module docstring)."""
        if isinstance(value, enum.Enum):
            return ["enum", self.reference(type(value), where), value.name]
        if isinstance(value, CONSTANT_TYPES):
            return [type(value).__name__, repr(value)]
        if isinstance(value, (tuple, list)):
            return [type(value).__name__, [self.value(v, f"{where}[{i}]") for i, v in enumerate(value)]]
        if isinstance(value, (set, frozenset)):
            items = sorted(json.dumps(self.value(v, f"an item of {where}")) for v in value)
            return [type(value).__name__, items]
        if isinstance(value, dict):
            return [
                "dict",
                [[self.value(k, f"a key of {where}"), self.value(v, f"{where}[{k!r}]")] for k, v in value.items()],
            ]
        if isinstance(value, types.ModuleType):
            return ["module", value.__name__]
        if isinstance(value, functools.partial):
            parts = (value.func, value.args, value.keywords)
            return ["partial", *(self.value(part, f"{where} (a partial)") for part in parts)]
        if isinstance(value, types.MethodType):
            return ["method", self.value(value.__func__, where), self.value(value.__self__, f"{where}'s object")]
        if isinstance(value, (types.FunctionType, type)):
            return self.reference(value, where)
        if isinstance(value, types.BuiltinFunctionType) or type(value).__module__ in ("builtins", "numpy"):
            return self.library(value, where)
        if is_dataclass(value):
            values = {f.name: self.value(getattr(value, f.name), f"`{f.name}` of {where}") for f in fields(value)}
            return ["dataclass", self.reference(type(value), where), values]
        if hasattr(value, "__wrapped__"):  # e.g. functools.lru_cache around a function
            return ["wrapped", self.reference(type(value), where), self.value(value.__wrapped__, where)]
        if callable(value) and hasattr(value, "__dict__"):  # a callable object: its class and its attributes
            attributes = {k: self.value(v, f"`{k}`, an attribute of {where},") for k, v in sorted(vars(value).items())}
            return ["callable", self.reference(type(value), where), attributes]
        raise self.fail(where, value, "which has no stable value to hash")

    def library(self, value: object, where: str) -> object:
        """A library's function, class or numpy value, by its dotted name (or its value for numpy data)."""
        module = type(value).__module__
        if module == "numpy" and hasattr(value, "dtype"):  # an array or a numpy scalar: its data
            data = value.tobytes() if hasattr(value, "tobytes") else repr(value).encode()
            return ["numpy", str(value.dtype), list(getattr(value, "shape", ())), hashlib.sha256(data).hexdigest()]
        name = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
        if not isinstance(name, str):
            raise self.fail(where, value, "which has no stable value to hash")
        if self.is_home(value):
            raise self.fail(where, value, "built in, without Python source to hash", "wrap it in a Python function")
        return ["library", f"{getattr(value, '__module__', None) or module}.{name}"]

    def reference(self, obj: types.FunctionType | type, where: str) -> object:
        """A function or class: the package's, the builder module's or the notebook's is walked (its source
        and what it reads) and named without its module; a library's is named with its module."""
        if not self.is_home(obj):
            return ["library", f"{obj.__module__}.{obj.__qualname__}"]
        if id(obj) not in self.seen:
            self.seen.add(id(obj))
            entry = self.function(obj) if isinstance(obj, types.FunctionType) else self.klass(obj, where)
            self.entries.add(json.dumps(entry))
        return ["code", obj.__qualname__]

    def function(self, function: types.FunctionType) -> object:
        """A function's source, the values of the globals it reads, its defaults and its closure cells."""
        name = function.__qualname__
        reads = {}
        for chain in sorted(_global_reads(function.__code__)):
            if chain[0] not in function.__globals__ and hasattr(builtins, chain[0]):
                continue  # a builtin is the same everywhere, and a notebook reads some a module does not: it
                # evaluates a nested function's annotations (`tuple[int, int]`), which `from __future__
                # import annotations` leaves as text in the package
            path, value = self.resolve(function, chain)
            reads[path] = UNBOUND_TEXT if value is _UNBOUND else self.value(value, f"`{path}`, read by {name},")
        defaults = self.value(function.__defaults__ or (), f"a default argument of {name}")
        keyword_defaults = self.value(function.__kwdefaults__ or {}, f"a default argument of {name}")
        cells = {}
        for variable, cell in zip(function.__code__.co_freevars, function.__closure__ or ()):
            try:
                contents = cell.cell_contents
            except ValueError:  # a cell not filled yet
                cells[variable] = "<empty>"
                continue
            cells[variable] = self.value(contents, f"`{variable}`, a variable {name} closes over,")
        return ["function", name, _source(function), reads, defaults, keyword_defaults, cells]

    def resolve(self, function: types.FunctionType, chain: tuple[str, ...]) -> tuple[str, object]:
        """The dotted name and value a read global chain comes to: attributes are followed through the
        package's (and the notebook's) modules only; a library module is named, not looked into."""
        if chain[0] == "<import>":
            try:
                value = importlib.import_module(chain[1], function.__globals__.get("__package__"))
            except (ImportError, TypeError):
                return ".".join(chain), _UNBOUND
            path = chain[1]
            rest = chain[2:]
        else:
            scope = function.__globals__
            value = scope[chain[0]] if chain[0] in scope else getattr(builtins, chain[0], _UNBOUND)
            path = chain[0]
            rest = chain[1:]
        for attribute in rest:
            if not (isinstance(value, types.ModuleType) and self.home_module(value.__name__)):
                break
            value = getattr(value, attribute, _UNBOUND)
            path = f"{path}.{attribute}"
        return path, value

    def klass(self, cls: type, where: str) -> object:
        """A class's bases and its members: the functions defined in it (walked as functions, with their
        source) and the values of its other attributes. Not the class's own source text: Python cannot give
        it for a class defined in a notebook (`inspect.getsource` finds a class through its module's file,
        and a kernel's `__main__` has none), so a chapter's class and the package's copy of it would
        never get the same key."""
        if not cls.__flags__ & HEAP_TYPE:
            raise self.fail(where, cls, "built in, without Python source to hash", "wrap it in a Python function")
        bases = [self.reference(base, f"a base of {cls.__qualname__}") for base in cls.__bases__ if base is not object]
        members = {}
        for name, member in sorted(vars(cls).items()):
            function = _member_function(member)
            if function is not None:
                if not function.__code__.co_filename.startswith("<"):  # not generated (dataclass, namedtuple)
                    members[name] = self.function(function)
            elif not (name.startswith("__") and name.endswith("__")) and name not in CLASS_BOOKKEEPING:
                members[name] = self.value(member, f"`{cls.__qualname__}.{name}`")
        return ["class", cls.__qualname__, bases, members]


def _member_function(member: object) -> types.FunctionType | None:
    """The function a class member runs: a method, or the function in a staticmethod, classmethod or
    property (its getter)."""
    if isinstance(member, (staticmethod, classmethod)):
        member = member.__func__
    elif isinstance(member, property):
        member = member.fget
    return member if isinstance(member, types.FunctionType) else None
