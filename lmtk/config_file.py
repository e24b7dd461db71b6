"""Reading a config file, with a mistake in it reported as one line that names the file and line."""

from __future__ import annotations

import ast
import os
import traceback
from pathlib import Path

from mmengine.config import Config

from .cli import error_reason

__all__ = ["CONFIG_SUFFIXES", "read_config", "read_stored_config"]

CONFIG_SUFFIXES = (".py", ".json", ".yaml", ".yml")  # a path with one of these is a config, not a checkpoint


def read_config(path: str | os.PathLike) -> Config:
    """``Config.fromfile(path)``; a missing file is a ``FileNotFoundError``, and a config whose code fails
    (a syntax error, an undefined name, a missing ``_base_``) a ``ValueError`` that says where.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     bad = Path(folder, "bad.py")
        ...     _ = bad.write_text("size = 64\\nmodel = dict(size=sise)\\n")
        ...     try:
        ...         read_config(bad)
        ...     except ValueError as error:
        ...         print(str(error).replace(folder, "DIR"))
        cannot read config DIR/bad.py: line 2: NameError: name 'sise' is not defined
    """
    path = Path(path)
    if path.is_dir():
        copies = sorted(str(p) for p in path.iterdir() if p.suffix in CONFIG_SUFFIXES)
        hint = f"; this folder has {', '.join(copies)}" if copies else ""
        raise ValueError(f"{path} is a folder, not a config: pass a config file{hint}")
    if not path.is_file():
        raise FileNotFoundError(f"config not found: {path}")
    if path.suffix not in CONFIG_SUFFIXES:
        raise ValueError(
            f"{path} is not a config: a config is a {', '.join(CONFIG_SUFFIXES)} file (a checkpoint goes "
            f"where a checkpoint is asked for)"
        )
    try:
        return Config.fromfile(str(path))
    except SyntaxError as error:
        named = error.filename and not error.filename.startswith("<") and Path(error.filename) != path
        where = f"{error.filename}, " if named else ""  # mmengine parses the file as "<unknown>"
        raise ValueError(
            f"cannot read config {path}: {where}line {error.lineno}: syntax error: {error.msg}"
        ) from error
    except Exception as error:  # a config is code: whatever it raises is the config's mistake
        raise ValueError(
            f"cannot read config {path}: {_where(error, path)}{type(error).__name__}: {error}"
        ) from error


def _where(error: BaseException, path: Path) -> str:
    """``line N: `` of the deepest frame in a config file (``FILE, line N: `` when a base config's)."""
    import mmengine

    library = Path(mmengine.__file__).parent
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if frame.filename.endswith(".py")
        and library not in Path(frame.filename).parents
        and Path(frame.filename) != Path(__file__)
    ]
    if not frames:
        return ""
    frame = frames[-1]
    return (
        f"line {frame.lineno}: "
        if Path(frame.filename) == path
        else f"{frame.filename}, line {frame.lineno}: "
    )


def read_stored_config(text: str, source: str, trust: bool = False) -> Config:
    """The config a checkpoint stores as text (mmengine's ``pretty_text``), read as data.

    Such text is Python, and ``Config.fromstring`` would run it: a checkpoint from a stranger could run
    code. Only assignments of literals and ``dict(...)`` are accepted, which is all that ``pretty_text``
    writes; anything else is a ``ValueError`` naming ``source`` and the line, unless ``trust``.
    """
    if trust:
        try:
            return Config.fromstring(text, ".py")
        except Exception as error:  # the trusted text is run: any error of its own, a SyntaxError included
            raise ValueError(
                f"the config stored in {source} failed when run ({type(error).__name__}: {error_reason(error)})"
            ) from None
    try:
        tree = ast.parse(text)
    except SyntaxError as error:
        raise ValueError(f"the config stored in {source} is not valid (line {error.lineno})") from None
    values = {}
    for statement in tree.body:
        if not (
            isinstance(statement, ast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
        ):
            _refuse_code(statement, source)
        values[statement.targets[0].id] = _plain_value(statement.value, source)
    return Config(values)


def _plain_value(node: ast.AST, source: str):
    """The value of a literal or ``dict(key=value, ...)``; any other expression is refused."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _plain_value(node.operand, source)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        items = [_plain_value(item, source) for item in node.elts]
        return {ast.List: list, ast.Tuple: tuple, ast.Set: set}[type(node)](items)
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {_plain_value(k, source): _plain_value(v, source) for k, v in zip(node.keys, node.values)}
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "dict"
        and not node.args
        and all(keyword.arg is not None for keyword in node.keywords)
    ):
        return {keyword.arg: _plain_value(keyword.value, source) for keyword in node.keywords}
    _refuse_code(node, source)


def _refuse_code(node: ast.AST, source: str):
    from .checkpoint import TRUST_HINT

    raise ValueError(
        f"the config stored in {source} is code, not plain data (line {node.lineno}: "
        f"{ast.unparse(node)[:60]!r}); loading it would run that code: give the model's config "
        f"(--config / config=...), or pass {TRUST_HINT}"
    )
