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
``predict(newdata)`` works) and the fit from the stored estimates. The
writer is :mod:`hierbayes.fits.save` (``fit.save`` is every fit's method,
and this module, which rebuilds models, sits above the fits); it is
:func:`save` here too.

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

import dataclasses
import io
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

from hierbayes._serialize import decode, loads
from hierbayes.bayesian.priors import resolve_priors
from hierbayes.bayesian.sampling import datatree
from hierbayes.errors import FileError
from hierbayes.fits import GlmerFit, LmerFit, PosteriorFit
from hierbayes.fits.save import FORMAT, GROUP, save
from hierbayes.formula import Formula
from hierbayes.model import Model
from hierbayes.sources.stream import restore_design
from hierbayes.structures.residual import spec_from_record

__all__ = ["FORMAT", "READS", "load", "save"]

#: formats this version reads: 1 (ArviZ 0.x InferenceData groups), 2 (ArviZ 1.x DataTree groups)
READS = (1, 2)


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
        if "streamed_json" in ds:  # a fit from data read in pieces: its cross-products and prototype rows
            record = decode(loads(str(ds["streamed_json"].values)), ds)
            design = restore_design(ds.attrs["formula"], data, record)
            priors = decode(loads(str(ds["priors_json"].values)), ds)
            model = Model.of_design(design, family=ds.attrs["family"], link=ds.attrs["link"], priors=priors,
                                    na_action=ds.attrs["na_action"])  # fmt: skip
        else:
            specs = loads(str(ds["structure_json"].values)) if "structure_json" in ds else {}
            formula = ds.attrs["formula"]
            if "aux_formulas" in ds.attrs:  # a distributional model
                formula = Formula(formula, **dict(loads(str(ds.attrs["aux_formulas"]))))
            model = Model(
                formula, data, family=ds.attrs["family"], link=ds.attrs["link"],
                priors=decode(loads(str(ds["priors_json"].values)), ds), na_action=ds.attrs["na_action"],
                weights=weights, correlation=spec_from_record(specs.get("correlation")),
                variance=spec_from_record(specs.get("variance")),
            )  # fmt: skip
    content = decode(loads(str(ds["content_json"].values)), ds)
    if getattr(model, "structure", None) is not None:  # bound again to the loaded rows (saved without it)
        content = dataclasses.replace(content, structure=model.structure)
    kind = ds.attrs["fit_class"]
    if kind == "LmerFit":
        return LmerFit(model, content, warn=False)
    if kind == "GlmerFit":
        return GlmerFit(model, content, warn=False)
    with xr.open_datatree(path) as handle:
        groups = {name: node.to_dataset().load() for name, node in handle.children.items() if name != GROUP}
    if "posterior" not in groups:
        raise FileError(f"{path} has a PosteriorFit's hierbayes group but no posterior group: the file is incomplete")
    priors = resolve_priors(model.design, model.family, model.priors, model.aux)
    return PosteriorFit(model, datatree(groups, stamp=False), content, priors, warn=False)


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
