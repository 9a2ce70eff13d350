"""Dataclasses of arrays and scalars <-> xarray variables plus a JSON description.

Used by :mod:`hierbayes.io` to store a fit's estimates exactly (arrays as
float64 netCDF variables, scalars and structure as JSON), without pickle.
Only hierbayes's own dataclasses are rebuilt on load.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from typing import Any

import numpy as np
import xarray as xr


def encode(obj: Any, name: str, variables: dict[str, xr.Variable]) -> Any:
    """A JSON-able description of ``obj``; arrays go into ``variables`` under names starting with ``name``."""
    if obj is None or isinstance(obj, (bool, str)):
        return {"value": obj}
    if isinstance(obj, np.bool_):
        return {"value": bool(obj)}
    if isinstance(obj, (int, np.integer)):
        return {"int": int(obj)}
    if isinstance(obj, (float, np.floating)):
        return {"float": repr(float(obj))}
    if isinstance(obj, np.ndarray):
        arr = np.asarray(obj)
        variables[name] = xr.Variable([f"{name}_d{i}" for i in range(arr.ndim)], arr)
        return {"array": name}
    if dataclasses.is_dataclass(obj):
        cls = type(obj)
        if not cls.__module__.startswith("hierbayes"):
            raise TypeError(f"cannot store {cls.__module__}.{cls.__qualname__}")
        fields = {f.name: encode(getattr(obj, f.name), f"{name}.{f.name}", variables) for f in dataclasses.fields(obj)}
        return {"dataclass": f"{cls.__module__}:{cls.__qualname__}", "fields": fields}
    if isinstance(obj, (list, tuple)):
        key = "list" if isinstance(obj, list) else "tuple"
        return {key: [encode(v, f"{name}.{i}", variables) for i, v in enumerate(obj)]}
    if isinstance(obj, dict):
        return {"dict": [[k, encode(v, f"{name}.{k}", variables)] for k, v in obj.items()]}
    raise TypeError(f"cannot store a {type(obj).__name__} ({name})")


def decode(node: Any, ds: xr.Dataset) -> Any:
    """Rebuild what :func:`encode` described."""
    if "value" in node:
        return node["value"]
    if "int" in node:
        return node["int"]
    if "float" in node:
        return float(node["float"])
    if "array" in node:
        return np.asarray(ds[node["array"]].values)
    if "list" in node:
        return [decode(v, ds) for v in node["list"]]
    if "tuple" in node:
        return tuple(decode(v, ds) for v in node["tuple"])
    if "dict" in node:
        return {k: decode(v, ds) for k, v in node["dict"]}
    module, qualname = node["dataclass"].split(":")
    if not module.startswith("hierbayes"):
        raise ValueError(f"refusing to rebuild {module}.{qualname}")
    cls: Any = importlib.import_module(module)
    for part in qualname.split("."):
        cls = getattr(cls, part)
    obj = object.__new__(cls)
    for field, value in node["fields"].items():
        object.__setattr__(obj, field, decode(value, ds))
    return obj


def dumps(obj: Any) -> str:
    return json.dumps(obj)


def loads(text: str) -> Any:
    return json.loads(text)
