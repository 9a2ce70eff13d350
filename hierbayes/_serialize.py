"""Dataclasses of arrays and scalars <-> xarray variables plus a JSON description.

Used by :mod:`hierbayes.io` to store a fit's estimates exactly (arrays as
float64 netCDF variables, scalars and structure as JSON), without pickle.
Only hierbayes's own dataclasses are rebuilt on load; files written by
earlier versions name some at their old place, or lack fields added since
(which take their defaults).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from typing import Any

import numpy as np
import xarray as xr

from hierbayes.families import LINKS, get_family
from hierbayes.glmm.response import GlmResponse


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
        fields = {
            f.name: encode(getattr(obj, f.name), f"{name}.{f.name}", variables)
            for f in dataclasses.fields(obj)
            if f.init or f.compare  # not a derived cache (init=False, compare=False: rebuilt after loading)
        }
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
    path = _MOVED.get(node["dataclass"], node["dataclass"])
    module, qualname = path.split(":")
    if not module.startswith("hierbayes"):
        raise ValueError(f"refusing to rebuild {module}.{qualname}")
    fields = {field: decode(value, ds) for field, value in node["fields"].items()}
    if path in _REBUILT:
        return _REBUILT[path](fields)
    cls: Any = importlib.import_module(module)
    for part in qualname.split("."):
        cls = getattr(cls, part)
    obj = object.__new__(cls)
    for f in dataclasses.fields(cls):  # fields a file from an older version lacks take their defaults
        if f.name not in fields and f.default is not dataclasses.MISSING:
            fields[f.name] = f.default
        elif f.name not in fields and f.default_factory is not dataclasses.MISSING:
            fields[f.name] = f.default_factory()
    for field, value in fields.items():
        object.__setattr__(obj, field, value)
    return obj


#: classes that files written by earlier versions name at their old place
_MOVED = {
    "hierbayes.reml.optimize:OptSummary": "hierbayes.optim.minimize:OptSummary",
    "hierbayes.reml.control:Control": "hierbayes.optim.control:Control",
    "hierbayes.reml.control:ConvCheck": "hierbayes.optim.control:ConvCheck",
    "hierbayes.reml.control:OptimizerSettings": "hierbayes.optim.control:OptimizerSettings",
    "hierbayes.reml.convergence:ConvergenceReport": "hierbayes.optim.convergence:ConvergenceReport",
    "hierbayes.glmm.glm_family:GlmResponse": "hierbayes.glmm.response:GlmResponse",
}


def _old_family(fields: dict) -> Any:
    return get_family(fields["name"], fields["link"].name)


def _old_link(fields: dict) -> Any:
    return LINKS[fields["name"]]


def _glm_response(fields: dict) -> Any:
    return GlmResponse(**{k: v for k, v in fields.items() if k not in ("_aic", "_all_weighted")})


#: classes rebuilt through their constructor: the family classes of earlier versions (one class, switched on
#: the name), and the GLMM response, whose family constants (and weights' flag) are computed when it is made
_REBUILT = {
    "hierbayes.families:Family": _old_family,
    "hierbayes.families:Link": _old_link,
    "hierbayes.glmm.response:GlmResponse": _glm_response,
}


def dumps(obj: Any) -> str:
    return json.dumps(obj)


def loads(text: str) -> Any:
    return json.loads(text)
