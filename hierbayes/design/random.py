"""Random-effects blocks: one per grouping factor, in lme4's order of terms.

A block holds, for its grouping factor, the integer level code of every row
and the ``k`` per-row model columns of all bars on that factor. The sparse
n x (levels * k) matrix Z is never formed densely: row i has its k values in
the columns of level ``codes[i]``.

The relative covariance factor of a block is a k x k lower-triangular matrix
lambda, block-diagonal over the block's bars: ``(x | g)`` is one full 2 x 2
triangle, ``(x || g)`` two 1 x 1 blocks. ``theta`` lists the free entries of
lambda bar by bar, each bar's lower triangle column by column (lme4's order).

The order of the terms is lme4's (``mkReTrms``): the bars as written (after
``||`` and ``/`` expansion), and, when some bar has more levels than the one
before it, by decreasing number of levels with ties in *reverse* order of
writing (``rev(order(nl))``). A factor's bars sit together in its block, in
that order; the blocks follow the factors' first terms. Only when lme4's order
puts a term of another factor with as many levels between two terms of one
factor (``(1 | a) + (1 | b) + (0 + x | a)`` with a and b of equal size) does
theta's order differ from lme4's: then the names of theta tell the order.
VarCorr's group names are lme4's too: the factor's name per term, and when
a name repeats, R's ``make.names(unique = TRUE)`` of them all (``Wafer``,
``Wafer.1``; ``Wafer:Site`` becomes ``Wafer.Site``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp
from formulaic import ModelSpec
from formulaic.materializers.types import FactorValues

from hierbayes.design.encode import Naming, evaluate_matrix, evaluate_values, replay_matrix
from hierbayes.design.names import level_strings, make_names, r_labels
from hierbayes.design.rfunctions import RFactorEncoder
from hierbayes.errors import DataError, FormulaError
from hierbayes.formula import ParsedFormula, RandomBar


@dataclass(frozen=True)
class ReBlock:
    """The random effects of one grouping factor.

    Attributes
    ----------
    group
        Name as lme4 prints it (``"Subject"``, ``"cask:batch"``, ``"factor(g)"``).
    group_vars
        The R expressions whose interaction is the factor (``("cask", "batch")``).
    levels
        Level names (strings), in R's ``factor()`` order.
    codes
        Level index of each row, shape (n,).
    Z
        Per-row model columns, shape (n, k).
    terms
        Names of the k columns (``"(Intercept)"``, ``"Days"``).
    bars
        Column indices of each bar: ``((0, 1),)`` for ``(Days | Subject)``,
        ``((0,), (1,))`` for ``(Days || Subject)``.
    bar_lhs
        Each bar's left side in formulaic syntax.
    specs
        formulaic specs that encode new data for each bar.
    group_code
        Translated code of each of ``group_vars``.
    columns
        Labels of the data columns the block reads (grouping variables and slopes).
    naming
        R's names for the translated code, for messages.
    bar_names
        lme4's VarCorr group name of each bar (``as.data.frame(VarCorr(m))$grp``).
    """

    group: str
    group_vars: tuple[str, ...]
    levels: tuple[str, ...]
    codes: np.ndarray
    Z: np.ndarray
    terms: tuple[str, ...]
    bars: tuple[tuple[int, ...], ...]
    bar_lhs: tuple[str, ...]
    specs: tuple[ModelSpec, ...] = field(repr=False, default=())
    group_code: tuple[str, ...] = ()
    columns: tuple = ()
    naming: Naming = field(repr=False, default_factory=Naming)
    bar_names: tuple[str, ...] = ()

    @property
    def nlevels(self) -> int:
        return len(self.levels)

    @property
    def k(self) -> int:
        """Number of random-effect columns per level."""
        return len(self.terms)

    @property
    def q(self) -> int:
        """Number of random effects: levels x k."""
        return self.nlevels * self.k

    @property
    def theta_index(self) -> list[tuple[int, int]]:
        """(row, column) in lambda of each theta element, in lme4's order."""
        out = []
        for cols in self.bars:
            for j, cj in enumerate(cols):
                for ci in cols[j:]:
                    out.append((ci, cj))
        return out

    @property
    def n_theta(self) -> int:
        return sum(len(c) * (len(c) + 1) // 2 for c in self.bars)

    @property
    def theta_lower(self) -> np.ndarray:
        """Lower bounds: 0 for diagonal entries, -inf off the diagonal."""
        return np.array([0.0 if r == c else -np.inf for r, c in self.theta_index])

    @property
    def theta_start(self) -> np.ndarray:
        """Identity lambda (lme4's start for glmer, and for lmer unless every term is a random intercept)."""
        return np.array([1.0 if r == c else 0.0 for r, c in self.theta_index])

    @property
    def theta_names(self) -> list[str]:
        """lme4's names of theta (``Subject.(Intercept)``, ``Subject.Days.(Intercept)``)."""
        out = []
        g = self.group
        for cols in self.bars:
            for j, cj in enumerate(cols):
                for ci in cols[j:]:
                    out.append(f"{g}.{self.terms[ci]}" if ci == cj else f"{g}.{self.terms[ci]}.{self.terms[cj]}")
        return out

    def lambda_matrix(self, theta: np.ndarray) -> np.ndarray:
        """The k x k relative covariance factor for this block's theta."""
        lam = np.zeros((self.k, self.k))
        for t, (r, c) in zip(theta, self.theta_index, strict=True):
            lam[r, c] = t
        return lam

    def bar_name(self, term: int) -> str:
        """lme4's VarCorr group label for a column: ``g``, or ``g.1`` for a second bar (see ``bar_names``)."""
        for b, cols in enumerate(self.bars):
            if term in cols:
                if self.bar_names:
                    return self.bar_names[b]
                return self.group if b == 0 else f"{self.group}.{b}"
        raise IndexError(term)

    def z_sparse(self) -> sp.csr_matrix:
        """This block's n x q sparse Z (columns ordered level-major, term-minor)."""
        n = len(self.codes)
        cols = self.codes[:, None] * self.k + np.arange(self.k)[None, :]
        return sp.csr_matrix((self.Z.ravel(), (np.repeat(np.arange(n), self.k), cols.ravel())), shape=(n, self.q))

    def group_sizes(self) -> np.ndarray:
        """Number of rows in each level."""
        return np.bincount(self.codes, minlength=self.nlevels)

    def encode(self, safe: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Level codes (-1 for a level not seen when fitting) and Z columns for new data (a safe frame)."""
        keys = self.keys(safe)
        index = {lvl: i for i, lvl in enumerate(self.levels)}
        codes = np.array([index.get(k, -1) for k in keys], dtype=np.int64)
        Z = np.hstack(
            [replay_matrix(s, safe, f"random-effects term for {self.group}", self.naming) for s in self.specs]
        )
        return codes, Z

    def keys(self, safe: pd.DataFrame) -> list[str]:
        """The level name of every row of a safe frame (``"a:A"`` for an interaction)."""
        parts = [
            labels_of(evaluate_values(code, safe, f"grouping factor {self.group}", self.naming))
            for code in self.group_code
        ]
        return [":".join(map(str, t)) for t in zip(*parts, strict=True)] if len(parts) > 1 else list(parts[0])


def labels_of(value: object) -> list[str]:
    """Level labels of an evaluated grouping variable (a factor, a column)."""
    if isinstance(value, FactorValues) and isinstance(value.__formulaic_metadata__.encoder, RFactorEncoder):
        return list(value.__formulaic_metadata__.encoder.factor.labels)
    if isinstance(value, pd.Series) and isinstance(value.dtype, pd.CategoricalDtype):
        return level_strings_of(value)
    return r_labels(np.asarray(value, dtype=object))


def factor_codes(value: object, name: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Codes and levels (R's order, unused levels dropped) of an evaluated grouping variable."""
    if isinstance(value, FactorValues) and isinstance(value.__formulaic_metadata__.encoder, RFactorEncoder):
        f = value.__formulaic_metadata__.encoder.factor
        labels = np.asarray(f.labels, dtype=object)
        used = set(labels[pd.notna(labels)])
        levels = tuple(lvl for lvl in f.levels if lvl in used)
        index = {lvl: i for i, lvl in enumerate(levels)}
        return np.array([index.get(v, -1) for v in labels], dtype=np.int64), levels
    series = (
        value
        if isinstance(value, pd.Series)
        else pd.Series(np.asarray(value, dtype=object) if np.ndim(value) else [value])
    )
    return level_strings(series, name)


def level_strings_of(col: pd.Series) -> list[str]:
    codes, levels = level_strings(col)
    return [levels[c] for c in codes]


def grouping_factor(parts: list[tuple[np.ndarray, tuple[str, ...]]]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Codes and levels of a (possibly interaction) grouping factor, R's level order.

    For ``b:a`` the levels are ordered with ``b`` varying slowest, as R's
    ``factor(b:a)`` does, and unused combinations are dropped.
    """
    codes, levels = parts[0]
    for c2, l2 in parts[1:]:
        combined = codes * len(l2) + c2
        uniq, codes = np.unique(combined, return_inverse=True)
        levels = tuple(f"{levels[u // len(l2)]}:{l2[u % len(l2)]}" for u in uniq)
        codes = codes.reshape(-1)
    return codes.astype(np.int64), levels


def build_blocks(
    parsed: ParsedFormula,
    safe: pd.DataFrame,
    lhs_code: dict[str, str],
    group_code: dict[tuple[str, ...], tuple[str, ...]],
    columns: dict[str, tuple],
    naming: Naming,
) -> tuple[ReBlock, ...]:
    """One block per grouping factor, in lme4's order of terms (see the module's notes).

    ``lhs_code`` maps a bar's left side, ``group_code`` a grouping factor's
    expressions, to their translated code; ``columns`` a factor's name to the
    data columns its block reads.
    """
    factors: dict[str, tuple[np.ndarray, tuple[str, ...]]] = {}
    for bar in parsed.bars:
        if bar.group_name not in factors:
            factors[bar.group_name] = _factor(bar, safe, group_code[bar.group], naming)
    order = term_order([len(factors[bar.group_name][1]) for bar in parsed.bars])
    terms = [parsed.bars[i] for i in order]
    by_group: dict[str, list[RandomBar]] = {}
    for bar in terms:
        by_group.setdefault(bar.group_name, []).append(bar)
    names = iter(varcorr_names([bar.group_name for bar in terms]))
    grp_of_term = [(bar.group_name, next(names)) for bar in terms]
    blocks = []
    for name, bars in by_group.items():
        block = _block(parsed, bars, safe, lhs_code, factors[name], group_code[bars[0].group], columns[name], naming)
        own = [n for g, n in grp_of_term if g == name]
        # a diag() term is one bar per column: each keeps the term's name (glmmTMB prints the group once)
        own = tuple(n for bar, n in zip(bars, own, strict=True)
                    for _ in range(block.bar_lhs.count(bar.lhs) if bar.structure == "diag" else 1))  # fmt: skip
        blocks.append(replace(block, bar_names=own))
    return tuple(blocks)


def term_order(nlevels: list[int]) -> list[int]:
    """lme4's order of random-effects terms (``mkReTrms``): as written unless some term has more levels
    than the one before it; then by decreasing number of levels, ties in reverse order (``rev(order(nl))``).

    Examples
    --------
    >>> term_order([10, 10, 10, 80])  # (x + z || Wafer) + (1 | Wafer:Site): Wafer's terms reversed
    [3, 2, 1, 0]
    >>> term_order([18, 18])  # (1 | Subject) + (0 + Days | Subject): as written
    [0, 1]
    """
    if not any(b > a for a, b in itertools.pairwise(nlevels)):
        return list(range(len(nlevels)))
    return sorted(range(len(nlevels)), key=lambda i: (nlevels[i], i), reverse=True)


def varcorr_names(groups: list[str]) -> tuple[str, ...]:
    """lme4's VarCorr group names of the terms (``mkVarCorr``): the factors' names, made unique with R's
    ``make.names(unique = TRUE)`` when one repeats (which also makes every other name syntactic).

    Examples
    --------
    >>> varcorr_names(["Wafer:Site", "Wafer", "Wafer"])
    ('Wafer.Site', 'Wafer', 'Wafer.1')
    >>> varcorr_names(["b:a", "a"])
    ('b:a', 'a')
    """
    if len(set(groups)) == len(groups):
        return tuple(groups)
    return make_names(groups, unique=True)


def _factor(bar: RandomBar, safe, group_code, naming) -> tuple[np.ndarray, tuple[str, ...]]:
    """Codes and levels of a bar's grouping factor."""
    group = bar.group_name
    parts = [
        factor_codes(evaluate_values(code, safe, f"grouping factor {group}", naming), expr)
        for code, expr in zip(group_code, bar.group, strict=True)
    ]
    for (part_codes, _), expr in zip(parts, bar.group, strict=True):
        if (part_codes < 0).any():
            raise DataError(
                f"the grouping factor {group} has {int((part_codes < 0).sum())} missing value(s) in {expr} after "
                "evaluation (a value outside the levels given to factor()?)"
            )
    return grouping_factor(parts)


def _block(parsed, bars, safe, lhs_code, factor, group_code, columns, naming) -> ReBlock:
    group = bars[0].group_name
    codes, levels = factor
    Zs, terms, bar_cols, specs, bar_lhs = [], [], [], [], []
    for bar in bars:
        Zb, names, spec = evaluate_matrix(lhs_code[bar.lhs], safe, f"random-effects term {bar.to_string()}", naming)
        if Zb.shape[1] == 0:
            raise FormulaError("this random-effects term has no columns", parsed.text, bar.position)
        dup = [n for n in names if n in terms]
        if dup:
            raise FormulaError(
                f"'{dup[0]}' appears in two random-effects terms for {bar.group_name}", parsed.text, bar.position
            )
        cols = tuple(range(len(terms), len(terms) + len(names)))
        if bar.structure == "diag":  # glmmTMB's diag(): every column its own SD, no correlations
            bar_cols.extend((c,) for c in cols)
            bar_lhs.extend([bar.lhs] * len(cols))
        else:
            bar_cols.append(cols)
            bar_lhs.append(bar.lhs)
        terms.extend(names)
        Zs.append(Zb)
        specs.append(spec)
    return ReBlock(
        group=group,
        group_vars=bars[0].group,
        levels=levels,
        codes=codes,
        Z=np.hstack(Zs),
        terms=tuple(terms),
        bars=tuple(bar_cols),
        bar_lhs=tuple(bar_lhs),
        specs=tuple(specs),
        group_code=tuple(group_code),
        columns=tuple(columns),
        naming=naming,
    )
