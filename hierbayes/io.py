"""Save fits to netCDF and load them back: ``fit.save(path)``, ``hb.load(path)``.

A file holds everything needed to use the fit again without refitting:

* the model: formula, family, link, priors, ``na_action``, weights;
* the data the model used (every used column, all rows, so rows dropped for
  missing values are dropped again and counted the same way): numeric columns
  as netCDF variables (exact), text and categorical columns as JSON with
  their level order;
* the estimates: arrays as float64 variables, scalars and structure as JSON
  (no pickle), or for a posterior fit the groups of its ArviZ DataTree
  (``posterior``, ``sample_stats``, ...), each a netCDF group.

Loading rebuilds the design from the stored data (the same encoding, so
``predict(newdata)`` works) and the fit from the stored estimates.

File format 2 (this version) stores the posterior as ``xarray.DataTree.to_netcdf``
writes it (ArviZ 1.x). Format 1, written by hierbayes on ArviZ 0.x
(``InferenceData.to_netcdf``), has the same layout: one netCDF group per
ArviZ group at the root, next to the ``hierbayes`` group; it loads unchanged
(PyMC 5's sample statistics keep their names, e.g. ``reached_max_treedepth``).

>>> import hierbayes as hb
>>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
>>> fit.save("/tmp/sleep.nc")  # doctest: +SKIP
>>> hb.load("/tmp/sleep.nc").fixef.equals(fit.fixef)  # doctest: +SKIP
True
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from hierbayes import __version__
from hierbayes._serialize import decode, dumps, encode, loads
from hierbayes.design.design import WEIGHTS_COLUMN
from hierbayes.errors import FileError, HierbayesError

GROUP = "hierbayes"
FORMAT = 2
#: formats this version reads: 1 (ArviZ 0.x InferenceData groups), 2 (ArviZ 1.x DataTree groups)
READS = (1, 2)


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
    """
    from hierbayes.fits.glmer import GlmerFit
    from hierbayes.fits.lmer import LmerFit
    from hierbayes.fits.posterior import PosteriorFit

    path = _writable(path)
    model = fit.model
    variables: dict[str, xr.Variable] = {}
    if isinstance(fit, (LmerFit, GlmerFit)):
        content = encode(fit.estimates, "estimates", variables)
    elif isinstance(fit, PosteriorFit):
        content = encode(fit.info, "info", variables)
    else:
        raise HierbayesError(f"cannot save a {type(fit).__name__}")
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
    # long texts as string variables (netCDF attributes are meant to be small)
    variables["priors_json"] = xr.Variable((), dumps(encode(model.priors, "priors", variables)))
    variables["content_json"] = xr.Variable((), dumps(content))
    variables["data_json"] = xr.Variable((), data_json)
    if model.weights is not None and not _weights_column(model):
        variables["weights_array"] = xr.Variable("weights_row", np.asarray(model.weights, dtype=float))
    ds = xr.Dataset({**variables, **data_vars}, attrs=attrs)
    try:
        if path.exists():
            path.unlink()
        if isinstance(fit, PosteriorFit):
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


def load(path: str | Path):
    """Read a fit written by ``fit.save(path)``.

    Returns
    -------
    LmerFit, GlmerFit or PosteriorFit
        With the same numbers as the saved fit and a rebuilt design, so
        ``predict(newdata)`` works.

    Examples
    --------
    >>> import hierbayes as hb
    >>> fit = hb.load("results/sleepstudy.nc")  # doctest: +SKIP
    """
    from hierbayes.model import Model

    path = Path(path)
    if not path.is_file():
        raise FileError(f"no file at {path}" + (" (it is a directory)" if path.is_dir() else ""))
    ds = _hierbayes_group(path)
    fmt = int(ds.attrs.get("format", -1))
    if fmt not in READS:
        if fmt > FORMAT:
            raise FileError(f"{path} was written by a newer hierbayes (file format {fmt}); upgrade hierbayes")
        raise FileError(f"{path} was not written by hierbayes.save (no hierbayes file format in it)")
    data = _decode_data(ds)
    weights = ds.attrs["weights"] or (ds["weights_array"].values if "weights_array" in ds else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the warnings were given when the model was first built
        model = Model(
            ds.attrs["formula"], data, family=ds.attrs["family"], link=ds.attrs["link"],
            priors=decode(loads(str(ds["priors_json"].values)), ds), na_action=ds.attrs["na_action"], weights=weights,
        )  # fmt: skip
    content = decode(loads(str(ds["content_json"].values)), ds)
    kind = ds.attrs["fit_class"]
    if kind == "LmerFit":
        from hierbayes.fits.lmer import LmerFit

        return LmerFit(model, content, warn=False)
    if kind == "GlmerFit":
        from hierbayes.fits.glmer import GlmerFit

        return GlmerFit(model, content, warn=False)
    from hierbayes.bayesian.priors import resolve_priors
    from hierbayes.bayesian.sampling import datatree
    from hierbayes.fits.posterior import PosteriorFit

    with xr.open_datatree(path) as handle:
        groups = {name: node.to_dataset().load() for name, node in handle.children.items() if name != GROUP}
    if "posterior" not in groups:
        raise FileError(f"{path} has a PosteriorFit's hierbayes group but no posterior group: the file is incomplete")
    return PosteriorFit(model, datatree(groups, stamp=False), content, resolve_priors(model), warn=False)


def _hierbayes_group(path: Path) -> xr.Dataset:
    """The ``hierbayes`` group of a file, or a FileError saying why it cannot be read."""
    with open(path, "rb") as f:
        magic = f.read(8)
    if not (magic.startswith(b"\x89HDF") or magic[:3] == b"CDF"):
        raise FileError(f"{path} is not a netCDF file (hierbayes.save writes netCDF-4)")
    try:
        with xr.open_dataset(path, group=GROUP) as handle:
            return handle.load()
    except OSError as exc:
        if "group not found" in str(exc).lower() or isinstance(exc, FileNotFoundError):
            raise FileError(f"{path} is a netCDF file not written by hierbayes.save (no '{GROUP}' group)") from None
        raise FileError(f"cannot read {path}: the netCDF file is damaged or truncated ({exc})") from None
    except (ValueError, KeyError, RuntimeError) as exc:
        raise FileError(f"cannot read {path}: the netCDF file is damaged or truncated ({exc})") from None


def _used_data(model) -> pd.DataFrame:
    """The columns of the user's data the model uses, every row."""
    frame = model.design.frame
    columns = [c for c in frame.data.columns if c != WEIGHTS_COLUMN]  # weights' own columns included
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


def _decode_data(ds: xr.Dataset) -> pd.DataFrame:
    meta = loads(str(ds["data_json"].values))
    cols: dict[str, Any] = {}
    for name, var in ds.data_vars.items():
        if str(name).startswith("data."):
            values = var.values
            cols[var.attrs["column"]] = values.astype(bool) if var.attrs.get("bool") else values
    if meta["other"]:
        other = pd.read_json(io.StringIO(meta["other"]), orient="table")
        for col in other.columns:
            cols[col] = other[col].to_numpy() if not isinstance(other[col].dtype, pd.CategoricalDtype) else other[col]
    order = loads(meta["order"])
    df = pd.DataFrame({c: (cols[c].array if isinstance(cols[c], pd.Series) else cols[c]) for c in order})
    df.index = pd.Index(meta["index"])
    return df
