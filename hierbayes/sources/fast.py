"""The passes over Parquet record batches without pandas or formulaic per batch, for formulas of plain columns.

A Parquet source (:class:`~hierbayes.sources.readers.ParquetSource`) whose
used columns are numbers or text is scanned and accumulated from the Arrow
record batches directly:

* :class:`FastScan` (pass 1): unusable values from Arrow's null counts and
  ``isfinite``; the rows that first show each value of an integer column
  are found by a table of the values seen (a lookup per row; a hash only for
  the rows of new values); other columns go through
  :class:`~hierbayes.sources.stream.Scan`'s own selection. The prototype
  rows are exactly those of the general scan.
* :class:`Plan`: when the response, every fixed-effect column and every
  random-effects column is ``1``, a numeric column or a product of numeric
  columns, and each grouping factor is one integer or text column, the
  columns are built from the batch's arrays, and the level codes looked up
  in a table (integers) or by Arrow's hash lookup (text). The plan is
  checked on the prototype rows against ``build_design``'s own encoding:
  on any difference the general path (:class:`~hierbayes.sources.stream.CrossPass`) is used.
* :class:`~hierbayes.sources.stream.ArrowCrossPass` (pass 3) adds the
  encoded batches to the cross-products with linalg's
  :class:`~hierbayes.linalg.Accumulator`, as the general pass does.

Reading overlaps the work: the next record batch is decoded by pyarrow in a
second thread (:func:`prefetched`) while the current one is encoded and added.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Hashable, Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from hierbayes.design.batches import full_names
from hierbayes.design.columns import safe_frame
from hierbayes.design.encode import replay_matrix
from hierbayes.sources.readers import ParquetSource

#: An integer column's values are tracked in a table of their range when it spans at most this many values.
RANGE_MAX = 50_000_000


def _plain_type(t: pa.DataType) -> str | None:
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "text"
    return None


def eligible(source: object, used: Sequence[Hashable]) -> bool:
    """Whether the fast passes read ``source``: a Parquet source whose used columns are numbers or text."""
    if not isinstance(source, ParquetSource) or not used:
        return False
    for s in source.schemas:
        for c in used:
            if not isinstance(c, str) or c not in s.names:
                return False
            t = s.field(c).type
            if _plain_type(t) is None and not pa.types.is_null(t):
                return False
    return True


def prefetched(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The batches, the next one read in a second thread while the caller works on the current one."""
    q: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    done = object()

    def read() -> None:
        try:
            for rb in batches:
                while not stop.is_set():
                    try:
                        q.put(rb, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as exc:  # handed to the caller's thread, raised there
            q.put(exc)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        t.join()


def _unusable(arr: pa.Array) -> np.ndarray | None:
    """Missing, infinite or blank values of an Arrow column, as ``design.frame.unusable`` marks them (None: none)."""
    kind = _plain_type(arr.type)
    mask = None
    if arr.null_count:
        mask = arr.is_null().to_numpy(zero_copy_only=False)
    if kind == "float":
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(arr.to_numpy(zero_copy_only=False))
        if bad.any():
            mask = bad if mask is None else mask | bad
    elif kind == "text":
        blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(arr), ""), False).to_numpy(zero_copy_only=False)
        if blank.any():
            mask = blank if mask is None else mask | blank
    elif kind is None:  # an all-null column (type null)
        mask = np.ones(len(arr), dtype=bool)
    return mask


def _complete(rb: pa.RecordBatch, used: list) -> tuple[np.ndarray, np.ndarray | None]:
    """Unusable values per used column (counts) and the kept rows' positions (None: all rows)."""
    n = rb.num_rows
    counts = np.zeros(len(used), dtype=np.int64)
    drop = None
    for j, c in enumerate(used):
        m = _unusable(rb.column(c))
        if m is not None:
            counts[j] = int(m.sum())
            drop = m if drop is None else drop | m
    if drop is None or not drop.any():
        return counts, None
    return counts, np.flatnonzero(~drop) if n else np.zeros(0, dtype=np.int64)


def _numbers(arr: pa.Array, keep: np.ndarray | None) -> np.ndarray:
    """A numeric Arrow column's kept values as float64."""
    if keep is not None:
        arr = arr.take(pa.array(keep))
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=float)


def _ints(arr: pa.Array, keep: np.ndarray | None) -> np.ndarray:
    if keep is not None:
        arr = arr.take(pa.array(keep))
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.int64)


# --- pass 1 ---------------------------------------------------------------------------------------------------


class FastScan:
    """Pass 1 over Arrow record batches, with the attributes of :class:`~hierbayes.sources.stream.Scan`.

    A sequential part: a Parquet source adds its batches in order, in one process.
    """

    def __init__(self, scan, types: dict[Hashable, str], head: int, max_tracked: int):
        self.scan = scan  # the general Scan: its counters, pieces and the selection of other keys
        self.types = types
        self.head, self.max_tracked = head, max_tracked
        self.ranges: dict[tuple, tuple[int, np.ndarray]] = {}  # int key -> (lowest value, seen table)

    def add_batch(self, rb: pa.RecordBatch) -> None:
        s = self.scan
        counts, keep = _complete(rb, s.used)
        s.dropped += counts
        n_kept = rb.num_rows if keep is None else len(keep)
        select = np.zeros(n_kept, dtype=bool)
        if s.n_input == 0:
            select[: self.head] = True
        generic = []
        for key, known in s.seen.items():
            if known is None:
                continue
            if len(key) == 1 and self.types.get(key[0]) == "int" and not known and self._track(key, rb, keep, select):
                continue
            if len(key) == 1 and self.types.get(key[0]) == "float" and key not in s.grouping:
                # a continuous column shows more distinct values in its first rows than are tracked: not levels
                col, cut = rb.column(key[0]), 4 * self.max_tracked
                head = col.slice(0, cut) if keep is None else col.take(pa.array(keep[keep < cut]))
                if len(np.unique(_numbers(head, None))) + len(known) > self.max_tracked:
                    s.seen[key] = None
                    continue
            generic.append(key)
        if generic and n_kept:
            cols = list(dict.fromkeys(c for key in generic for c in key))
            sub = rb.select(cols)
            if keep is not None:
                sub = sub.take(pa.array(keep))
            df = _pandas(sub, rb)
            s._select_keys(df, generic, select)
        if select.any():
            idx = np.flatnonzero(select) if keep is None else keep[select]
            s.pieces.append(_pandas(rb.select(s.used).take(pa.array(idx)), rb)[s.used])
        s.n_input += rb.num_rows
        s.n_kept += n_kept

    def _track(self, key: tuple, rb: pa.RecordBatch, keep: np.ndarray | None, select: np.ndarray) -> bool:
        """First rows of the new values of an integer column, by a table of the values seen (False: range too wide)."""
        v = _ints(rb.column(key[0]), keep)
        if not len(v):
            return True
        lo, hi = int(v.min()), int(v.max())
        old = self.ranges.get(key)
        if old is not None:
            olo, seen = old
            nlo, nhi = min(lo, olo), max(hi, olo + len(seen) - 1)
        else:
            nlo, nhi, seen = lo, hi, None
        if nhi - nlo + 1 > RANGE_MAX:
            if old is not None:  # hand the values seen so far to the general selection
                self.scan.seen[key] = {(int(x),) for x in np.flatnonzero(seen) + old[0]}
                del self.ranges[key]
            return False
        if old is None or nlo < old[0] or nhi > old[0] + len(seen) - 1:
            table = np.zeros(nhi - nlo + 1, dtype=np.bool_)
            if old is not None:
                table[old[0] - nlo : old[0] - nlo + len(seen)] = seen
            self.ranges[key] = (nlo, table)
        lo_, table = self.ranges[key]
        rows = np.flatnonzero(~table[v - lo_])  # rows whose value was not seen before this batch
        if len(rows):
            first = rows[~pd.Series(v[rows]).duplicated().to_numpy()]
            select[first] = True
            table[v[first] - lo_] = True
        return True


def _pandas(sub: pa.RecordBatch, whole: pa.RecordBatch) -> pd.DataFrame:
    """Some rows of a batch as ``whole.to_pandas()`` gives them (an integer column with nulls in it as float64)."""
    df = sub.to_pandas()
    for c in sub.schema.names:
        if pa.types.is_integer(whole.schema.field(c).type) and whole.column(c).null_count:
            df[c] = df[c].astype(np.float64)
    return df


# --- the encoding of a batch ------------------------------------------------------------------------------------


class _Lookup:
    """Level codes of a grouping column's values: a table over an integer range, an index, or Arrow's hash lookup."""

    def __init__(self, levels: Sequence[str], kind: str):
        self.kind = kind
        self.lut = self.index = self.value_set = None
        if kind == "int":
            ints = np.array([int(v) for v in levels], dtype=np.int64)
            if [str(v) for v in ints] != list(levels):
                raise ValueError("levels are not the integers' labels")
            self.lo = int(ints.min()) if len(ints) else 0
            span = int(ints.max()) - self.lo + 1 if len(ints) else 0
            if span <= max(RANGE_MAX, 1):
                self.lut = np.full(span, -1, dtype=np.int64)
                self.lut[ints - self.lo] = np.arange(len(ints))
            else:
                self.index = pd.Index(ints)
        else:
            self.value_set = pa.array(list(levels), type=pa.string())

    def codes(self, arr: pa.Array, keep: np.ndarray | None) -> np.ndarray:
        if self.kind == "int":
            v = _ints(arr, keep)
            if self.index is not None:
                return self.index.get_indexer(v).astype(np.int64)
            i = v - self.lo
            out = self.lut[np.clip(i, 0, max(len(self.lut) - 1, 0))] if len(self.lut) else np.full(len(v), -1)
            out[(i < 0) | (i >= len(self.lut))] = -1
            return out
        if keep is not None:
            arr = arr.take(pa.array(keep))
        if not pa.types.is_string(arr.type):
            arr = arr.cast(pa.string())
        return (
            pc.fill_null(pc.index_in(arr, value_set=self.value_set), -1).to_numpy(zero_copy_only=False).astype(np.int64)
        )


def _recipe(name: str, numeric: dict[str, bool], dummies: dict[str, tuple[str, str]]) -> tuple | None:
    """A model column's name as a product of numeric columns and level indicators ``(column, level)`` of text
    columns (``()``: the intercept); None when it is not one. The plan checks the guess on the prototype."""
    if name == "(Intercept)":
        return ()
    parts = []
    for p in name.split(":"):
        if numeric.get(p, False):
            parts.append(p)
        elif p in dummies:
            parts.append(dummies[p])
        else:
            return None
    return tuple(parts)


def _product(vals: dict, recipe: tuple, n: int) -> np.ndarray:
    if not recipe:
        return np.ones(n)
    out = vals[recipe[0]]
    for c in recipe[1:]:
        out = out * vals[c]
    return out


class Plan:
    """How a batch's y, X, level codes and Z are read from its Arrow columns (see the module docstring)."""

    def __init__(self, y: str, xs: list, groups: list, lookups: list, zs: list, shift: np.ndarray):
        self.y, self.xs, self.groups, self.lookups, self.zs, self.shift = y, xs, groups, lookups, zs, shift
        inputs = dict.fromkeys([y, *(c for r in xs for c in r), *(c for z in zs for r in z for c in r)])
        self.numeric = [c for c in inputs if isinstance(c, str)]
        self.dummies = [c for c in inputs if isinstance(c, tuple)]

    @classmethod
    def of(cls, design, response_code: str, types: dict, proto: pd.DataFrame, shift: np.ndarray) -> Plan | None:
        """The plan of a prototype's design, checked on the prototype rows; None where it does not apply."""
        if design.offset_code or not design.blocks:
            return None
        by_safe = {c.safe: c for c in design.columns}
        numeric = {str(c.label): c.kind == "numeric" and types.get(c.label) in ("int", "float") for c in design.columns}
        ycol = by_safe.get(response_code)
        if ycol is None or not numeric.get(str(ycol.label)):
            return None
        dummies = {}  # R's name of a treatment-contrast column -> (text column, level)
        for c in design.columns:
            if types.get(c.label) == "text" and c.kind in ("character", "factor") and isinstance(c.label, str):
                for v in pd.unique(proto[c.label].dropna()):
                    dummies.setdefault(f"{c.label}{v}", (c.label, str(v)))
        xs = [_recipe(n, numeric, dummies) for n in full_names(design)]
        groups, lookups, zs = [], [], []
        for b in design.blocks:
            g = by_safe.get(b.group_code[0]) if len(b.group_code) == 1 else None
            kind = types.get(g.label) if g is not None else None
            if kind not in ("int", "text") or (kind == "int" and g.kind != "numeric"):
                return None
            try:
                lookups.append(_Lookup(b.levels, kind))
            except ValueError:
                return None
            groups.append(g.label)
            zs.append([_recipe(t, numeric, dummies) for t in b.terms])
        if any(r is None for r in xs) or any(r is None for z in zs for r in z):
            return None
        plan = cls(ycol.label, xs, groups, lookups, zs, shift)
        return plan if plan._matches(design, proto) else None

    def _matches(self, design, proto: pd.DataFrame) -> bool:
        """Whether the plan encodes the prototype rows exactly as ``build_design`` did."""
        rb = pa.Table.from_pandas(proto, preserve_index=False).combine_chunks().to_batches()
        if len(rb) != 1:
            return False
        rb = rb[0]
        try:
            y, X, codes, Zs = self.encode(rb, None)
        except (pa.ArrowException, ValueError, TypeError):
            return False
        safe = safe_frame(proto, design.columns)
        X_ref = replay_matrix(design.fixed_spec, safe, "fixed effects", design.naming)
        if not (np.array_equal(X, X_ref) and np.array_equal(y, np.asarray(proto[self.y], dtype=float))):
            return False
        return all(np.array_equal(c, b.codes) and np.array_equal(Z, b.Z)
                   for c, Z, b in zip(codes, Zs, design.blocks, strict=True))  # fmt: skip

    def encode(self, rb: pa.RecordBatch, keep: np.ndarray | None):
        """y, X, and per block the level codes and Z of a batch's kept rows."""
        vals: dict = {c: _numbers(rb.column(c), keep) for c in self.numeric}
        for c, level in self.dummies:
            arr = rb.column(c) if keep is None else rb.column(c).take(pa.array(keep))
            vals[(c, level)] = pc.fill_null(pc.equal(arr, level), False).to_numpy(zero_copy_only=False).astype(float)
        n = len(vals[self.y])
        y = vals[self.y]
        X = np.empty((n, len(self.xs)))
        for j, r in enumerate(self.xs):
            X[:, j] = _product(vals, r, n)
        codes = [lk.codes(rb.column(g), keep) for g, lk in zip(self.groups, self.lookups, strict=True)]
        Zs = []
        for z in self.zs:
            Z = np.empty((n, len(z)))
            for j, r in enumerate(z):
                Z[:, j] = _product(vals, r, n)
            Zs.append(Z)
        return y, X, codes, Zs


def column_types(source: ParquetSource, used: Sequence[Hashable]) -> dict[Hashable, str]:
    """Each used column's type over all files: 'int' (integers in every file), 'float' (numbers), 'text'."""
    out = {}
    for c in used:
        kinds = {_plain_type(s.field(c).type) for s in source.schemas} - {None}
        out[c] = "int" if kinds == {"int"} else "float" if kinds <= {"int", "float"} and kinds else "text"
        if kinds - {"int", "float"} and kinds != {"text"}:
            out[c] = "mixed"
    return out


def kept_rows(rb: pa.RecordBatch, used: list) -> np.ndarray | None:
    """Positions of a batch's complete rows (None: all of them)."""
    return _complete(rb, used)[1]
