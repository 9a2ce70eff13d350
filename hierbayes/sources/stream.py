"""The passes over a source: levels and dropped rows first, transform statistics, then the cross-products.

:func:`streamed_design` turns a formula and a :class:`~hierbayes.sources.Source`
into a :class:`~hierbayes.design.batches.StreamedDesign`, reading only the
columns the formula uses:

1. the scan: rows with a missing, infinite or empty value in a used column
   are dropped and counted per column (exactly as for a data frame), and the
   rows that first show each level make the prototype, on which
   ``build_design`` fixes the encoding (types, R's level order, names);
2. only when the formula has ``scale()`` or ``poly()``: their whole-column
   statistics;
3. the cross-products of [Z X y], accumulated piece by piece by
   :class:`hierbayes.linalg.Accumulator`, with the few sums the checks and
   lme4's starting values need.

No piece is kept after it was added: memory holds one record batch, the
cross-products and per-level sums.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hierbayes._warnings import warn
from hierbayes.design import build_design
from hierbayes.design.batches import (
    BatchEncoder,
    FormulaColumns,
    StreamedDesign,
    StreamedRows,
    TransformStats,
    collect_transform_stats,
    formula_columns,
    full_names,
    rowless,
    stateful_keys,
    with_transform_states,
)
from hierbayes.design.checks import check_scaling_stats, check_slopes_vary_stats, drop_aliased_gram
from hierbayes.design.frame import NA_ACTIONS, unusable
from hierbayes.errors import DataError, DesignWarning, DroppedRowsWarning, RankDeficiencyWarning, ScalingWarning
from hierbayes.linalg import Accumulator, CrossProducts, Piece, Structure
from hierbayes.linalg.crossprod import shifted, with_columns
from hierbayes.sources.readers import Source

#: Rows of the first piece that go into the prototype besides the rows that show new levels.
PROTOTYPE_HEAD = 1000
#: A numeric column with more distinct values than this is continuous: its values are no longer tracked as levels.
MAX_TRACKED = 10_000


@dataclass
class Scan:
    """The first pass: rows read and kept, drops per column, and the prototype rows."""

    n_input: int = 0
    n_kept: int = 0
    dropped_by_column: dict = field(default_factory=dict)
    prototype: pd.DataFrame | None = None


def complete_pieces(source: Source, used: Sequence[Hashable]) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
    """Each piece of the source (used columns) with its mask of unusable values per column (n x columns)."""
    for df in source.batches(list(used)):
        df = df.loc[:, list(used)]
        bad = np.column_stack([unusable(df[c]) for c in used]) if used else np.zeros((len(df), 0), bool)
        yield df, bad


def scan(source: Source, cols: FormulaColumns) -> Scan:
    """Pass 1: count rows and drops, and collect the prototype (the rows that first show each level)."""
    used = list(cols.used)
    out = Scan()
    dropped = np.zeros(len(used), dtype=np.int64)
    seen: dict[tuple, set | None] = {key: set() for key in cols.level_keys}
    categories: dict[Hashable, dict] = {}
    ordered: dict[Hashable, bool] = {}
    pieces = []
    for df, bad in complete_pieces(source, used):
        drop = bad.any(axis=1)
        dropped += bad.sum(axis=0)
        kept = df.loc[~drop]
        for c in used:
            if isinstance(df[c].dtype, pd.CategoricalDtype):
                categories.setdefault(c, {}).update(dict.fromkeys(df[c].cat.categories))
                ordered[c] = bool(df[c].dtype.ordered)
        select = np.zeros(len(kept), dtype=bool)
        if out.n_input == 0:
            select[:PROTOTYPE_HEAD] = True
        for key, known in seen.items():
            if known is None or not len(kept):
                continue
            sub = kept[list(key)]
            first = np.flatnonzero(~sub.duplicated().to_numpy())
            values = list(sub.iloc[first].itertuples(index=False, name=None))
            new = [i for i, v in zip(first, values, strict=True) if v not in known]
            known.update(values)
            select[new] = True
            if len(key) == 1 and len(known) > MAX_TRACKED and pd.api.types.is_float_dtype(kept[key[0]].dtype):
                seen[key] = None  # a continuous column: its values are not levels
        out.n_input += len(df)
        out.n_kept += int((~drop).sum())
        pieces.append(kept.iloc[np.flatnonzero(select)])
    out.dropped_by_column = {c: int(k) for c, k in zip(used, dropped, strict=True) if k}
    if out.n_input == 0:
        raise DataError(f"the {source.description} has no rows")
    proto = pd.concat(pieces) if pieces else pd.DataFrame(columns=used)
    for c, cats in categories.items():
        labels = proto[c].astype(object)
        proto[c] = pd.Categorical(labels, categories=list(cats), ordered=ordered[c])
    out.prototype = proto.reset_index(drop=True)
    return out


def _dropped(scan_: Scan, na_action: str, description: str) -> None:
    """The warning (or error) of ``build_frame`` for the rows the scan dropped."""
    if not isinstance(na_action, str) or na_action not in NA_ACTIONS:
        raise DataError(f"na_action must be 'omit' or 'raise', not {na_action!r} (R's 'na.omit', 'na.exclude' and "
                        "'na.fail' are accepted too)")  # fmt: skip
    n, by_col = scan_.n_input, scan_.dropped_by_column
    if scan_.n_kept == 0:
        raise DataError(f"no rows left to fit: all {n} rows of the {description} have missing, infinite or empty "
                        f"values (per column: {', '.join(f'{c} {k}' for c, k in by_col.items())})")  # fmt: skip
    if scan_.n_kept < n:
        detail = ", ".join(f"{c} ({k})" for c, k in by_col.items())
        msg = f"{n - scan_.n_kept} of {n} rows have missing, infinite or empty values in {detail}"
        if NA_ACTIONS[na_action] == "raise":
            raise DataError(msg + f" (na_action={na_action!r})")
        warn(msg + "; they were dropped (see fit.n_dropped).", DroppedRowsWarning)


#: Warnings of the prototype's design that the whole data decide instead (given again after the last pass).
_WHOLE_DATA = (RankDeficiencyWarning, ScalingWarning)


def _prototype_design(cols: FormulaColumns, proto: pd.DataFrame):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        design = build_design(cols.parsed, proto, na_action="raise")
    for w in caught:
        whole = issubclass(w.category, _WHOLE_DATA) or (
            issubclass(w.category, DesignWarning) and "does not vary within" in str(w.message)
        )
        if not whole:
            warn(str(w.message), w.category)
    return design


class _Moments:
    """Column-wise count, mean and sum of squared deviations, merged over pieces (Chan et al.)."""

    def __init__(self, k: int):
        self.n, self.mean, self.m2 = 0, np.zeros(k), np.zeros(k)

    def add(self, v: np.ndarray) -> None:
        nb = v.shape[0]
        if not nb:
            return
        mb = v.mean(axis=0)
        m2b = ((v - mb) ** 2).sum(axis=0)
        n = self.n + nb
        delta = mb - self.mean
        self.mean = self.mean + delta * nb / n
        self.m2 = self.m2 + m2b + delta * delta * self.n * nb / n
        self.n = n

    @property
    def var(self) -> np.ndarray:
        return self.m2 / max(self.n - 1, 1)


def _states(stats: dict) -> dict:
    return {k: st.state() for k, st in stats.items()}


def streamed_design(formula, source: Source, na_action: str = "omit",
                    progress: Callable[[str, int], None] | None = None) -> StreamedDesign:  # fmt: skip
    """The design of ``formula`` on a source read in pieces (see the module docstring).

    Raises
    ------
    DataError
        Missing columns (in some files), type changes, no complete rows, and
        everything ``build_design`` raises for a frame.
    """
    cols = formula_columns(formula, source.columns)
    used = list(cols.used)
    source.check(used)
    s = scan(source, cols)
    _dropped(s, na_action, source.description)
    design = _prototype_design(cols, s.prototype)
    keys = stateful_keys(design)
    states: dict = {}
    if keys:
        stats = {k: TransformStats(k) for k in keys}
        for df, bad in complete_pieces(source, used):
            collect_transform_stats(design, keys, df.loc[~bad.any(axis=1)], stats)
        states = _states(stats)
        design = with_transform_states(design, states)
    return _accumulate(design, cols, source, s, states)


def _accumulate(design, cols: FormulaColumns, source: Source, s: Scan, states: dict) -> StreamedDesign:
    """Pass 3: the cross-products of [Z X y] and the sums the checks and the starting values need."""
    used = list(cols.used)
    enc = BatchEncoder(design, cols.response_code)
    acc = None
    shift = None
    ym = _Moments(1)
    xm = None
    binary = None
    y_maxabs, y_ss = 0.0, 0.0
    counts = [np.zeros(b.nlevels) for b in design.blocks]
    ysum = [np.zeros(b.nlevels) for b in design.blocks]
    zsum = [np.zeros((b.nlevels, b.k)) for b in design.blocks]
    zsq = [np.zeros((b.nlevels, b.k)) for b in design.blocks]
    ones = [np.ones(b.k, dtype=bool) for b in design.blocks]
    row = 0
    for df, bad in complete_pieces(source, used):
        drop = bad.any(axis=1)
        kept = df.loc[~drop]
        first_row = row
        row += len(df)
        if not len(kept):
            continue
        e = enc.encode(kept, first_row)
        if acc is None:
            P = e.X.shape[1]
            acc = Accumulator(Structure.of(design.blocks, P))
            shift = np.linalg.lstsq(e.X, e.y, rcond=None)[0] if P else np.zeros(0)
            xm, binary = _Moments(P), np.ones(P, dtype=bool)
        acc.add(Piece(e.codes, e.Z, e.X, e.y - e.X @ shift))
        ym.add(e.y[:, None])
        y_maxabs = max(y_maxabs, float(np.max(np.abs(e.y))))
        y_ss += float(e.y @ e.y)
        xm.add(e.X)
        binary &= np.all((e.X == 0.0) | (e.X == 1.0), axis=0)
        for i, b in enumerate(design.blocks):
            c, Z = e.codes[i], e.Z[i]
            counts[i] += np.bincount(c, minlength=b.nlevels)
            ysum[i] += np.bincount(c, weights=e.y, minlength=b.nlevels)
            for j in range(b.k):
                zsum[i][:, j] += np.bincount(c, weights=Z[:, j], minlength=b.nlevels)
                zsq[i][:, j] += np.bincount(c, weights=Z[:, j] ** 2, minlength=b.nlevels)
            ones[i] &= np.all(Z == 1.0, axis=0)
    full = acc.finish()
    qr = full.structure.qr
    Pfull = full.structure.p
    G = full.Arr[qr : qr + Pfull, qr : qr + Pfull]
    keep = drop_aliased_gram(G)
    names_full = full_names(design)
    aliased = tuple(n for j, n in enumerate(names_full) if j not in keep)
    if aliased:
        warn(
            f"fixed-effect model matrix is rank deficient so dropping {len(aliased)} "
            f"column{'s' if len(aliased) > 1 else ''} / coefficient{'s' if len(aliased) > 1 else ''}: "
            f"{', '.join(aliased)}",
            RankDeficiencyWarning,
        )
    cp, beta0 = _reduce(full, keep, shift)
    x_names = [names_full[j] for j in keep]
    check_scaling_stats(xm.mean[keep], np.sqrt(xm.var[keep]), binary[keep], xm.n, x_names)
    for i, b in enumerate(design.blocks):
        check_slopes_vary_stats(b, ones[i], zsum[i], zsq[i], counts[i])
    rows = StreamedRows(
        n=int(ym.n), n_input=s.n_input, crossproducts=cp, beta0=beta0, y_mean=float(ym.mean[0]),
        y_var=float(ym.var[0]), y_maxabs=y_maxabs, y_ss=y_ss, level_counts=tuple(counts), level_ysum=tuple(ysum),
        source=source.description, states=states, prototype=s.prototype,
    )  # fmt: skip
    return rowless(design, rows, keep, aliased, s.dropped_by_column)


def _reduce(full: CrossProducts, keep: list[int], shift: np.ndarray) -> tuple[CrossProducts, np.ndarray]:
    """The cross-products of [Z X_keep y - X_keep beta0] from those of [Z X_full y - X_full shift].

    ``beta0`` is the least-squares fit of y on the kept columns (the shift of
    the in-memory engine, :class:`hierbayes.reml.LmmObjective`): the shift of
    the first piece, carried over to the kept columns, plus the rest of the
    fit, applied to the cross-products exactly (the cross-products of a shift
    by a linear combination of X are linear in it).
    """
    st = full.structure
    qr, P = st.qr, st.p
    aliased = [j for j in range(P) if j not in keep]
    G = full.Arr[qr : qr + P, qr : qr + P]
    b = shift[keep].copy()
    if aliased and keep:
        C = np.linalg.solve(G[np.ix_(keep, keep)], G[np.ix_(keep, aliased)])
        b = b + C @ shift[aliased]
    cp = with_columns(full, keep)
    p = len(keep)
    ix, iy = slice(qr, qr + p), qr + p
    delta = np.linalg.solve(cp.Arr[ix, ix], cp.Arr[ix, iy]) if p else np.zeros(0)
    return shifted(cp, delta), b + delta


def streamed_record(design: StreamedDesign) -> dict:
    """What ``fit.save`` stores of a design read in pieces (arrays and scalars; the prototype goes as the data)."""
    r = design.streamed
    cp = r.crossproducts
    S = cp.S_sparse
    return {
        "n": r.n, "n_input": r.n_input, "beta0": r.beta0, "y_mean": r.y_mean, "y_var": r.y_var,
        "y_maxabs": r.y_maxabs, "y_ss": r.y_ss, "level_counts": list(r.level_counts),
        "level_ysum": list(r.level_ysum), "source": r.source, "states": r.states,
        "sizes": [list(x) for x in cp.structure.sizes], "p": cp.structure.p, "dense": cp.structure.dense_coupling,
        "A11": cp.A11, "D": cp.D, "Arr": cp.Arr, "S_data": S.data, "S_indices": S.indices.astype(np.int64),
        "S_indptr": S.indptr.astype(np.int64), "S_shape": list(S.shape), "keep": list(design.fixed_keep),
        "aliased": list(design.aliased), "dropped": dict(design.frame.dropped_by_column),
    }  # fmt: skip


def restore_design(formula: str, prototype: pd.DataFrame, record: dict) -> StreamedDesign:
    """The design :func:`streamed_record` stored, rebuilt from its prototype rows (no pass over the data)."""
    import scipy.sparse as sp

    cols = formula_columns(formula, list(prototype.columns))
    design = _prototype_design(cols, prototype)
    states = record["states"]
    if states:
        design = with_transform_states(design, states)
    structure = Structure(tuple(tuple(int(v) for v in x) for x in record["sizes"]), int(record["p"]),
                          bool(record["dense"]))  # fmt: skip
    S = sp.csr_matrix((record["S_data"], record["S_indices"], record["S_indptr"]), shape=tuple(record["S_shape"]))
    cp = CrossProducts(structure, record["A11"], record["D"], S.toarray() if structure.dense_coupling else S,
                       record["Arr"])  # fmt: skip
    rows = StreamedRows(
        n=record["n"], n_input=record["n_input"], crossproducts=cp, beta0=np.asarray(record["beta0"], float),
        y_mean=record["y_mean"], y_var=record["y_var"], y_maxabs=record["y_maxabs"], y_ss=record["y_ss"],
        level_counts=tuple(record["level_counts"]), level_ysum=tuple(record["level_ysum"]),
        source=record["source"], states=states, prototype=prototype,
    )  # fmt: skip
    return rowless(design, rows, list(record["keep"]), tuple(record["aliased"]), record["dropped"])
