"""The design of data read in pieces: one frozen encoding, fitted once, replayed on every piece of the rows.

A source too large for memory (:mod:`hierbayes.sources`) is encoded the way
:func:`~hierbayes.design.build_design` encodes a whole data frame, without
forking it:

* :func:`formula_columns` names the columns the formula reads (only those are
  read) and the column sets whose distinct values must all be seen (the
  grouping factors, text and categorical columns);
* ``build_design`` runs on a *prototype*: the rows that first show each
  level, so column types, level order (R's, as for the whole frame), names
  and the formulaic specs are the whole frame's;
* :class:`TransformStats` collects the whole-column statistics of the
  stateful transforms (``scale(x)``, ``poly(x, 2)``) in a pass over the
  pieces; :func:`with_transform_states` puts them into the specs, so every
  piece, and ``predict``, replays them;
* :class:`BatchEncoder` encodes each piece (y, the full X, each block's level
  codes and Z) with those specs.

The result, :class:`StreamedDesign`, is a :class:`~hierbayes.design.Design`
without rows: it holds the cross-products of [Z X y] and the few per-row
summaries the engines ask for (:class:`StreamedRows`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hierbayes.design.checks import check_finite
from hierbayes.design.columns import ColumnTable, safe_frame
from hierbayes.design.design import Design, _translate
from hierbayes.design.encode import evaluate_values, evaluate_vector, r_names, replay_matrix
from hierbayes.design.rfunctions import COLLECT
from hierbayes.design.translate import Translator
from hierbayes.errors import DataError, ModelError
from hierbayes.formula import ParsedFormula, parse_formula

_STATEFUL = ("_r_scale(", "_r_poly(")


@dataclass(frozen=True)
class FormulaColumns:
    """What a formula reads from a source's columns.

    Attributes
    ----------
    parsed
        The parsed formula.
    used
        Labels of the columns the formula reads, in order of first use.
    level_keys
        Column sets whose distinct (combined) values must all reach the
        prototype: each grouping factor's columns (the first ``n_grouping``),
        and each other column one by one.
    response_code
        The response's translated code.
    """

    parsed: ParsedFormula
    used: tuple[Hashable, ...]
    level_keys: tuple[tuple[Hashable, ...], ...]
    response_code: str
    n_grouping: int = 0


def formula_columns(formula: str | ParsedFormula, columns: Sequence[Hashable]) -> FormulaColumns:
    """The columns ``formula`` reads from data with these column labels (unknown names raise as for a frame)."""
    parsed = formula if isinstance(formula, ParsedFormula) else parse_formula(formula)
    table = ColumnTable(columns)
    code = _translate(parsed, table, None, None)
    if parsed.response_cbind is not None:
        raise ModelError("a cbind() response (a binomial model) cannot be fitted from a streamed source; "
                         "glmer needs a pandas DataFrame")  # fmt: skip
    used = tuple(code["translator"].used)
    tr = Translator(table, parsed.text)
    keys: list[tuple[Hashable, ...]] = []
    for bar in parsed.bars:
        cols = tuple(dict.fromkeys(c for g in bar.group for c in tr.columns_of(g, "grouping factor")))
        if cols and cols not in keys:
            keys.append(cols)
    n_grouping = len(keys)
    keys += [(c,) for c in used if (c,) not in keys]
    response = code["response"][0]
    if any(s in response for s in _STATEFUL):
        raise ModelError(f"the response '{parsed.response_text}' uses scale() or poly(), whose whole-column "
                         "statistics a streamed source cannot give the response; transform it in the data")  # fmt: skip
    return FormulaColumns(parsed, used, tuple(keys), response, n_grouping)


# --- whole-column statistics of the stateful transforms --------------------------------------------------------


class TransformStats:
    """Sums over the pieces of one stateful transform's input, and the state they give (as for the whole column)."""

    def __init__(self, key: str, center: float | None = None):
        self.key = key
        self.kind = "scale" if key.startswith("_r_scale(") else "poly"
        self.args: dict[str, Any] = {}
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0  # scale: sum of squares about the mean (Chan's merge), or about a given center
        self.c0: float | None = center  # poly: the center of the power sums (the same for parts to be combined)
        self.powers: np.ndarray | None = None

    def add(self, values: np.ndarray, **args: Any) -> None:
        self.args = args
        v = np.asarray(values, dtype=float)
        if not len(v):
            return
        if self.kind == "scale" and not isinstance(args["center"], (bool, np.bool_)):
            self.m2 += float(np.sum((v - float(args["center"])) ** 2))
            self.n += len(v)
            return
        if self.kind == "scale" and not args["center"]:
            self.m2 += float(np.sum(v**2))
            self.n += len(v)
            return
        nb, mb = len(v), float(np.mean(v))
        m2b = float(np.sum((v - mb) ** 2))
        n = self.n + nb
        delta = mb - self.mean
        self.mean += delta * nb / n
        self.m2 += m2b + delta * delta * self.n * nb / n
        self.n = n
        if self.kind == "poly" and not args.get("raw", False):
            degree = int(args["degree"])
            if self.powers is None:
                self.c0 = mb if self.c0 is None else self.c0
                self.powers = np.zeros(2 * degree + 1)
            t = v - self.c0
            p = np.ones_like(t)
            for j in range(2 * degree + 1):
                self.powers[j] += float(np.sum(p))
                p = p * t

    def combine(self, other: TransformStats) -> None:
        """Add the statistics of other pieces (taken about the same center)."""
        if not other.n:
            return
        self.args = other.args
        n = self.n + other.n
        delta = other.mean - self.mean
        self.mean += delta * other.n / n
        self.m2 += other.m2 + delta * delta * self.n * other.n / n
        self.n = n
        if other.powers is not None:
            if self.powers is None:
                self.c0, self.powers = other.c0, other.powers.copy()
            else:
                self.powers = self.powers + other.powers

    def state(self) -> dict:
        """The transform's state, as its evaluation on the whole column would have set it."""
        a = self.args
        if self.kind == "scale":
            center, scale = a.get("center", True), a.get("scale", True)
            c = (self.mean if center else 0.0) if isinstance(center, (bool, np.bool_)) else float(center)
            if isinstance(scale, (bool, np.bool_)):
                s = float(np.sqrt(self.m2 / max(self.n - 1, 1))) if scale else 1.0
            else:
                s = float(scale)
            return {"center": float(c), "scale": s}
        if a.get("raw", False) or self.powers is None:
            return {}
        return _poly_state(self.powers, self.c0, int(a["degree"]))


def _poly_state(powers: np.ndarray, c0: float, degree: int) -> dict:
    """R's ``poly`` coefficients (alpha, norm2) from the power sums of ``x - c0`` (Stieltjes' recurrence)."""

    def ip(a: np.ndarray, b: np.ndarray) -> float:
        prod = np.convolve(a, b)
        return float(prod @ powers[: len(prod)])

    prev, cur = np.zeros(1), np.ones(1)
    norms = [1.0, ip(cur, cur)]
    alpha = []
    for k in range(degree):
        a = ip(np.convolve([0.0, 1.0], cur), cur) / norms[-1]
        alpha.append(a + c0)
        nxt = np.convolve([-a, 1.0], cur)
        nxt[: len(prev)] -= (norms[-1] / norms[-2]) * prev if k else 0.0
        prev, cur = cur, nxt
        norms.append(ip(cur, cur))
    if min(norms[2:]) <= 1e-14 * norms[1]:
        raise DataError(f"'degree' ({degree}) must be less than the number of unique points")
    return {"alpha": alpha, "norm2": norms}


def stateful_keys(design: Design) -> list[str]:
    """The stateful transforms (their code) of the fixed part, the random-effects terms and the offsets."""
    keys: dict[str, None] = {}
    for spec in (design.fixed_spec, *(s for b in design.blocks for s in b.specs)):
        if spec is not None:
            keys.update(dict.fromkeys(spec.transform_state))
    for _, state in design.offset_code:
        keys.update(dict.fromkeys(state))
    for key in keys:
        if sum(key.count(s) for s in _STATEFUL) > 1:
            raise ModelError(f"'{design.naming.humanize(key)}' nests scale()/poly() calls, whose statistics a streamed "
                             "source cannot collect in one pass; compute the inner one in the data")  # fmt: skip
    return list(keys)


def collect_transform_stats(design: Design, keys: Sequence[str], kept: pd.DataFrame, stats: dict) -> None:
    """Add a piece of complete rows (user's columns) to the statistics of each stateful transform."""
    safe = safe_frame(kept, design.columns)
    for key in keys:
        evaluate_values(key, safe, "stateful transform", design.naming, {key: {COLLECT: stats[key]}})


def with_transform_states(design: Design, states: dict[str, dict]) -> Design:
    """The design with its stateful transforms' states replaced by ``states`` (code -> state)."""

    def update(spec):
        if spec is None or not spec.transform_state:
            return spec
        new = {k: (dict(states[k]) if k in states else v) for k, v in spec.transform_state.items()}
        return spec.update(transform_state=new)

    blocks = tuple(dataclasses.replace(b, specs=tuple(update(s) for s in b.specs)) for b in design.blocks)
    offsets = tuple((c, {k: dict(states.get(k, v)) for k, v in st.items()}) for c, st in design.offset_code)
    return dataclasses.replace(design, fixed_spec=update(design.fixed_spec), blocks=blocks, offset_code=offsets)


# --- encoding the pieces ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Encoded:
    """One piece of rows, encoded: y, the full X (before aliased columns are dropped), and each block's codes and Z."""

    y: np.ndarray
    X: np.ndarray
    codes: tuple[np.ndarray, ...]
    Z: tuple[np.ndarray, ...]


class BatchEncoder:
    """Encodes pieces of complete rows exactly as ``build_design`` encodes the whole frame.

    Parameters
    ----------
    design
        The prototype's design, with the whole data's transform states.
    response_code
        The response's translated code (:class:`FormulaColumns`).
    """

    def __init__(self, design: Design, response_code: str):
        self.design = design
        self.response_code = response_code
        self._levels = [pd.Index(b.levels) for b in design.blocks]
        numeric = {c.safe for c in design.columns if c.kind == "numeric"}
        # a grouping factor that is one integer column: its levels are the integers' labels, looked up as integers
        self._int_levels: list[pd.Index | None] = []
        for b in design.blocks:
            ints = None
            if len(b.group_code) == 1 and b.group_code[0] in numeric:
                try:
                    values = np.array([int(v) for v in b.levels], dtype=np.int64)
                    ints = pd.Index(values) if [str(v) for v in values] == list(b.levels) else None
                except ValueError:
                    ints = None
            self._int_levels.append(ints)

    def encode(self, kept: pd.DataFrame, first_row: int = 0) -> Encoded:
        """Encode complete rows (the user's columns); ``first_row`` numbers them in messages."""
        d = self.design
        safe = safe_frame(kept, d.columns)
        rows = pd.RangeIndex(first_row, first_row + len(kept))
        y = evaluate_vector(self.response_code, safe, "response", d.naming)
        check_finite(y, [d.formula.response_text], "response", rows)
        X = replay_matrix(d.fixed_spec, safe, "fixed effects", d.naming)
        check_finite(X, [f"column {j}" for j in range(X.shape[1])], "fixed-effects", rows)
        codes, Zs = [], []
        for b, index, ints in zip(d.blocks, self._levels, self._int_levels, strict=True):
            col = safe[b.group_code[0]] if ints is not None else None
            if col is not None and pd.api.types.is_integer_dtype(col.dtype):
                c = ints.get_indexer(col.to_numpy(dtype=np.int64)).astype(np.int64)
                keys = col.astype(str).tolist() if (c < 0).any() else None
            else:
                keys = b.keys(safe)
                c = index.get_indexer(keys).astype(np.int64)
            if (c < 0).any():
                i = int(np.flatnonzero(c < 0)[0])
                raise DataError(f"level '{keys[i]}' of {b.group} in row {rows[i]} was not seen in the first pass "
                                "over the data: the source changed between passes")  # fmt: skip
            Z = np.hstack([replay_matrix(s, safe, f"random-effects term for {b.group}", d.naming) for s in b.specs])
            check_finite(Z, b.terms, f"random-effects ({b.group})", rows)
            codes.append(c)
            Zs.append(Z)
        return Encoded(y, X, tuple(codes), tuple(Zs))


# --- the row-less design ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamedRows:
    """What the engines need of rows that were not kept: their cross-products and a few sums.

    Attributes
    ----------
    n
        Rows fitted (complete rows).
    n_input
        Rows read.
    crossproducts
        The cross-products of [Z X (y - X beta0)] (:class:`hierbayes.linalg.CrossProducts`).
    beta0
        The shift of the response (an OLS fit) the cross-products are taken about.
    y_mean, y_var, y_maxabs, y_ss
        Mean, variance (n - 1), largest absolute value and sum of squares of the response.
    level_counts, level_ysum
        Per block, the rows and the sum of the response of each level.
    source
        The source's description.
    x_mean, x_sd, z_sd
        Mean and SD (n - 1) of each column of X, and SD of each block's Z columns (default priors).
    states
        The whole data's states of the stateful transforms (code -> state).
    prototype
        The rows that fixed the encoding (each level's first row): ``fit.save`` stores them.
    proxy
        The design of the prototype rows, when its X has the kept columns and full rank: what depends
        on X's column space only (type III contrasts) is computed on it.
    """

    n: int
    n_input: int
    crossproducts: Any
    beta0: np.ndarray
    y_mean: float
    y_var: float
    y_maxabs: float
    y_ss: float
    level_counts: tuple[np.ndarray, ...]
    level_ysum: tuple[np.ndarray, ...]
    source: str = "data"
    x_mean: np.ndarray | None = None
    x_sd: np.ndarray | None = None
    z_sd: tuple[np.ndarray, ...] = ()
    states: dict = field(default_factory=dict)
    prototype: pd.DataFrame | None = field(default=None, repr=False)
    proxy: Design | None = field(default=None, repr=False)


@dataclass(frozen=True)
class StreamedDesign(Design):
    """A design whose rows were read in pieces and not kept: ``y``, ``X`` and the blocks' codes have no rows.

    The engines take the cross-products from ``streamed``; per-row extractors
    raise :class:`~hierbayes.errors.DataError` saying how to get them.
    """

    streamed: StreamedRows | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return self.streamed.n

    @property
    def n_dropped(self) -> int:
        return self.streamed.n_input - self.streamed.n


def rowless(design: Design, streamed: StreamedRows, keep: Sequence[int], aliased: tuple[str, ...],
            dropped_by_column: dict) -> StreamedDesign:  # fmt: skip
    """The prototype's design as a :class:`StreamedDesign`: no rows, the whole data's columns kept and counts."""
    x_names = tuple(full_names(design)[j] for j in keep)
    blocks = tuple(
        dataclasses.replace(b, codes=np.zeros(0, dtype=np.int64), Z=np.zeros((0, b.Z.shape[1]))) for b in design.blocks
    )
    frame = dataclasses.replace(
        design.frame, data=design.frame.data.iloc[:0], row_index=design.frame.row_index[:0],
        n_input=streamed.n_input, dropped_by_column=dict(dropped_by_column), kept=None,
    )  # fmt: skip
    proxy = design if tuple(design.fixed_keep) == tuple(keep) and np.linalg.matrix_rank(design.X) == len(keep) else None
    streamed = dataclasses.replace(streamed, proxy=proxy)
    base = {f.name: getattr(design, f.name) for f in dataclasses.fields(Design)}
    base.update(y=np.zeros(0), X=np.zeros((0, len(keep))), x_names=x_names, blocks=blocks, frame=frame,
                aliased=aliased, fixed_keep=tuple(keep))  # fmt: skip
    return StreamedDesign(**base, streamed=streamed)


def full_names(design: Design) -> tuple[str, ...]:
    """Names of the full X (before aliased columns were dropped) of a design."""
    return r_names(design.fixed_spec, design.naming)
