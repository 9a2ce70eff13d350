"""Write a fit to netCDF: ``fit.save(path)``; :func:`hierbayes.io.load` reads it back (the format is there).

A file holds everything needed to use the fit again without refitting: the
model (formula, family, link, priors, ``na_action``, weights), the data the
model used and the estimates (or the posterior's DataTree groups); see
:mod:`hierbayes.io`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from hierbayes._serialize import dumps, encode
from hierbayes._version import __version__
from hierbayes.design.design import WEIGHTS_COLUMN
from hierbayes.errors import FileError, HierbayesError, ModelError
from hierbayes.sources.stream import streamed_record
from hierbayes.structures.residual import spec_record

GROUP = "hierbayes"
FORMAT = 2


def save(fit: Any, path: str | Path) -> Path:
    """Write a fit (REML/ML, GLMM or posterior) to a netCDF file.

    Parameters
    ----------
    fit
        ``LmerFit``, ``GlmerFit`` or ``PosteriorFit``.
    path
        Target file (overwritten). Its directory must exist.

    Raises
    ------
    FileError
        The directory does not exist, a part of the path is a file, the
        path is a directory, or the file cannot be written.
    ModelError
        A Bayesian fit with a residual structure (``correlation=``/``variance=``): not stored yet.
    """
    structured = getattr(fit.model, "structure", None) is not None
    posterior = getattr(fit, "method", None) == "bayes"
    if structured and posterior:
        raise ModelError(
            "saving a Bayesian fit with a residual structure (correlation=/variance=) is not available yet; "
            "save fit.idata with ArviZ, or keep the data and refit it"
        )
    path = _writable(path)
    model = fit.model
    variables: dict[str, xr.Variable] = {}
    if posterior and hasattr(fit, "info"):
        content = encode(fit.info, "info", variables)
    elif hasattr(fit, "estimates"):
        # a residual structure is stored as the user's spec and bound again to the loaded rows (deterministic)
        est = dataclasses.replace(fit.estimates, structure=None) if structured else fit.estimates
        content = encode(est, "estimates", variables)
    else:
        raise HierbayesError(f"cannot save a {type(fit).__name__}")
    streamed = getattr(model.design, "streamed", None)
    if streamed is not None:  # rows read in pieces: their cross-products, and the prototype rows as the data
        variables["streamed_json"] = xr.Variable((), dumps(encode(streamed_record(model.design), "streamed",
                                                                  variables)))  # fmt: skip
        data_vars, data_json = _encode_data(streamed.prototype)
    else:
        data_vars, data_json = _encode_data(_used_data(model))
    attrs = {
        "format": FORMAT,
        "hierbayes_version": __version__,
        "fit_class": type(fit).__name__,
        "formula": model.design.formula.text,
        "family": model.family.name,
        "link": model.family.link.name,
        "na_action": model.na_action,
        "weights": _weights_column(model),
    }
    if getattr(model, "aux", None):  # a distributional model: its auxiliary formulas, "name ~ rhs" as JSON
        attrs["aux_formulas"] = dumps([[a.par, a.rhs] for a in model.aux])
    # long texts as string variables (netCDF attributes are meant to be small)
    variables["priors_json"] = xr.Variable((), dumps(encode(model.priors, "priors", variables)))
    variables["content_json"] = xr.Variable((), dumps(content))
    if structured:
        specs = {"correlation": spec_record(model.correlation), "variance": spec_record(model.variance)}
        variables["structure_json"] = xr.Variable((), dumps(specs))
    variables["data_json"] = xr.Variable((), data_json)
    if model.weights is not None and not _weights_column(model):
        variables["weights_array"] = xr.Variable("weights_row", np.asarray(model.weights, dtype=float))
    ds = xr.Dataset({**variables, **data_vars}, attrs=attrs)
    try:
        if path.exists():
            path.unlink()
        if posterior:
            fit.idata.to_netcdf(path)
            ds.to_netcdf(path, mode="a", group=GROUP)
        else:
            ds.to_netcdf(path, group=GROUP)
    except OSError as exc:
        raise FileError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def _writable(path: str | Path) -> Path:
    """``path`` as a Path whose directory exists, or a FileError that says what is in the way."""
    if not isinstance(path, str | Path):
        raise FileError(f"a file path (str or pathlib.Path) is needed, not {type(path).__name__}")
    path = Path(path)
    if path.is_dir():
        raise FileError(f"cannot write {path}: it is a directory; give a file name such as {path / 'fit.nc'}")
    parent = path.parent
    for p in (parent, *parent.parents):
        if p.exists():
            if not p.is_dir():
                raise FileError(f"cannot write {path}: {p} is a file, not a directory")
            break
    if not parent.is_dir():
        raise FileError(f"cannot write {path}: the directory {parent} does not exist (create it first)")
    return path


def _used_data(model) -> pd.DataFrame:
    """The columns of the user's data the model uses, every row."""
    frame = model.design.frame
    columns = [c for c in frame.data.columns if c != WEIGHTS_COLUMN]  # weights' own columns included
    for a in getattr(model, "aux", ()):  # the auxiliary formulas' columns too
        columns += [c for c in a.design.frame.data.columns if c != WEIGHTS_COLUMN and c not in columns]
    return pd.DataFrame(model.data).loc[:, columns]


def _weights_column(model) -> str:
    """Weights given by column (a label or an expression), as text ("" for an array); data columns load as text."""
    w = model.weights
    if isinstance(w, str):
        return w
    if w is not None and np.ndim(w) == 0 and w in model.design.frame.data.columns:
        return f"`{w}`"
    return ""


def _encode_data(df: pd.DataFrame) -> tuple[dict[str, xr.Variable], str]:
    numeric, other = {}, []
    for i, col in enumerate(df.columns):
        s = df[col]
        if pd.api.types.is_bool_dtype(s.dtype) and not s.isna().any():
            numeric[f"data.{i}"] = xr.Variable("row", s.to_numpy(dtype=np.int8), attrs={"column": col, "bool": 1})
        elif pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
            numeric[f"data.{i}"] = xr.Variable("row", s.to_numpy(), attrs={"column": col})
        else:
            other.append(col)
    text = df[other].to_json(orient="table", index=False) if other else ""
    order = dumps([str(c) for c in df.columns])
    return numeric, dumps({"order": order, "other": text, "index": df.index.tolist()})
