"""The design: everything an engine needs to fit, and to encode new data.

``build_design`` is the formula -> design stage: it parses the formula,
builds the model frame (dropping and counting incomplete rows), evaluates
the response, the fixed-effects matrix X (dropping aliased columns the way
lme4 does) and one random-effects block per grouping factor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from formulaic import ModelSpec

from hierbayes._warnings import warn
from hierbayes.design.checks import check_finite, check_scaling, check_slopes_vary, drop_aliased
from hierbayes.design.encode import evaluate_matrix, evaluate_vector, replay_matrix
from hierbayes.design.frame import ModelFrame, as_dataframe, build_frame, expression_columns
from hierbayes.design.random import ReBlock, build_blocks
from hierbayes.errors import DataError, FormulaError, RankDeficiencyWarning
from hierbayes.formula import ParsedFormula, parse_formula


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
        """The block of a grouping factor, by name."""
        for b in self.blocks:
            if b.group == group:
                return b
        raise KeyError(f"no grouping factor '{group}'; the model has {', '.join(b.group for b in self.blocks)}")

    def z_sparse(self) -> sp.csr_matrix:
        """The full n x q random-effects matrix, sparse (blocks side by side)."""
        return sp.hstack([b.z_sparse() for b in self.blocks], format="csr")

    def fixed_matrix(self, data: pd.DataFrame) -> np.ndarray:
        """X for new data, encoded exactly as the training data was."""
        _require(data, self.fixed_columns, "fixed effects")
        full = replay_matrix(self.fixed_spec, data, "fixed effects")
        return full[:, list(self.fixed_keep)]

    def offset_vector(self, data: pd.DataFrame) -> np.ndarray | None:
        """The offset for new data (None when the model has none)."""
        if not self.formula.offsets:
            return None
        return sum(evaluate_vector(o, data, "offset") for o in self.formula.offsets)

    @property
    def fixed_columns(self) -> list[str]:
        """Data columns used by the fixed effects (and offsets)."""
        cols = self.frame.data.columns
        used = expression_columns(self.formula.fixed, cols, "fixed effects")
        for o in self.formula.offsets:
            used += [c for c in expression_columns(o, cols, "offset") if c not in used]
        return used


def build_design(
    formula: str | ParsedFormula,
    data: object,
    *,
    na_action: str = "omit",
    weights: str | np.ndarray | None = None,
    require_random: bool = True,
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
        Prior weights: a column name or an array with one value per row.
    require_random
        Raise when the formula has no random-effects term.

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
    columns = _used_columns(parsed, df)
    weight_array = None
    if isinstance(weights, str):
        wcols = expression_columns(weights, df.columns, "weights")
        for c in wcols:
            if pd.api.types.is_numeric_dtype(df[c].dtype) and not pd.api.types.is_bool_dtype(df[c].dtype):
                check_weights(df[c].to_numpy(dtype=float, na_value=np.nan), f"weights column '{c}'", df.index)
        columns += [c for c in wcols if c not in columns]
    elif weights is not None:
        try:
            weight_array = np.asarray(weights, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise DataError(f"weights must be numbers (one per row) or a column name, not {weights!r}") from None
        if len(weight_array) != len(df):
            raise DataError(f"weights has {len(weight_array)} values for {len(df)} rows")
        check_weights(weight_array, "weights", df.index)  # missing weights are an error, not a dropped row
        df = df.assign(**{"(weights)": weight_array})
        columns.append("(weights)")
    factors = {g for bar in parsed.bars for g in bar.group}
    frame = build_frame(df, columns, na_action, factors)
    data_ = frame.data
    rows = frame.row_index
    y, trials = _response(parsed, data_)
    check_finite(y, [parsed.response_text], "response", rows)
    X_full, names_full, spec = evaluate_matrix(parsed.fixed, data_, "fixed effects")
    check_finite(X_full, names_full, "fixed-effects", rows)
    keep = drop_aliased(X_full)
    aliased = tuple(n for j, n in enumerate(names_full) if j not in keep)
    if aliased:
        warn(
            f"fixed-effect model matrix is rank deficient so dropping {len(aliased)} "
            f"column{'s' if len(aliased) > 1 else ''} / coefficient{'s' if len(aliased) > 1 else ''}: "
            f"{', '.join(aliased)}",
            RankDeficiencyWarning,
        )
    X = X_full[:, keep]
    x_names = tuple(names_full[j] for j in keep)
    blocks = build_blocks(parsed, data_)
    for b in blocks:
        check_finite(b.Z, b.terms, f"random-effects ({b.group})", rows)
    check_scaling(X, x_names)
    check_slopes_vary(blocks)
    offset = sum(evaluate_vector(o, data_, "offset") for o in parsed.offsets) if parsed.offsets else None
    if offset is not None:
        check_finite(offset, [" + ".join(parsed.offsets)], "offset", rows)
    w = None
    if weights is not None:
        w = evaluate_vector(weights if isinstance(weights, str) else "(weights)", data_, "weights")
        check_weights(w, "weights" if not isinstance(weights, str) else f"weights '{weights}'", rows)
    return Design(
        formula=parsed, y=y, X=X, x_names=x_names, blocks=blocks, frame=frame, offset=offset,
        trials=trials, weights=w, aliased=aliased, fixed_spec=spec, fixed_keep=tuple(keep),
    )  # fmt: skip


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


def _used_columns(parsed: ParsedFormula, df: pd.DataFrame) -> list[str]:
    cols: list[str] = []

    def add(expr: str, context: str) -> None:
        cols.extend(n for n in expression_columns(expr, df.columns, context, parsed.text) if n not in cols)

    for expr in parsed.response_cbind or (parsed.response or "",):
        add(expr, "response")
    add(parsed.fixed, "fixed effects")
    for o in parsed.offsets:
        add(o, "offset")
    for bar in parsed.bars:
        add(bar.lhs, f"random-effects term {bar.to_string()}")
        add(" + ".join(f"`{g}`" for g in bar.group), f"grouping factor of {bar.to_string()}")
    return cols


def _response(parsed: ParsedFormula, data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
    if parsed.response_cbind is not None:
        s = evaluate_vector(parsed.response_cbind[0], data, "response (successes)")
        f = evaluate_vector(parsed.response_cbind[1], data, "response (failures)")
        if np.any(s < 0) or np.any(f < 0):
            raise DataError(f"cbind({', '.join(parsed.response_cbind)}): successes and failures must be >= 0")
        return s, s + f
    return evaluate_vector(parsed.response, data, "response"), None


def _require(data: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise DataError(f"new data lacks column(s) {', '.join(missing)} needed for the {what}")
