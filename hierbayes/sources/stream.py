"""The passes over a source: levels and dropped rows first, transform statistics, then the cross-products.

:func:`streamed_design` turns a formula and a :class:`~hierbayes.sources.Source`
into a :class:`~hierbayes.design.batches.StreamedDesign`, reading only the
columns the formula uses:

1. the scan (:class:`Scan`): rows with a missing, infinite or empty value in
   a used column are dropped and counted per column (exactly as for a data
   frame), and the rows that first show each level make the prototype, on
   which ``build_design`` fixes the encoding (types, R's level order, names);
2. only when the formula has ``scale()`` or ``poly()``: their whole-column
   statistics (:class:`TransformPass`);
3. the cross-products of [Z X y] (:class:`CrossPass`), accumulated piece by
   piece by :class:`hierbayes.linalg.Accumulator`, with the few sums the
   checks and lme4's starting values need.

Each pass is a mergeable reduction: a part ``add``s pieces of rows and
``combine``s with the part of other pieces, in any tree. A Parquet source
adds its record batches one after the other; a Dask source reduces its
partitions where they live (:mod:`hierbayes.sources.frames`). No piece is
kept after it was added: memory holds one record batch, the cross-products
and per-level sums.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable

import numpy as np
import pandas as pd
import scipy.sparse as sp

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
from hierbayes.design.columns import safe_frame
from hierbayes.design.encode import evaluate_vector, replay_matrix
from hierbayes.design.frame import NA_ACTIONS, unusable
from hierbayes.errors import DataError, DesignWarning, DroppedRowsWarning, RankDeficiencyWarning, ScalingWarning
from hierbayes.linalg import Accumulator, CrossProducts, Piece, Structure
from hierbayes.linalg.crossprod import shifted, with_columns
from hierbayes.sources import fast
from hierbayes.sources.readers import Source

#: Rows of the first piece that go into the prototype besides the rows that show new levels.
PROTOTYPE_HEAD = 1000
#: A numeric column with more distinct values than this is continuous: its values are no longer tracked as levels.
MAX_TRACKED = 10_000


def _complete(df: pd.DataFrame, used: list) -> tuple[pd.DataFrame, np.ndarray]:
    """A piece's used columns and its mask of unusable values per column (rows x columns)."""
    df = df.loc[:, used]
    bad = np.column_stack([unusable(df[c]) for c in used]) if used else np.zeros((len(df), 0), bool)
    return df, bad


class Scan:
    """Pass 1, mergeable: rows read and kept, drops per column, and the prototype rows.

    A level's rows already seen (in this part or, on ``combine``, in the
    other's) are not taken again.
    """

    def __init__(self, cols: FormulaColumns):
        self.used = list(cols.used)
        self.n_input = 0
        self.n_kept = 0
        self.dropped = np.zeros(len(self.used), dtype=np.int64)
        self.seen: dict[tuple, set | None] = {key: set() for key in cols.level_keys}
        self.grouping = set(cols.level_keys[: cols.n_grouping])
        self.categories: dict[Hashable, dict] = {}
        self.ordered: dict[Hashable, bool] = {}
        self.pieces: list[pd.DataFrame] = []

    @property
    def dropped_by_column(self) -> dict:
        return {c: int(k) for c, k in zip(self.used, self.dropped, strict=True) if k}

    def _select(self, kept: pd.DataFrame, head: bool) -> None:
        """Keep the rows of ``kept`` that show a level (combination) not seen yet (and the first rows)."""
        select = np.zeros(len(kept), dtype=bool)
        if head:
            select[:PROTOTYPE_HEAD] = True
        self._select_keys(kept, list(self.seen), select)
        if select.any():
            self.pieces.append(kept.iloc[np.flatnonzero(select)])

    def _select_keys(self, kept: pd.DataFrame, keys: list[tuple], select: np.ndarray) -> None:
        """Mark in ``select`` the rows of ``kept`` that show a value of one of ``keys`` not seen yet."""
        for key in keys:
            known = self.seen[key]
            if known is None or not len(kept):
                continue
            sub = kept[list(key)]
            first = np.flatnonzero(~sub.duplicated().to_numpy())
            if len(key) == 1 and key not in self.grouping and len(first) + len(known) > MAX_TRACKED:
                if pd.api.types.is_float_dtype(kept[key[0]].dtype):
                    self.seen[key] = None  # a continuous column: its values are not levels
                    continue
            values = list(sub.iloc[first].itertuples(index=False, name=None))
            new = [i for i, v in zip(first, values, strict=True) if v not in known]
            known.update(values)
            select[new] = True

    def add(self, df: pd.DataFrame) -> Scan:
        df, bad = _complete(df, self.used)
        drop = bad.any(axis=1)
        self.dropped += bad.sum(axis=0)
        for c in self.used:
            if isinstance(df[c].dtype, pd.CategoricalDtype):
                self.categories.setdefault(c, {}).update(dict.fromkeys(df[c].cat.categories))
                self.ordered[c] = bool(df[c].dtype.ordered)
        self._select(df.loc[~drop], head=self.n_input == 0)
        self.n_input += len(df)
        self.n_kept += int((~drop).sum())
        return self

    def combine(self, other: Scan) -> Scan:
        head = self.n_input == 0
        self.n_input += other.n_input
        self.n_kept += other.n_kept
        self.dropped = self.dropped + other.dropped
        for c, cats in other.categories.items():
            self.categories.setdefault(c, {}).update(cats)
            self.ordered[c] = other.ordered[c]
        for piece in other.pieces:
            self._select(piece, head=head)
            head = False
        return self

    def prototype(self) -> pd.DataFrame:
        """The rows that first show each level, categoricals with the union of the pieces' categories."""
        proto = pd.concat(self.pieces) if self.pieces else pd.DataFrame(columns=self.used)
        for c, cats in self.categories.items():
            proto[c] = pd.Categorical(proto[c].astype(object), categories=list(cats), ordered=self.ordered[c])
        return proto.reset_index(drop=True)


class TransformPass:
    """Pass 2, mergeable: the whole-column statistics of the stateful transforms (``scale``, ``poly``)."""

    def __init__(self, design, keys: list[str], used: list, centers: dict[str, float | None]):
        self.design, self.keys, self.used = design, keys, used
        self.stats = {k: TransformStats(k, centers.get(k)) for k in keys}

    def add(self, df: pd.DataFrame) -> TransformPass:
        df, bad = _complete(df, self.used)
        collect_transform_stats(self.design, self.keys, df.loc[~bad.any(axis=1)], self.stats)
        return self

    def combine(self, other: TransformPass) -> TransformPass:
        for k in self.keys:
            self.stats[k].combine(other.stats[k])
        return self

    def states(self) -> dict:
        return {k: st.state() for k, st in self.stats.items()}


class _Moments:
    """Column-wise count, mean and sum of squared deviations, mergeable (Chan et al.)."""

    def __init__(self, k: int):
        self.n, self.mean, self.m2 = 0, np.zeros(k), np.zeros(k)

    def add(self, v: np.ndarray) -> None:
        other = _Moments(v.shape[1])
        if v.shape[0]:
            other.n, other.mean = v.shape[0], v.mean(axis=0)
            other.m2 = ((v - other.mean) ** 2).sum(axis=0)
        self.combine(other)

    def combine(self, other: _Moments) -> None:
        if not other.n:
            return
        n = self.n + other.n
        delta = other.mean - self.mean
        self.mean = self.mean + delta * other.n / n
        self.m2 = self.m2 + other.m2 + delta * delta * self.n * other.n / n
        self.n = n

    @property
    def var(self) -> np.ndarray:
        return self.m2 / max(self.n - 1, 1)


class CrossPass:
    """Pass 3, mergeable: the cross-products of [Z X (y - X shift)] and the sums the checks need.

    ``shift`` (the prototype's least-squares fit) keeps y'y on the scale of
    the residuals; it is the same for every part, so parts add up.
    """

    def __init__(self, design, response_code: str, used: list, shift: np.ndarray):
        self._start(design, used, shift)
        self.encoder = BatchEncoder(design, response_code)

    def _start(self, design, used: list, shift: np.ndarray) -> None:
        self.design, self.used, self.shift = design, used, shift
        P = len(shift)
        self.acc = Accumulator(Structure.of(design.blocks, P))
        self._pending: list[tuple[Accumulator, int]] = []  # (sums of 2^j pieces, 2^j), merged like a binary counter
        self.rows = 0
        self.ym, self.xm = _Moments(1), _Moments(P)
        self.binary = np.ones(P, dtype=bool)
        self.y_maxabs, self.y_ss = 0.0, 0.0
        bl = design.blocks
        self.counts = [np.zeros(b.nlevels) for b in bl]
        self.ysum = [np.zeros(b.nlevels) for b in bl]
        self.zsum = [np.zeros((b.nlevels, b.k)) for b in bl]
        self.zsq = [np.zeros((b.nlevels, b.k)) for b in bl]
        self.ones = [np.ones(b.k, dtype=bool) for b in bl]

    def add(self, df: pd.DataFrame) -> CrossPass:
        df, bad = _complete(df, self.used)
        kept = df.loc[~bad.any(axis=1)]
        first_row, self.rows = self.rows, self.rows + len(df)
        if not len(kept):
            return self
        e = self.encoder.encode(kept, first_row)
        self._add(e.y, e.X, e.codes, e.Z)
        return self

    def _add(self, y: np.ndarray, X: np.ndarray, codes, Zs) -> None:
        """Add encoded complete rows: their cross-products (linalg's Accumulator) and the sums the checks need."""
        # pieces are summed in a balanced tree, not one by one into the total: a sparse coupling's sum is
        # rewritten whole by each addition, so adding pieces one by one costs (pieces x entries)
        new = Accumulator(self.acc.structure).add(Piece(tuple(codes), tuple(Zs), X, y - X @ self.shift))
        self._pending.append((new, 1))
        while len(self._pending) > 1 and self._pending[-1][1] == self._pending[-2][1]:
            (b, nb), (a, na) = self._pending.pop(), self._pending.pop()
            self._pending.append((a.combine(b), na + nb))
        self.ym.add(y[:, None])
        self.y_maxabs = max(self.y_maxabs, float(np.max(np.abs(y))))
        self.y_ss += float(y @ y)
        self.xm.add(X)
        self.binary &= np.all((X == 0.0) | (X == 1.0), axis=0)
        for i, b in enumerate(self.design.blocks):
            c, Z = codes[i], Zs[i]
            self.counts[i] += np.bincount(c, minlength=b.nlevels)
            self.ysum[i] += np.bincount(c, weights=y, minlength=b.nlevels)
            for j in range(b.k):
                self.zsum[i][:, j] += np.bincount(c, weights=Z[:, j], minlength=b.nlevels)
                self.zsq[i][:, j] += np.bincount(c, weights=Z[:, j] ** 2, minlength=b.nlevels)
            self.ones[i] &= np.all(Z == 1.0, axis=0)

    def _collapse(self) -> Accumulator:
        """The accumulator of every piece added (the pending partial sums merged into it)."""
        while self._pending:
            self.acc = self.acc.combine(self._pending.pop()[0])
        return self.acc

    def combine(self, other: CrossPass) -> CrossPass:
        self.acc = self._collapse().combine(other._collapse())
        self.rows += other.rows
        self.ym.combine(other.ym)
        self.xm.combine(other.xm)
        self.binary &= other.binary
        self.y_maxabs = max(self.y_maxabs, other.y_maxabs)
        self.y_ss += other.y_ss
        for i in range(len(self.counts)):
            self.counts[i] += other.counts[i]
            self.ysum[i] += other.ysum[i]
            self.zsum[i] += other.zsum[i]
            self.zsq[i] += other.zsq[i]
            self.ones[i] &= other.ones[i]
        return self

    def crossproducts(self) -> CrossProducts:
        return self._collapse().finish()


class ArrowCrossPass(CrossPass):
    """Pass 3 over Arrow record batches: a :class:`~hierbayes.sources.fast.Plan` encodes them (no formulaic).

    A sequential part: a Parquet source adds its batches in order, in one process.
    """

    def __init__(self, design, plan: fast.Plan, used: list):
        self._start(design, used, plan.shift)
        self.plan = plan

    def add_batch(self, rb) -> None:
        keep = fast.kept_rows(rb, self.used)
        self.rows += rb.num_rows
        y, X, codes, Zs = self.plan.encode(rb, keep)
        if not len(y):
            return
        for j, c in enumerate(codes):
            if (c < 0).any():
                i = int(np.flatnonzero(c < 0)[0])
                value = rb.column(self.plan.groups[j])[int(i if keep is None else keep[i])]
                raise DataError(f"level '{value}' of {self.design.blocks[j].group} was not seen in the first pass "
                                "over the data: the source changed between passes")  # fmt: skip
        if not (np.isfinite(X).all() and np.isfinite(y).all() and all(np.isfinite(Z).all() for Z in Zs)):
            raise DataError("a product of the formula's columns overflows to infinity in some rows; rescale them")
        self._add(y, X, codes, Zs)


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


def _shift(design, cols: FormulaColumns, proto: pd.DataFrame) -> np.ndarray:
    """The least-squares fit of y on the full X of the prototype rows: every part's shift of the response."""
    safe = safe_frame(proto, design.columns)
    X = replay_matrix(design.fixed_spec, safe, "fixed effects", design.naming)
    y = evaluate_vector(cols.response_code, safe, "response", design.naming)
    ok = np.isfinite(y) & np.isfinite(X).all(axis=1)
    return np.linalg.lstsq(X[ok], y[ok], rcond=None)[0] if X.shape[1] else np.zeros(0)


def streamed_design(formula, source: Source, na_action: str = "omit") -> StreamedDesign:
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
    types = fast.column_types(source, used) if fast.eligible(source, used) else None
    if types is not None:
        s = Scan(cols)
        scan = fast.FastScan(s, types, PROTOTYPE_HEAD, MAX_TRACKED)
        for rb in fast.prefetched(source.record_batches(used)):
            scan.add_batch(rb)
    else:
        s = source.reduce(used, lambda: Scan(cols))
    if s.n_input == 0:
        raise DataError(f"the {source.description} has no rows")
    _dropped(s, na_action, source.description)
    proto = s.prototype()
    design = _prototype_design(cols, proto)
    keys = stateful_keys(design)
    states: dict = {}
    if keys:
        # poly()'s power sums are taken about one center for every part: the prototype's mean of its input
        local = TransformPass(design, keys, used, {}).add(proto)
        centers = {k: st.mean for k, st in local.stats.items()}
        states = source.reduce(used, lambda: TransformPass(design, keys, used, centers)).states()
        design = with_transform_states(design, states)
    shift = _shift(design, cols, proto)
    plan = fast.Plan.of(design, cols.response_code, types, proto, shift) if types is not None and not keys else None
    if plan is not None:
        part = ArrowCrossPass(design, plan, used)
        for rb in fast.prefetched(source.record_batches(used)):
            part.add_batch(rb)
    else:
        part = source.reduce(used, lambda: CrossPass(design, cols.response_code, used, shift))
    return _finish(design, part, source, s, states, proto)


def _finish(
    design, part: CrossPass | fast.FastCross, source: Source, s: Scan, states: dict, proto: pd.DataFrame
) -> StreamedDesign:
    """The row-less design from the last pass: aliased columns dropped (from X'X), the checks on the sums."""
    full = part.crossproducts()
    qr, P = full.structure.qr, full.structure.p
    keep = drop_aliased_gram(full.Arr[qr : qr + P, qr : qr + P])
    names_full = full_names(design)
    aliased = tuple(n for j, n in enumerate(names_full) if j not in keep)
    if aliased:
        warn(
            f"fixed-effect model matrix is rank deficient so dropping {len(aliased)} "
            f"column{'s' if len(aliased) > 1 else ''} / coefficient{'s' if len(aliased) > 1 else ''}: "
            f"{', '.join(aliased)}",
            RankDeficiencyWarning,
        )
    cp, beta0 = _reduce(full, keep, part.shift)
    x_names = [names_full[j] for j in keep]
    check_scaling_stats(part.xm.mean[keep], np.sqrt(part.xm.var[keep]), part.binary[keep], part.xm.n, x_names)
    for i, b in enumerate(design.blocks):
        check_slopes_vary_stats(b, part.ones[i], part.zsum[i], part.zsq[i], part.counts[i])
    rows = StreamedRows(
        n=int(part.ym.n), n_input=s.n_input, crossproducts=cp, beta0=beta0, y_mean=float(part.ym.mean[0]),
        y_var=float(part.ym.var[0]), y_maxabs=part.y_maxabs, y_ss=part.y_ss, level_counts=tuple(part.counts),
        level_ysum=tuple(part.ysum), source=source.description, x_mean=part.xm.mean[keep],
        x_sd=np.sqrt(part.xm.var[keep]), z_sd=tuple(_column_sd(zs, zq, part.ym.n) for zs, zq in zip(part.zsum, part.zsq,
                                                                                                    strict=True)),
        states=states, prototype=proto,
    )  # fmt: skip
    return rowless(design, rows, keep, aliased, s.dropped_by_column)


def _column_sd(zsum: np.ndarray, zsq: np.ndarray, n: int) -> np.ndarray:
    """SD (n - 1) of each Z column from its per-level sums and sums of squares."""
    s, q = zsum.sum(axis=0), zsq.sum(axis=0)
    return np.sqrt(np.maximum(q - s * s / n, 0.0) / max(n - 1, 1))


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
        "aliased": list(design.aliased), "dropped": dict(design.frame.dropped_by_column), "x_mean": r.x_mean,
        "x_sd": r.x_sd, "z_sd": list(r.z_sd),
    }  # fmt: skip


def restore_design(formula: str, prototype: pd.DataFrame, record: dict) -> StreamedDesign:
    """The design :func:`streamed_record` stored, rebuilt from its prototype rows (no pass over the data)."""
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
        source=record["source"], x_mean=record.get("x_mean"), x_sd=record.get("x_sd"),
        z_sd=tuple(record.get("z_sd", ())), states=states, prototype=prototype,
    )  # fmt: skip
    return rowless(design, rows, list(record["keep"]), tuple(record["aliased"]), record["dropped"])
