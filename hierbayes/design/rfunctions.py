"""R's functions and contrasts for formula evaluation (formulaic's evaluation context).

Every function a formula may call (``KNOWN_FUNCTIONS`` in the formula layer)
is implemented here with R's meaning, under a private name that the design
layer writes into the code it hands to formulaic:

* factors: ``factor``, ``as.factor``, ``ordered``, ``relevel``,
  ``interaction``, ``droplevels``; a character or logical variable in a term is
  a factor as in R, an ordered factor is coded by ``contr.poly``;
* contrasts: ``C(x, contr)`` with ``contr.treatment``, ``contr.sum``,
  ``contr.helmert``, ``contr.poly``, ``contr.SAS`` (R's values and R's column
  names, which differ between ``C(f, contr.sum)`` and ``C(f, sum)``);
* ``poly(x, k)`` (R's orthogonal polynomials, replayed on new data with the
  training coefficients as R's ``predict`` does) and ``poly(x, k, raw = TRUE)``;
  ``scale(x)`` as R's (``center`` and ``scale`` may be numbers or FALSE);
* ``as.numeric``, ``as.character``, ``as.integer``, ``as.logical``,
  arithmetic (``log(x, base)``, ``log1p``, ``exp``, ``sqrt``, ``abs``, ``sin``,
  ``cos``, ``round``, ``ifelse``, ``pmin``, ...), ``c()``, ``pi``.

A factor is a ``FactorValues`` of level labels (strings, as R prints them)
whose encoder codes it with R's contrasts and stores its levels in formulaic's
encoder state; on new data a label that is not among those levels raises
``NewLevelsError`` instead of being coded as some other level. Column names
come out as ``{factor}\\x1e{field}\\x1f``; the design layer turns them into
R's (``factor(x)2``, ``C(f, contr.sum)1``, ``ordered(n).L``).
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from formulaic.materializers.types import FactorValues
from formulaic.transforms import TRANSFORMS
from formulaic.transforms.contrasts import (
    Contrasts,
    DiffContrasts,
    HelmertContrasts,
    PolyContrasts,
    SumContrasts,
    TreatmentContrasts,
)
from formulaic.utils.stateful_transforms import stateful_transform

from hierbayes.design.names import level_strings, r_labels
from hierbayes.errors import DataError

#: Key of a stateful transform's state that holds a collector of whole-column statistics instead of the state
#: (a streamed source's first pass: :mod:`hierbayes.design.batches` sums them over the pieces of the rows).
COLLECT = "_collect"
#: How an encoded factor's column names are written; ``encode.r_names`` reads them back.
FIELD_FORMAT = "{name}\x1e{field}\x1f"


class NewLevelsError(DataError):
    """New data has levels of a factor in the fixed part that the fit did not see."""

    def __init__(self, expr: str, new: Sequence[str], known: Sequence[str], message: str | None = None):
        self.expr, self.new, self.known = expr, tuple(new), tuple(known)
        super().__init__(message or f"factor {expr} has new level(s) {', '.join(self.new)}")


# --- contrasts --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RContrasts(Contrasts):
    """R's contrast matrices, named as R names them.

    Attributes
    ----------
    kind
        ``"treatment"``, ``"sum"``, ``"helmert"``, ``"poly"`` or ``"SAS"``.
    by_levels
        True when R calls the contrast function with the levels (the default
        contrasts, ``C(f, sum)``, ``C(f, "contr.sum")``): treatment and SAS
        columns are named by level. False when a function object is given
        (``C(f, contr.treatment)``): R calls it with the number of levels, and
        names the columns by number.
    base
        Treatment contrasts' reference: a 1-based position or a level label.
    """

    kind: str = "treatment"
    by_levels: bool = True
    base: int | str = 1

    FACTOR_FORMAT = FIELD_FORMAT
    FACTOR_FORMAT_REDUCED = FIELD_FORMAT

    def _base_index(self, levels: Sequence[Hashable]) -> int:
        if self.kind == "SAS":
            return len(levels) - 1
        if isinstance(self.base, str):
            if self.base not in levels:
                raise DataError(f"the reference level '{self.base}' is not a level ({', '.join(map(str, levels))})")
            return list(levels).index(self.base)
        if not 1 <= int(self.base) <= len(levels):
            raise DataError(f"base = {self.base} is outside the {len(levels)} levels")
        return int(self.base) - 1

    @Contrasts.override
    def _get_coding_matrix(self, levels, reduced_rank=True, sparse=False):
        k = len(levels)
        if not reduced_rank:
            return np.eye(k)
        if self.kind in ("treatment", "SAS"):
            keep = [i for i in range(k) if i != self._base_index(levels)]
            return np.eye(k)[:, keep]
        if self.kind == "sum":
            return np.vstack([np.eye(k - 1), -np.ones((1, k - 1))])
        if self.kind == "helmert":
            m = np.zeros((k, k - 1))
            for j in range(k - 1):
                m[: j + 1, j] = -1.0
                m[j + 1, j] = j + 1.0
            return m
        if self.kind == "poly":
            return contr_poly_matrix(k)
        raise ValueError(self.kind)  # pragma: no cover

    @Contrasts.override
    def get_coding_column_names(self, levels, reduced_rank=True):
        k = len(levels)
        if not reduced_rank:
            return list(levels)
        if self.kind in ("treatment", "SAS"):
            base = self._base_index(levels)
            if self.by_levels:
                return [lvl for i, lvl in enumerate(levels) if i != base]
            return [str(i + 1) for i in range(k) if i != base]
        if self.kind == "poly":
            return poly_contrast_names(k)
        return [str(i + 1) for i in range(k - 1)]

    @Contrasts.override
    def get_coefficient_row_names(self, levels, reduced_rank=True):
        return list(levels) if not reduced_rank else ["(Intercept)", *self.get_coding_column_names(levels)]


def contr_poly_matrix(k: int) -> np.ndarray:
    """R's ``contr.poly(k)``: orthonormal polynomials in the scores 1..k, without the constant."""
    scores = np.arange(1.0, k + 1.0)
    return orthonormal_poly(scores - scores.mean(), k - 1)[0]


def poly_contrast_names(k: int) -> list[str]:
    """``.L``, ``.Q``, ``.C``, ``^4``, ... as R names the columns of ``contr.poly``."""
    return [{1: ".L", 2: ".Q", 3: ".C"}.get(d, f"^{d}") for d in range(1, k)]


def orthonormal_poly(x: np.ndarray, degree: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R's ``poly(x, degree)``: the basis (n, degree), ``alpha`` and ``norm2`` (its ``coefs``).

    As R: the columns of ``outer(x - mean(x), 0:degree, "^")`` made orthogonal
    by a QR decomposition, each scaled to unit length; ``alpha`` and ``norm2``
    replay the same polynomials on new values by the three-term recurrence.
    """
    xbar = float(np.mean(x))
    xc = x - xbar
    X = np.vander(xc, degree + 1, increasing=True)
    Q, R = np.linalg.qr(X)
    if np.sum(np.abs(np.diag(R)) > 1e-7 * np.abs(R[0, 0])) < degree + 1:
        raise DataError(f"'degree' ({degree}) must be less than the number of unique points ({len(np.unique(x))})")
    Z = Q * np.diag(R)
    norm2 = np.sum(Z**2, axis=0)
    alpha = (np.sum(xc[:, None] * Z**2, axis=0) / norm2 + xbar)[:degree]
    norm2 = np.concatenate([[1.0], norm2])
    return (Z / np.sqrt(norm2[1:]))[:, 1:], alpha, norm2


def poly_predict(x: np.ndarray, alpha: np.ndarray, norm2: np.ndarray) -> np.ndarray:
    """R's ``predict(poly(x, k), newdata)``: the training polynomials evaluated at ``x``."""
    degree = len(alpha)
    Z = np.ones((len(x), degree + 1))
    Z[:, 1] = x - alpha[0]
    for i in range(1, degree):
        Z[:, i + 1] = (x - alpha[i]) * Z[:, i] - (norm2[i + 1] / norm2[i]) * Z[:, i - 1]
    return (Z / np.sqrt(norm2[1:]))[:, 1:]


class RContrastFunction:
    """An R contrast function used as a value, ``C(f, contr.sum)`` (columns named by number).

    Called, it gives a contrast: ``contr.treatment(base = 2)``; formulaic's
    ``contr.treatment("b")`` (a reference level) is accepted too.
    """

    def __init__(self, kind: str):
        self.kind = kind

    def __call__(self, n=None, base=1, contrasts=True, sparse=False) -> RContrasts:
        if isinstance(n, str) and self.kind == "treatment":
            return RContrasts("treatment", by_levels=True, base=n)
        return RContrasts(self.kind, by_levels=False, base=base)

    def contrasts(self) -> RContrasts:
        return RContrasts(self.kind, by_levels=False)

    def __repr__(self) -> str:
        return f"contr.{self.kind}"


_ALIASES = {"treatment": "treatment", "sum": "sum", "helmert": "helmert", "poly": "poly", "SAS": "SAS"}


def contrast_of(contr: object, base: int | str | None = None) -> Contrasts:
    """The contrast asked for in ``C(x, contr)``: a contrast function, its name, an alias, or formulaic's."""
    if isinstance(contr, RContrastFunction):
        c = contr.contrasts()
    elif isinstance(contr, RContrasts):
        c = contr
    elif isinstance(contr, str):
        name = contr.removeprefix("contr.")
        if name not in _ALIASES:
            raise DataError(
                f"unknown contrasts '{contr}' (use contr.treatment, contr.sum, contr.helmert, contr.poly or contr.SAS)"
            )
        c = RContrasts(_ALIASES[name], by_levels=True)
    elif isinstance(contr, Contrasts):
        c = contr
    elif isinstance(contr, type) and issubclass(contr, Contrasts):
        c = contr()
    else:
        raise DataError(f"C() takes contrasts such as contr.sum, not {contr!r}")
    if base is not None:
        if not isinstance(c, RContrasts) or c.kind != "treatment":
            raise DataError("base = is an argument of treatment contrasts only")
        c = RContrasts("treatment", by_levels=c.by_levels, base=base)
    return c


# --- factors ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RFactor:
    """Values as level labels, with the levels in R's order.

    ``keep_unused`` keeps levels with no rows when fitting (a logical variable
    in a term has levels FALSE and TRUE whatever its values, as in R).
    """

    labels: np.ndarray
    levels: tuple[str, ...]
    ordered: bool = False
    keep_unused: bool = False


class RFactorEncoder:
    """formulaic's encoder of a factor: R's contrasts, levels fixed when fitting, new levels refused."""

    def __init__(self, factor: RFactor, contrasts: Contrasts | None = None, name: str = "a factor"):
        self.factor = factor
        self.contrasts = contrasts or RContrasts("poly" if factor.ordered else "treatment")
        self.name = name  # R's text of the term's variable, set by term_value

    def __call__(self, values, reduced_rank, drop_rows, encoder_state, model_spec):
        labels = np.asarray(self.factor.labels, dtype=object)
        if len(drop_rows):
            labels = np.delete(labels, list(drop_rows))
        present = pd.unique(labels[pd.notna(labels)])
        if "levels" in encoder_state:
            levels = list(encoder_state["levels"])
            new = [str(v) for v in present if v not in set(levels)]
            if pd.isna(labels).any():
                new.append("NA")
            if new:
                raise NewLevelsError(self.name, sorted(new), tuple(levels))
        else:
            if pd.isna(labels).any():
                raise DataError(f"'{self.name}' has values that are not among its levels")
            used = set(present)
            levels = [lvl for lvl in self.factor.levels if self.factor.keep_unused or lvl in used]
            if len(levels) < 2:
                raise DataError(
                    f"'{self.name}' has only one level ({', '.join(levels) or 'none'}); a factor needs 2 or more "
                    "(R: contrasts can be applied only to factors with 2 or more levels)"
                )
            encoder_state["levels"] = tuple(levels)
        codes = pd.Categorical(labels, categories=levels).codes
        onehot = np.zeros((len(codes), len(levels)))
        rows = np.flatnonzero(codes >= 0)
        onehot[rows, codes[rows]] = 1.0
        dummies = pd.DataFrame(onehot, columns=levels)
        return self.contrasts.apply(dummies, levels=levels, reduced_rank=reduced_rank, output="pandas")


def as_factor(values) -> RFactor:
    """Anything a factor can be made of, as an ``RFactor`` (R's ``factor(x)``)."""
    if isinstance(values, FactorValues):
        enc = values.__formulaic_metadata__.encoder
        if isinstance(enc, RFactorEncoder):
            return enc.factor
        values = values.__wrapped__
    if isinstance(values, RFactor):
        return values
    s = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values) if np.ndim(values) else [values])
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = r_labels(s.cat.categories.to_numpy())
        labels = np.asarray([*cats, None], dtype=object)[s.cat.codes.to_numpy()]
        return RFactor(labels, tuple(cats), ordered=bool(s.cat.ordered))
    codes, levels = level_strings(s)
    return RFactor(np.asarray([*levels, None], dtype=object)[codes], levels)


def _factor_values(f: RFactor, contrasts: Contrasts | None = None) -> FactorValues:
    return FactorValues(
        pd.Series(f.labels, dtype=object),
        kind="categorical",
        spans_intercept=True,
        encoder=RFactorEncoder(f, contrasts),
    )


def r_factor(x, levels=None, labels=None, ordered: bool | None = None) -> FactorValues:
    """R's ``factor(x, levels, labels, ordered)``; an ordered factor stays ordered unless ``ordered = FALSE``."""
    f = as_factor(x)
    keep_ordered = f.ordered if ordered is None else bool(ordered)
    if levels is not None:
        wanted = tuple(r_labels(np.atleast_1d(np.asarray(levels, dtype=object))))
        known = set(wanted)
        f = RFactor(np.array([v if v in known else None for v in f.labels], dtype=object), wanted)
    if labels is not None:
        new = tuple(r_labels(np.atleast_1d(np.asarray(labels, dtype=object))))
        if len(new) != len(f.levels):
            raise DataError(f"factor(): {len(new)} labels for {len(f.levels)} levels")
        mapping = dict(zip(f.levels, new, strict=True))
        f = RFactor(np.array([mapping.get(v) for v in f.labels], dtype=object), tuple(dict.fromkeys(new)))
    return _factor_values(RFactor(f.labels, f.levels, keep_ordered))


def r_as_factor(x) -> FactorValues:
    return _factor_values(as_factor(x))


def r_ordered(x, levels=None, labels=None) -> FactorValues:
    return r_factor(x, levels=levels, labels=labels, ordered=True)


def r_relevel(x, ref) -> FactorValues:
    f = as_factor(x)
    ref = r_labels(np.atleast_1d(np.asarray([ref], dtype=object)))[0]
    if ref not in f.levels:
        raise DataError(f"relevel(): '{ref}' is not a level ({', '.join(f.levels)})")
    return _factor_values(RFactor(f.labels, (ref, *[lvl for lvl in f.levels if lvl != ref]), False))


def r_interaction(*args, sep: str = ".", lex_order: bool = False, drop: bool = False) -> FactorValues:
    """R's ``interaction(a, b, ...)``: labels ``a.b``; the first factor varies fastest unless ``lex.order``."""
    if not args:
        raise DataError("interaction() needs at least one factor")
    fs = [as_factor(a) for a in args]
    labels = fs[0].labels.astype(object)
    levels = list(fs[0].levels)
    for f in fs[1:]:
        pairs = zip(labels, f.labels, strict=True)
        labels = np.array([None if a is None or b is None else f"{a}{sep}{b}" for a, b in pairs], dtype=object)
        if lex_order:
            levels = [f"{a}{sep}{b}" for a in levels for b in f.levels]
        else:
            levels = [f"{a}{sep}{b}" for b in f.levels for a in levels]
    if drop:
        used = set(labels[pd.notna(labels)])
        levels = [lvl for lvl in levels if lvl in used]
    return _factor_values(RFactor(labels, tuple(levels)))


def r_C(x, contr=None, how_many=None, base=None) -> FactorValues:
    """R's ``C(x, contr)``: a factor with the given contrasts."""
    f = as_factor(x)
    if contr is None:
        contrasts = RContrasts("poly" if f.ordered else "treatment")
        if base is not None:
            contrasts = contrast_of("contr.treatment", base)
    else:
        contrasts = contrast_of(contr, base)
    if how_many is not None:
        raise DataError("C(): how.many is not supported")
    return _factor_values(f, contrasts)


def term_value(x, name: str = "a factor"):
    """A variable as it enters a term: character and logical values are factors, as in R's model frame.

    ``name`` is R's text of the variable (``"k"``, ``"factor(n)"``), for messages.
    """
    out = _term_value(x)
    if isinstance(out, FactorValues) and isinstance(out.__formulaic_metadata__.encoder, RFactorEncoder):
        out.__formulaic_metadata__.encoder.name = name
    return out


def _term_value(x):
    if isinstance(x, FactorValues):
        if x.__formulaic_metadata__.kind.value == "categorical" and not isinstance(
            x.__formulaic_metadata__.encoder, RFactorEncoder
        ):
            return _factor_values(as_factor(x.__wrapped__))
        return x
    if isinstance(x, RFactor):
        return _factor_values(x)
    if np.ndim(x) == 0:
        x = pd.Series([x])
    s = x if isinstance(x, pd.Series) else None
    dtype = s.dtype if s is not None else np.asarray(x).dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _factor_values(as_factor(x))
    if pd.api.types.is_bool_dtype(dtype):
        labels = np.where(np.asarray(x, dtype=bool), "TRUE", "FALSE").astype(object)
        return _factor_values(RFactor(labels, ("FALSE", "TRUE"), keep_unused=True))
    if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        return _factor_values(as_factor(x))
    return x


# --- conversions ------------------------------------------------------------------------------------------------


def _plain(x):
    if isinstance(x, FactorValues):
        enc = x.__formulaic_metadata__.encoder
        if isinstance(enc, RFactorEncoder):
            return enc.factor
        return x.__wrapped__
    return x


def r_as_numeric(x):
    """R's ``as.numeric``: a factor gives its level codes 1..k, a logical 0/1, text its numbers."""
    x = _plain(x)
    if isinstance(x, RFactor):
        index = {lvl: i + 1.0 for i, lvl in enumerate(x.levels)}
        return np.array([index.get(v, np.nan) for v in x.labels])
    s = pd.Series(x) if not isinstance(x, pd.Series) else x
    if isinstance(s.dtype, pd.CategoricalDtype):
        return (s.cat.codes.to_numpy() + 1.0).astype(float)
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.to_numpy(dtype=float)
    if pd.api.types.is_numeric_dtype(s.dtype):
        return s.to_numpy(dtype=float, na_value=np.nan)
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)


def r_as_integer(x):
    return np.trunc(r_as_numeric(x))


def r_as_character(x):
    """R's ``as.character``: labels as R prints them (a factor's labels, ``TRUE``, ``2``, ``0.5``)."""
    x = _plain(x)
    if isinstance(x, RFactor):
        return pd.Series(x.labels, dtype=object)
    arr = x.to_numpy() if isinstance(x, pd.Series) else np.asarray(x, dtype=object)
    if isinstance(x, pd.Series) and isinstance(x.dtype, pd.CategoricalDtype):
        arr = np.asarray(x.astype(object))
    return pd.Series(r_labels(arr), dtype=object)


def r_as_logical(x):
    x = _plain(x)
    if isinstance(x, RFactor):
        x = x.labels
    s = pd.Series(x) if not isinstance(x, pd.Series) else x
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(s.dtype):
        return s.to_numpy(dtype=float) != 0
    truth = {"TRUE": True, "T": True, "true": True, "True": True, "FALSE": False, "F": False, "false": False,
             "False": False}  # fmt: skip
    out = s.map(lambda v: truth.get(str(v), np.nan))
    if out.isna().any():
        bad = s[out.isna()].iloc[0]
        raise DataError(f"as.logical(): '{bad}' is not TRUE or FALSE")
    return out.to_numpy(dtype=bool)


def r_c(*args):
    """R's ``c()``: one flat vector of its arguments."""
    out: list = []
    for a in args:
        out.extend(np.atleast_1d(np.asarray(_plain(a), dtype=object)).tolist())
    return (
        np.asarray(out) if all(isinstance(v, (int, float, np.number)) for v in out) else np.asarray(out, dtype=object)
    )


def r_in(x, table):
    """R's ``x %in% table``, comparing labels as R's ``match`` does."""
    x = _plain(x)
    if isinstance(x, RFactor):
        x = x.labels
    values = set(r_labels(np.atleast_1d(np.asarray(_plain(table), dtype=object))))
    return np.array([v in values for v in r_labels(np.atleast_1d(np.asarray(x, dtype=object)))])


def r_seq(a, b):
    """R's ``a:b`` for two numbers."""
    if np.ndim(a) or np.ndim(b):
        raise DataError(
            "':' between two vectors is a sequence in R; in a formula write a:b outside I() for an interaction"
        )
    step = 1 if b >= a else -1
    return np.arange(a, b + step, step)


def r_pow(a, b):
    """R's ``^``: always in doubles (``2^-1`` is 0.5)."""
    return np.power(np.asarray(_plain(a), dtype=float), np.asarray(_plain(b), dtype=float))


def r_not(x):
    return np.logical_not(_plain(x))


def r_log(x, base=np.e):
    x = np.asarray(_plain(x), dtype=float)
    return np.log(x) if base is np.e else np.log(x) / np.log(base)


def r_round(x, digits=0):
    """R's ``round(x, digits)`` (R >= 4.0): of the two decimal candidates, the closer to x; a tie goes to the even."""
    x = np.asarray(_plain(x), dtype=float)
    d = int(np.floor(float(digits) + 0.5))
    if d <= 0:
        p = 10.0 ** (-d)
        return np.round(x / p) * p
    p = 10.0**d
    sign, ax = np.sign(x), np.abs(x)
    lo, hi = np.floor(ax * p), np.ceil(ax * p)
    down, up = lo / p, hi / p
    dd, du = ax - down, up - ax
    pick_down = (dd < du) | ((dd == du) & (np.fmod(lo, 2.0) == 0))
    return sign * np.where(pick_down, down, up)


def r_ifelse(test, yes, no):
    return np.where(np.asarray(_plain(test), dtype=bool), _plain(yes), _plain(no))


def r_identity(x):
    """``I(x)``."""
    return x


def _elementwise(fn):
    def wrapped(x, *args, **kwargs):
        return fn(np.asarray(_plain(x), dtype=float), *args, **kwargs)

    wrapped.__name__ = getattr(fn, "__name__", "f")
    return wrapped


# --- polynomials and scaling ------------------------------------------------------------------------------------


@stateful_transform
def r_poly(x, degree=1, raw=False, coefs=None, simple=False, _state={}):  # noqa: B006 (formulaic replaces _state)
    """R's ``poly(x, degree)``; on new data the training ``alpha`` and ``norm2`` (R's ``predict.poly``)."""
    values = np.asarray(_plain(x), dtype=float)
    degree = int(degree)
    if degree < 1:
        raise DataError("'degree' must be at least 1")
    if COLLECT in _state:  # a streamed source's statistics pass (hierbayes.design.batches): no basis yet
        _state[COLLECT].add(values, raw=raw, degree=degree)
        return FactorValues(np.zeros((len(values), degree)), kind="numerical",
                            column_names=tuple(str(d) for d in range(1, degree + 1)), format=FIELD_FORMAT)  # fmt: skip
    if raw:
        out = np.column_stack([values**d for d in range(1, degree + 1)])
    elif "alpha" in _state:
        out = poly_predict(values, np.asarray(_state["alpha"]), np.asarray(_state["norm2"]))
    else:
        out, alpha, norm2 = orthonormal_poly(values, degree)
        _state["alpha"], _state["norm2"] = alpha.tolist(), norm2.tolist()
    return FactorValues(out, kind="numerical", column_names=tuple(str(d) for d in range(1, degree + 1)),
                        format=FIELD_FORMAT)  # fmt: skip


@stateful_transform
def r_scale(x, center=True, scale=True, _state={}):  # noqa: B006 (formulaic replaces _state)
    """R's ``scale(x, center, scale)``: without centering it divides by the root mean square (n - 1)."""
    values = np.asarray(_plain(x), dtype=float)
    if COLLECT in _state:  # a streamed source's statistics pass (hierbayes.design.batches)
        _state[COLLECT].add(values, center=center, scale=scale)
        return np.zeros(len(values))
    if "center" not in _state:
        if isinstance(center, (bool, np.bool_)):
            _state["center"] = float(np.mean(values)) if center else 0.0
        else:
            _state["center"] = float(center)
        xc = values - _state["center"]
        if isinstance(scale, (bool, np.bool_)):
            _state["scale"] = float(np.sqrt(np.sum(xc**2) / max(len(xc) - 1, 1))) if scale else 1.0
        else:
            _state["scale"] = float(scale)
    return (values - _state["center"]) / _state["scale"]


# --- the evaluation context -------------------------------------------------------------------------------------

#: R function name -> (key in the evaluation context, implementation).
FUNCTIONS: dict[str, tuple[str, object]] = {
    "log": ("_r_log", r_log),
    "log2": ("_r_log2", _elementwise(np.log2)),
    "log10": ("_r_log10", _elementwise(np.log10)),
    "log1p": ("_r_log1p", _elementwise(np.log1p)),
    "exp": ("_r_exp", _elementwise(np.exp)),
    "expm1": ("_r_expm1", _elementwise(np.expm1)),
    "exp2": ("_r_exp2", _elementwise(np.exp2)),
    "exp10": ("_r_exp10", _elementwise(lambda v: np.power(10.0, v))),
    "sqrt": ("_r_sqrt", _elementwise(np.sqrt)),
    "abs": ("_r_abs", _elementwise(np.abs)),
    "sin": ("_r_sin", _elementwise(np.sin)),
    "cos": ("_r_cos", _elementwise(np.cos)),
    "tan": ("_r_tan", _elementwise(np.tan)),
    "asin": ("_r_asin", _elementwise(np.arcsin)),
    "acos": ("_r_acos", _elementwise(np.arccos)),
    "atan": ("_r_atan", _elementwise(np.arctan)),
    "sinh": ("_r_sinh", _elementwise(np.sinh)),
    "cosh": ("_r_cosh", _elementwise(np.cosh)),
    "tanh": ("_r_tanh", _elementwise(np.tanh)),
    "floor": ("_r_floor", _elementwise(np.floor)),
    "ceiling": ("_r_ceiling", _elementwise(np.ceil)),
    "trunc": ("_r_trunc", _elementwise(np.trunc)),
    "sign": ("_r_sign", _elementwise(np.sign)),
    "round": ("_r_round", r_round),
    "pmin": ("_r_pmin", lambda *a: functools.reduce(np.minimum, [np.asarray(_plain(v), dtype=float) for v in a])),
    "pmax": ("_r_pmax", lambda *a: functools.reduce(np.maximum, [np.asarray(_plain(v), dtype=float) for v in a])),
    "ifelse": ("_r_ifelse", r_ifelse),
    "I": ("_r_I", r_identity),
    "c": ("_r_c", r_c),
    "factor": ("_r_factor", r_factor),
    "as.factor": ("_r_as_factor", r_as_factor),
    "droplevels": ("_r_droplevels", r_as_factor),
    "ordered": ("_r_ordered", r_ordered),
    "as.ordered": ("_r_as_ordered", r_ordered),
    "relevel": ("_r_relevel", r_relevel),
    "interaction": ("_r_interaction", r_interaction),
    "as.numeric": ("_r_as_numeric", r_as_numeric),
    "as.double": ("_r_as_double", r_as_numeric),
    "as.integer": ("_r_as_integer", r_as_integer),
    "as.character": ("_r_as_character", r_as_character),
    "as.logical": ("_r_as_logical", r_as_logical),
    "C": ("_r_C", r_C),
    "contr.treatment": ("_r_contr_treatment", RContrastFunction("treatment")),
    "contr.sum": ("_r_contr_sum", RContrastFunction("sum")),
    "contr.helmert": ("_r_contr_helmert", RContrastFunction("helmert")),
    "contr.poly": ("_r_contr_poly", RContrastFunction("poly")),
    "contr.SAS": ("_r_contr_SAS", RContrastFunction("SAS")),
    "contr.diff": ("_r_contr_diff", DiffContrasts),
    "Treatment": ("_f_Treatment", TreatmentContrasts),
    "Sum": ("_f_Sum", SumContrasts),
    "Helmert": ("_f_Helmert", HelmertContrasts),
    "Diff": ("_f_Diff", DiffContrasts),
    "Poly": ("_f_Poly", PolyContrasts),
    "poly": ("_r_poly", r_poly),
    "scale": ("_r_scale", r_scale),
    "center": ("_f_center", TRANSFORMS["center"]),
    "standardize": ("_f_standardize", TRANSFORMS["standardize"]),
    "bs": ("_f_bs", TRANSFORMS["bs"]),
    "cs": ("_f_cs", TRANSFORMS["cs"]),
    "cc": ("_f_cc", TRANSFORMS["cc"]),
    "cr": ("_f_cr", TRANSFORMS["cr"]),
    "lag": ("_f_lag", TRANSFORMS["lag"]),
    "hashed": ("_f_hashed", TRANSFORMS["hashed"]),
}

#: R contrast functions also usable as values (``C(f, contr.sum)``).
CONTRAST_FUNCTIONS = frozenset(name for name in FUNCTIONS if name.startswith("contr."))
#: ``C(f, sum)``: names R's ``C`` reads as contrasts before looking them up.
CONTRAST_ALIASES = frozenset(_ALIASES)

#: Helpers the translated code calls for R's operators, and R's constants.
OPERATORS = {
    "_r_in": r_in,
    "_r_seq": r_seq,
    "_r_pow": r_pow,
    "_r_not": r_not,
    "_r_term": term_value,
    "_r_pi": np.pi,
    "_r_NA": np.nan,
    "_r_Inf": np.inf,
}

#: Everything translated formula code may name besides the data columns.
CONTEXT: dict[str, object] = {key: fn for key, fn in FUNCTIONS.values()} | OPERATORS | {"np": np, "numpy": np}
