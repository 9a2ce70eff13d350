"""The design: everything an engine needs to fit, and to encode new data.

``build_design`` is the formula -> design stage: it parses the formula, binds
its names to the data's columns (:mod:`hierbayes.design.translate`), builds
the model frame (dropping and counting incomplete rows), evaluates the
response, the fixed-effects matrix X (dropping aliased columns the way lme4
does) and one random-effects block per grouping factor.
"""

from __future__ import annotations

import copy
import reprlib
from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from formulaic import ModelSpec

from hierbayes._warnings import warn
from hierbayes.design.checks import check_finite, check_scaling, check_slopes_vary, drop_aliased
from hierbayes.design.columns import Column, ColumnTable, safe_frame
from hierbayes.design.encode import (
    Naming,
    evaluate_binary,
    evaluate_categories,
    evaluate_matrix,
    evaluate_vector,
    replay_matrix,
)
from hierbayes.design.frame import ModelFrame, as_dataframe, build_frame
from hierbayes.design.random import ReBlock, build_blocks
from hierbayes.design.translate import Translator
from hierbayes.errors import DataError, FormulaError, RankDeficiencyWarning
from hierbayes.formula import ParsedFormula, parse_formula
from hierbayes.formula.rexpr import r_name

WEIGHTS_COLUMN = "(weights)"
#: Where an offset given as numbers (lme4's ``offset=`` argument) lives in the model frame, as in R's.
OFFSET_COLUMN = "(offset)"


@dataclass(frozen=True)
class Design:
    """Response, fixed-effects matrix and random-effects blocks of a mixed model.

    Attributes
    ----------
    formula
        The parsed formula.
    y
        Response, shape (n,). For ``cbind(s, f)`` the successes.
    X
        Fixed-effects model matrix, shape (n, p), aliased columns removed.
    x_names
        Names of X's columns, R-style (``"(Intercept)"``, ``"sectorCatholic"``).
    blocks
        One ``ReBlock`` per grouping factor, largest number of levels first.
    frame
        The model frame (used columns, complete rows) and what was dropped.
    offset
        Known offset added to the linear predictor, or None.
    trials
        Binomial trials (``s + f`` for ``cbind(s, f)``), or None.
    weights
        Prior weights, or None.
    aliased
        Fixed-effect columns dropped because they were linear combinations
        of earlier ones.
    fixed_spec
        formulaic's spec of the full X (before dropping aliased columns).
    fixed_keep
        Columns of the full X that were kept.
    columns
        The used columns: safe identifiers and types when fitting.
    naming
        R's names of the translated formula code.
    fixed_code
        The fixed part as formulaic formula text.
    offset_code
        Each offset's translated code and the state of its stateful transforms.
    fixed_labels
        Labels of the columns the fixed part and the offsets read.
    response_levels
        For a factor (or text) response of a binomial model, its levels:
        the first is failure (0), every other success (1), as in R's
        ``binomial()``; empty for a numeric response.
    """

    formula: ParsedFormula
    y: np.ndarray
    X: np.ndarray
    x_names: tuple[str, ...]
    blocks: tuple[ReBlock, ...]
    frame: ModelFrame = field(repr=False)
    offset: np.ndarray | None = None
    trials: np.ndarray | None = None
    weights: np.ndarray | None = None
    aliased: tuple[str, ...] = ()
    fixed_spec: ModelSpec | None = field(default=None, repr=False)
    fixed_keep: tuple[int, ...] = ()
    columns: tuple[Column, ...] = field(default=(), repr=False)
    naming: Naming = field(default_factory=Naming, repr=False)
    fixed_code: str = field(default="1", repr=False)
    offset_code: tuple[tuple[str, dict], ...] = field(default=(), repr=False)
    fixed_labels: tuple[Hashable, ...] = field(default=(), repr=False)
    response_levels: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def p(self) -> int:
        return self.X.shape[1]

    @property
    def q(self) -> int:
        return sum(b.q for b in self.blocks)

    @property
    def n_dropped(self) -> int:
        return self.frame.n_dropped

    @property
    def response_name(self) -> str:
        return self.formula.response_text

    @property
    def n_theta(self) -> int:
        return sum(b.n_theta for b in self.blocks)

    def block(self, group: str) -> ReBlock:
        """The block of a grouping factor, by name as lme4 prints it (``"my g"``; `` `my g` `` works too)."""
        plain = group[1:-1] if len(group) > 2 and group[0] == group[-1] == "`" else group
        for b in self.blocks:
            if b.group in (group, plain):
                return b
        raise KeyError(f"no grouping factor '{group}'; the model has {', '.join(b.group for b in self.blocks)}")

    def z_sparse(self) -> sp.csr_matrix:
        """The full n x q random-effects matrix, sparse (blocks side by side)."""
        return sp.hstack([b.z_sparse() for b in self.blocks], format="csr")

    # --- new data ----------------------------------------------------------------------------------------------

    def safe_data(self, data: pd.DataFrame, labels: list[Hashable] | None = None, what: str = "model") -> pd.DataFrame:
        """New data as the formula code sees it: the used columns coerced to their types when fitting.

        Raises
        ------
        DataError
            For a missing column, or a value that cannot be read as the
            column's type (text in a numeric column).
        """
        wanted = None if labels is None else set(labels)
        cols = tuple(c for c in self.columns if wanted is None or c.label in wanted)
        missing = [c.label for c in cols if c.label not in data.columns]
        if missing:
            raise missing_columns_error(missing, what)
        return safe_frame(data, cols, new=True)

    def fixed_matrix(self, data: pd.DataFrame) -> np.ndarray:
        """X for new data, encoded exactly as the training data was."""
        safe = self.safe_data(data, list(self.fixed_labels), "fixed effects")
        return self.fixed_matrix_of(safe)

    def fixed_matrix_of(self, safe: pd.DataFrame) -> np.ndarray:
        """X for a safe frame of new data."""
        full = replay_matrix(self.fixed_spec, safe, "fixed effects", self.naming)
        return full[:, list(self.fixed_keep)]

    def offset_vector(self, data: pd.DataFrame) -> np.ndarray | None:
        """The offset for new data (None when the model has none)."""
        if not self.offset_code:
            return None
        return self.offset_of(self.safe_data(data, list(self.fixed_labels), "offset"))

    def offset_of(self, safe: pd.DataFrame) -> np.ndarray | None:
        """The offset for a safe frame of new data, replaying the training state of its transforms."""
        if not self.offset_code:
            return None
        return sum(
            evaluate_vector(code, safe, "offset", self.naming, copy.deepcopy(state)) for code, state in self.offset_code
        )

    @property
    def fixed_columns(self) -> list[Hashable]:
        """Data columns used by the fixed effects (and offsets)."""
        return list(self.fixed_labels)

    def term_matrix(self, term_code: str) -> tuple[np.ndarray, tuple[str, ...]]:
        """One fixed-effects term on the fitting data with every level of every factor (for type III tests)."""
        safe = safe_frame(self.frame.data, self.columns)
        values, names, _ = evaluate_matrix(f"0 + {term_code}", safe, "fixed effects", self.naming, full_rank=False)
        return values, names

    def term_label(self, term) -> str:
        """R's label of a term of ``fixed_spec`` (``"sector:cses"``, ``"poly(x, 2)"``)."""
        return ":".join(self.naming.display.get(str(f.expr), self.naming.humanize(str(f.expr))) for f in term.factors)


def build_design(
    formula: str | ParsedFormula,
    data: object,
    *,
    na_action: str = "omit",
    weights: Hashable | np.ndarray | None = None,
    offset: Hashable | np.ndarray | None = None,
    require_random: bool = True,
    binary_response: bool = False,
    category_response: tuple[str, str] | None = None,
) -> Design:
    """Build the design of a mixed model from a formula and a data frame.

    Parameters
    ----------
    formula
        An lme4 formula such as ``"Reaction ~ Days + (Days | Subject)"``.
    data
        A pandas DataFrame (not modified).
    na_action
        ``"omit"`` (drop incomplete rows with a warning) or ``"raise"``.
    weights
        Prior weights: a column (by label, whatever its name), an expression
        of columns (``"1 / v"``), or an array with one value per row.
    offset
        lme4's ``offset=`` argument, added to any ``offset()`` terms of the
        formula: a column (by label), an expression of columns
        (``"log(expected)"``), or an array with one value per row (rows
        where it is missing are dropped, as R's model frame drops them).
    require_random
        Raise when the formula has no random-effects term.
    binary_response
        True for the binomial and bernoulli families: a factor, categorical or
        text response is then 0 for its first level (of those present) and 1
        for every other, as R's ``binomial()`` reads a factor.
    category_response
        ``(kind, family name)`` for the families of per-category responses:
        kind ``"ordinal"`` (an ordered factor or integers; the fixed effects
        lose their intercept, which the thresholds replace) or ``"categorical"``
        (a factor); ``y`` holds the category codes and ``response_levels`` the
        categories (:func:`hierbayes.design.encode.evaluate_categories`).

    Examples
    --------
    >>> import hierbayes as hb
    >>> d = build_design("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
    >>> d.X.shape, d.blocks[0].group, d.blocks[0].terms
    ((180, 2), 'Subject', ('(Intercept)', 'Days'))
    """
    parsed = formula if isinstance(formula, ParsedFormula) else parse_formula(formula)
    df = as_dataframe(data)
    if parsed.response is None and parsed.response_cbind is None:
        raise FormulaError("the formula has no response on the left of '~'", parsed.text, 0)
    if require_random and not parsed.bars:
        raise FormulaError(
            "the formula has no random-effects term such as (1 | group); for an ordinary regression "
            "use statsmodels' ols/glm, or add a grouping factor",
            parsed.text,
            len(parsed.text),
        )
    weight_array = None
    if weights is not None and not _is_column_ref(weights, df):
        try:
            weight_array = np.asarray(weights, dtype=float).reshape(-1) if _is_array(weights) else None
        except (TypeError, ValueError):
            weight_array = None
        if weight_array is None:
            raise DataError(
                f"weights must be numbers (one per row), a column or an expression of columns, not {_describe(weights)}"
            )
        if len(weight_array) != len(df):
            raise DataError(f"weights has {len(weight_array)} values for {len(df)} rows")
        check_weights(weight_array, "weights", df.index)  # missing weights are an error, not a dropped row
        df = df.assign(**{WEIGHTS_COLUMN: weight_array})
    offset_ref = offset
    if offset is not None and not _is_column_ref(offset, df):
        offset_array = _offset_array(offset, len(df))
        df = df.assign(**{OFFSET_COLUMN: offset_array})
        offset_ref = OFFSET_COLUMN
    table = ColumnTable(df.columns)
    code = _translate(parsed, table, weights if weight_array is None else WEIGHTS_COLUMN, offset_ref)
    if weight_array is None and weights is not None:
        label = table.find(weights) if isinstance(weights, str) else weights
        if label is not None and label in df.columns:
            col = df[label]
            if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
                check_weights(col.to_numpy(dtype=float, na_value=np.nan), f"weights column '{label}'", df.index)
    tr = code["translator"]
    grouping_only = set(tr.used) - code["numeric_labels"]
    factors = [label for label in tr.used if label in code["group_labels"]]
    frame = build_frame(df, list(tr.used), na_action, factors)
    columns = tuple(
        Column.of(label, safe, frame.data[label], numeric_use=label not in grouping_only)
        for label, safe in tr.used.items()
    )
    naming = Naming(dict(tr.display), {c.safe: r_name(c.name) for c in columns})
    safe = safe_frame(frame.data, columns)
    rows = frame.row_index
    if category_response is not None:
        y, levels = evaluate_categories(code["response"][0], safe, "response", naming, *category_response)
        trials, response_levels = None, levels
    else:
        y, trials, response_levels = _response(parsed, code, safe, naming, binary_response)
    check_finite(y, [parsed.response_text], "response", rows)
    X_full, names_full, spec = evaluate_matrix(code["fixed"], safe, "fixed effects", naming)
    check_finite(X_full, names_full, "fixed-effects", rows)
    keep = drop_aliased(X_full)
    aliased = tuple(n for j, n in enumerate(names_full) if j not in keep)
    if category_response is not None and category_response[0] == "ordinal":
        keep = _drop_intercept(keep, names_full, category_response[1], parsed.text)
    if aliased:
        warn(
            f"fixed-effect model matrix is rank deficient so dropping {len(aliased)} "
            f"column{'s' if len(aliased) > 1 else ''} / coefficient{'s' if len(aliased) > 1 else ''}: "
            f"{', '.join(aliased)}",
            RankDeficiencyWarning,
        )
    X = X_full[:, keep]
    x_names = tuple(names_full[j] for j in keep)
    blocks = build_blocks(parsed, safe, code["lhs"], code["groups"], code["block_columns"], naming)
    for b in blocks:
        check_finite(b.Z, b.terms, f"random-effects ({b.group})", rows)
    check_scaling(X, x_names)
    check_slopes_vary(blocks)
    offset_code = tuple((c, {}) for c in code["offsets"])
    offset_values = None
    if offset_code:
        offset_values = sum(evaluate_vector(c, safe, "offset", naming, state) for c, state in offset_code)
        shown = [*parsed.offsets] + ([] if offset_ref is None else [f"offset={offset_ref}"])
        check_finite(offset_values, [" + ".join(shown)], "offset", rows)
    w = None
    if weights is not None:
        w = evaluate_vector(code["weights"], safe, "weights", naming)
        check_weights(w, "weights" if weight_array is not None else f"weights '{weights}'", rows)
    return Design(
        formula=parsed, y=y, X=X, x_names=x_names, blocks=blocks, frame=frame, offset=offset_values,
        trials=trials, weights=w, aliased=aliased, fixed_spec=spec, fixed_keep=tuple(keep),
        columns=columns, naming=naming, fixed_code=code["fixed"], offset_code=offset_code,
        fixed_labels=tuple(code["fixed_labels"]), response_levels=response_levels,
    )  # fmt: skip


def _drop_intercept(keep: list[int], names_full: list[str], family: str, text: str) -> list[int]:
    """An ordinal model's columns: the intercept (coded, then dropped) is absorbed in the thresholds."""
    if "(Intercept)" not in names_full:
        raise FormulaError(
            f"the {family} family's thresholds are its intercepts, so its formula keeps the intercept that factors "
            "are coded against (it is dropped from the fixed effects); remove '0 +' / '- 1'",
            text,
            0,
        )
    return [j for j in keep if names_full[j] != "(Intercept)"]


def missing_columns_error(missing: list[Hashable], what: str) -> DataError:
    """New data lacks columns the model reads; an offset given as numbers when fitting is named as such."""
    if OFFSET_COLUMN in missing:
        return DataError(
            "the offset was given as numbers (offset=array) when fitting, so new data cannot supply it: fit with "
            "offset= naming a column or an expression of columns (offset='log(expected)'), or use newdata=None"
        )
    return DataError(f"new data lacks column(s) {', '.join(map(str, missing))} needed for the {what}")


def _describe(obj: object) -> str:
    """A short description of a bad argument: its value if small, else its type, length and dtype."""
    if _is_array(obj):
        dtype = getattr(obj, "dtype", None)
        return f"a {type(obj).__name__} of {len(obj)} values" + (f" of dtype {dtype}" if dtype is not None else "")
    return reprlib.repr(obj)


def _is_array(obj: object) -> bool:
    return isinstance(obj, (np.ndarray, pd.Series, list, tuple)) or (
        hasattr(obj, "__array__") and not isinstance(obj, str)
    )


def check_weights(w: np.ndarray, what: str, rows) -> None:
    """Prior weights must be finite, non-negative and not all zero (a DataError naming the weights and rows)."""
    w = np.asarray(w, dtype=float)
    for bad, rule, problem in ((~np.isfinite(w), "finite numbers", "missing or infinite"),
                               (w < 0, "non-negative", "negative")):  # fmt: skip
        if bad.any():
            idx = np.flatnonzero(bad)
            shown = ", ".join(f"{w[i]:g} in row {rows[i]}" for i in idx[:3]) + (", ..." if len(idx) > 3 else "")
            raise DataError(f"{what} must be {rule}; {len(idx)} are {problem} ({shown})")
    if len(w) and not np.any(w > 0):
        raise DataError(f"{what}: every weight is zero; at least one row needs a positive weight")


def _offset_array(offset: object, n: int) -> np.ndarray:
    """lme4's ``offset=`` given as numbers, one per row (R's model frame refuses other lengths)."""
    try:
        arr = np.asarray(offset, dtype=float).reshape(-1) if _is_array(offset) else None
    except (TypeError, ValueError):
        arr = None
    if arr is None:
        raise DataError(
            f"offset must be numbers (one per row), a column or an expression of columns, not {_describe(offset)}"
        )
    if len(arr) != n:
        raise DataError(f"offset has {len(arr)} values for {n} rows")
    if np.isinf(arr).any():
        i = int(np.flatnonzero(np.isinf(arr))[0])
        raise DataError(f"offset must be finite; row {i} is {arr[i]:g}")
    return arr


def _is_column_ref(weights: object, df: pd.DataFrame) -> bool:
    """A column label (any hashable that is a column) or a string (a column's text or an expression)."""
    if isinstance(weights, str):
        return True
    try:
        return not _is_array(weights) and weights in df.columns
    except TypeError:
        return False


def _translate(parsed: ParsedFormula, table: ColumnTable, weights: Hashable | None, offset: Hashable | None) -> dict:
    """Translate every piece of the formula, checking its names against the data's columns.

    Also sorts the columns by use: those the fixed part and offsets read
    (needed to predict at the population level), those each grouping factor's
    block reads, and those read only as grouping variables.
    """
    tr = Translator(table, parsed.text)
    out: dict = {"translator": tr, "lhs": {}, "groups": {}, "block_columns": {}}
    numeric: set = set()
    out["response"] = tuple(tr.value(e, "response") for e in parsed.response_cbind or (parsed.response or "",))
    numeric.update(tr.reads)
    out["fixed"] = tr.rhs(parsed.fixed, "fixed effects")
    fixed_labels = list(tr.reads)
    offsets = []
    for o in parsed.offsets:
        offsets.append(tr.value(o, "offset"))
        fixed_labels += [c for c in tr.reads if c not in fixed_labels]
    if offset is not None:  # lme4's offset= argument: added to the formula's offsets
        label = offset if not isinstance(offset, str) else table.find(offset)
        offsets.append(tr.safe(label) if label is not None else tr.value(offset, "offset"))
        fixed_labels += [c for c in tr.reads if c not in fixed_labels]
    out["offsets"], out["fixed_labels"] = tuple(offsets), fixed_labels
    numeric.update(fixed_labels)
    group_labels: set = set()
    for bar in parsed.bars:
        out["lhs"][bar.lhs] = tr.rhs(bar.lhs, f"random-effects term {bar.to_string()}")
        lhs_reads = list(tr.reads)
        out["groups"][bar.group] = tuple(tr.value(g, f"grouping factor of {bar.to_string()}") for g in bar.group)
        group_reads = [c for g in bar.group for c in tr.columns_of(g, "grouping factor")]
        cols = out["block_columns"].setdefault(bar.group_name, [])
        cols += [c for c in (*group_reads, *lhs_reads) if c not in cols]
        numeric.update(lhs_reads)
        group_labels.update(group_reads)
    if weights is not None:
        label = weights if not isinstance(weights, str) else table.find(weights)
        out["weights"] = tr.safe(label) if label is not None else tr.value(weights, "weights")
        numeric.update(tr.reads if label is None else [label])
    out["numeric_labels"], out["group_labels"] = numeric, group_labels
    return out


def _response(
    parsed: ParsedFormula, code: dict, safe: pd.DataFrame, naming: Naming, binary: bool
) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...]]:
    if parsed.response_cbind is not None:
        s = evaluate_vector(code["response"][0], safe, "response (successes)", naming)
        f = evaluate_vector(code["response"][1], safe, "response (failures)", naming)
        if np.any(s < 0) or np.any(f < 0):
            raise DataError(f"cbind({', '.join(parsed.response_cbind)}): successes and failures must be >= 0")
        return s, s + f, ()
    if binary:
        y, levels = evaluate_binary(code["response"][0], safe, "response", naming)
        return y, None, levels
    return evaluate_vector(code["response"][0], safe, "response", naming), None, ()
