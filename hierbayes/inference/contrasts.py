"""Contrast matrices of the model terms for type I and type III tests (lmerTest's).

A model term (``sector``, ``cses``, ``sector:cses``) is a group of columns of
X; its hypothesis is a matrix L with one row per degree of freedom:

* type I (sequential): the term's rows of the normalised Doolittle
  (unit upper triangular) factor of X'X (``get_contrasts_type1``);
* type III: lmerTest's ``extract_contrasts_type3`` for treatment coding:
  ``L = t(ginv(X) rdX)`` with ``rdX`` the over-parameterised design (every
  level of every factor), the columns of each term orthogonalised against the
  terms containing it (a term is contained in another with more variables and
  the same numeric covariates), rows kept where rdX names a column of X.
  With at most one term the type I contrasts are returned, as lmerTest does.

The term -> columns map comes from the design's formulaic spec; columns
dropped as aliased are left out. A boolean column is a factor with levels
FALSE and TRUE, as R's logical vectors are in a formula (its X column is
``bTRUE``), so type III tests treat it exactly as the strings "FALSE"/"TRUE".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hierbayes.design import Design
from hierbayes.errors import ModelError


@dataclass(frozen=True)
class ModelTerm:
    """One fixed-effects term: its R label, variables and columns of X."""

    label: str
    variables: tuple[str, ...]
    numeric: frozenset[str]
    columns: tuple[int, ...]
    expr: str


def model_terms(design: Design) -> tuple[bool, list[ModelTerm]]:
    """Whether X has an intercept, and its terms (R labels, in R's order) with their X columns."""
    spec = design.fixed_spec
    kinds = {k: getattr(v[0], "value", v[0]) for k, v in (spec.encoder_state or {}).items()}
    keep = {full: j for j, full in enumerate(design.fixed_keep)}
    intercept, terms, start = False, [], 0
    for st in spec.structure:
        ncol = len(st.columns)
        cols = tuple(keep[c] for c in range(start, start + ncol) if c in keep)
        start += ncol
        expr = str(st.term)
        if expr == "1":
            intercept = bool(cols)
            continue
        variables = tuple(str(f.expr) for f in st.term.factors)
        numeric = frozenset(v for v in variables if kinds.get(v, "numerical") != "categorical")
        terms.append(ModelTerm(design.term_label(st.term), variables, numeric, cols, expr))
    return intercept, terms


def gram(design: Design) -> np.ndarray:
    """X'X of the fitting rows (from the cross-products when the rows were read in pieces and not kept)."""
    streamed = getattr(design, "streamed", None)
    if streamed is None:
        return design.X.T @ design.X
    cp = streamed.crossproducts
    return cp.Arr[cp.qr : cp.qr + cp.p, cp.qr : cp.qr + cp.p].copy()


def contrasts_type1(design: Design) -> dict[str, np.ndarray]:
    """Sequential (type I) contrasts per term (lmerTest's ``get_contrasts_type1``)."""
    _, terms = model_terms(design)
    X = design.X
    if X.shape[1] == 0:
        return {t.label: np.zeros((0, 0)) for t in terms}
    R = np.linalg.cholesky(gram(design)).T  # X'X = R'R; Doolittle's t(L) is R with unit diagonal
    U = R / np.diag(R)[:, None]
    U[np.abs(U) < 1e-6] = 0.0
    return {t.label: U[list(t.columns)] for t in terms}


def contrasts_marginal(design: Design) -> dict[str, np.ndarray]:
    """Marginal contrasts (lmerTest's ``get_contrasts_marginal``, nlme's ``type = "marginal"``).

    Each term's own coefficients, given all the others: rows of the identity.
    """
    _, terms = model_terms(design)
    if design.X.shape[1] <= 1 or len(terms) <= 1:
        return contrasts_type1(design)
    eye = np.eye(design.X.shape[1])
    return {t.label: eye[list(t.columns)] for t in terms}


def contrasts_type2(design: Design) -> dict[str, np.ndarray]:
    """Type II contrasts (lmerTest's ``get_contrasts_type2_unfolded``).

    A term contained in no other term gets its marginal contrast; any other
    term its sequential (Doolittle) contrast with X's columns reordered so
    that the columns of every term that neither is it nor contains it come
    first, then its own and those of the terms containing it.
    """
    _, terms = model_terms(design)
    X = design.X
    p = X.shape[1]
    if p <= 1 or len(terms) <= 1:
        return contrasts_type1(design)
    out = {}
    for t in terms:
        containing = [u for u in terms if _contains(t, u)]
        if not containing:
            out[t.label] = np.eye(p)[list(t.columns)]
            continue
        last = list(t.columns) + [c for u in containing for c in u.columns]
        order = [c for c in range(p) if c not in last] + last
        R = np.linalg.cholesky(gram(design)[np.ix_(order, order)]).T
        U = R / np.diag(R)[:, None]
        U[np.abs(U) < 1e-6] = 0.0
        rows = [order.index(c) for c in t.columns]
        L = np.zeros((len(rows), p))
        L[:, order] = U[rows]
        out[t.label] = L
    return out


def _zapsmall(x: np.ndarray, digits: int = 7) -> np.ndarray:
    mx = np.max(np.abs(x)) if x.size else 0.0
    if not mx > 0:
        return x
    return np.round(x, max(0, digits - int(np.ceil(np.log10(mx)))))


def _contains(inner: ModelTerm, outer: ModelTerm) -> bool:
    vi, vo = set(inner.variables), set(outer.variables)
    return vi <= vo and len(vo - vi) > 0 and inner.numeric == outer.numeric


def _overparameterised(design: Design, intercept: bool, terms: list[ModelTerm]) -> tuple[np.ndarray, list[str]]:
    blocks, names = [], []
    if intercept:
        blocks.append(np.ones((design.n, 1)))
        names.append("(Intercept)")
    for t in terms:
        values, term_names = design.term_matrix(t.expr)
        blocks.append(values)
        names.extend(term_names)
    return np.hstack(blocks), names


def contrasts_type3(design: Design) -> dict[str, np.ndarray]:
    """Type III contrasts per term (lmerTest's ``get_contrasts_type3`` for treatment coding)."""
    intercept, terms = model_terms(design)
    if design.X.shape[1] <= 1 or len(terms) <= 1:
        return contrasts_type1(design)
    streamed = getattr(design, "streamed", None)
    if streamed is not None:  # L below depends on X's column space only: the prototype rows' design gives it
        if streamed.proxy is None:
            raise ModelError("type III contrasts of a fit from data read in pieces need the prototype rows' X to "
                             "have full rank, which it has not here; use type=1 or type=2")  # fmt: skip
        design = streamed.proxy
    X = design.X
    rdX, rd_names = _overparameterised(design, intercept, terms)
    L = _zapsmall((np.linalg.pinv(X, rcond=np.sqrt(np.finfo(float).eps)) @ rdX).T)
    order = sorted(range(len(terms)), key=lambda i: -len(terms[i].variables))  # stable, like R's order()
    for i in order:
        term = terms[i]
        containing = [c for t in terms if _contains(term, t) for c in t.columns]
        if containing and term.columns:
            A, B = L[:, containing], L[:, list(term.columns)]
            coef, *_ = np.linalg.lstsq(A, B, rcond=None)
            L[:, list(term.columns)] = _zapsmall(B - A @ coef)
    rows = pd.Index(rd_names).get_indexer(list(design.x_names))
    if (rows < 0).any():
        missing = [n for n, r in zip(design.x_names, rows, strict=True) if r < 0]
        raise ModelError(
            f"type III contrasts are not available for this design: columns {missing} of X have no counterpart in "
            "the over-parameterised design (use type=1)"
        )
    L = L[rows]
    out = {}
    for t in terms:
        Lt = L[:, list(t.columns)].T
        out[t.label] = Lt[np.abs(Lt).sum(axis=1) > 1e-8]
    return out
