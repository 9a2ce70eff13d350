"""lme4's calls on a fitted model under lme4's names: ``update``, ``refit``, ``getME``, ``ngrps``.

``update`` and ``refit`` go through the fit's model (``fit.model.update`` /
``fit.model.with_response``) and fit it again with the settings this fit used,
so every engine keeps one way of fitting. ``getME`` returns lme4's pieces of a
frequentist fit with lme4's layout: ``Z`` has one column per random effect in
lme4's order (term by term, and within a term level by level), ``Lambda`` the
matching block-diagonal relative covariance factor.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from hierbayes.errors import ArgumentError

#: The model's own arguments; every other keyword of ``update`` is an option of the fit.
MODEL_ARGUMENTS = ("data", "family", "link", "priors", "na_action", "weights", "subset", "offset",
                   "correlation", "variance")  # fmt: skip


class RCalls:
    """``update`` and ``refit`` for every engine's fit (mixed into :class:`~hierbayes.fits.base.MixedFit`)."""

    model: Any

    def _refit_settings(self, same_design: bool) -> tuple[str | None, dict]:
        """The method and fit options that reproduce this fit (overridden per engine)."""
        raise NotImplementedError

    def update(self, formula: str | None = None, **changes: Any):
        """The model fitted again with another formula or arguments (R's ``update``).

        Parameters
        ----------
        formula
            A formula where ``.`` stands for the old side (``". ~ . - Days"``,
            ``". ~ . - (Days | Subject) + (1 | Subject)"``), or None to keep it.
        **changes
            Model arguments (``data``, ``family``, ``weights``, ``subset``, ...)
            and fit options (``REML``, ``nAGQ``, ``control``, ``draws``, ...);
            what is not given is kept from this fit.

        Examples
        --------
        >>> import hierbayes as hb
        >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
        >>> ml = fit.update(". ~ . - (Days | Subject) + (1 | Subject)", REML=False)
        >>> ml.formula, ml.method
        ('Reaction ~ Days + (1 | Subject)', 'ml')
        """
        model_changes = {k: changes.pop(k) for k in list(changes) if k in MODEL_ARGUMENTS}
        same = formula is None and not model_changes
        method, options = self._refit_settings(same_design=same)
        if any(k in changes for k in ("REML", "reml", "method")):
            method = changes.pop("method", None)
        model = self.model.update(formula, **model_changes)
        return model.fit(method, **{**options, **changes})

    def refit(self, newresp: Any):
        """This model fitted to a new response, everything else kept (lme4's ``refit(object, newresp)``).

        The optimizer starts at this fit's estimates, as lme4's does.

        Examples
        --------
        >>> import hierbayes as hb
        >>> fit = hb.lmer("Reaction ~ Days + (1 | Subject)", hb.datasets.load("sleepstudy"))
        >>> round(float(fit.refit(fit.design.y * 2).fixef["Days"] / fit.fixef["Days"]), 6)
        2.0
        """
        method, options = self._refit_settings(same_design=True)
        return self.model.with_response(newresp).fit(method, **options)


class GetME:
    """lme4's ``getME`` and ``ngrps`` for a frequentist fit (mixed into ``FrequentistFit``)."""

    #: The names ``getME`` answers, with what each returns.
    NAMES: ClassVar[dict[str, str]] = {
        "X": "fixed-effects model matrix (n x p)",
        "Z": "random-effects model matrix (n x q, scipy.sparse), lme4's column order",
        "Zt": "transpose of Z",
        "y": "the response",
        "mu": "fitted values (response scale)",
        "offset": "the offset (zeros without one)",
        "weights": "prior weights",
        "beta": "fixed effects (an array)",
        "fixef": "fixed effects (a Series)",
        "theta": "relative covariance parameters (a Series with lme4's names)",
        "sigma": "the residual SD (1 for families without one)",
        "b": "the conditional modes in Z's column order",
        "Lambda": "relative covariance factor (q x q, scipy.sparse)",
        "Lambdat": "transpose of Lambda",
        "lower": "lower bounds of theta",
        "flist": "the grouping factors (a DataFrame of categoricals)",
        "cnms": "the column names of each term, by VarCorr's group name",
        "Gp": "where each term's columns start in Z (and q at the end)",
        "n_rtrms": "number of random-effects terms", "k": "number of random-effects terms",
        "n_rfacs": "number of grouping factors",
        "l_i": "levels of each grouping factor", "q_i": "columns of Z per term", "p_i": "columns per level per term",
        "m_i": "covariance parameters per term", "m": "number of covariance parameters",
        "n": "number of observations", "N": "number of observations", "p": "fixed effects", "q": "columns of Z",
        "REML": "p for a REML fit, 0 for ML (lme4's integer)", "is_REML": "whether the fit is REML",
        "devfun": "the deviance function", "glmer.nb.theta": "negative binomial theta",
    }  # fmt: skip

    @property
    def ngrps(self) -> dict[str, int]:
        """Number of levels of each grouping factor (lme4's ``ngrps``; the same as ``ngroups``)."""
        return self.ngroups

    def getME(self, name: str | list[str]):
        """A piece of the fitted model by lme4's name (``getME(m, "Z")``); a list of names gives a dict.

        ``getME.NAMES`` lists the names; lme4's internal factorisation
        (``L``, ``RX``, ``RZX``, ``Lind``, ``u``) is not exposed.

        Examples
        --------
        >>> import hierbayes as hb
        >>> fit = hb.lmer("Reaction ~ Days + (Days | Subject)", hb.datasets.load("sleepstudy"))
        >>> fit.getME("Z").shape, fit.getME("Gp").tolist(), fit.getME("q_i")
        ((180, 36), [0, 36], [36])
        """
        if isinstance(name, (list, tuple)):
            return {n: self.getME(n) for n in name}
        if not isinstance(name, str) or name not in self.NAMES:
            internal = " (lme4's factorisation internals are not exposed)" if name in _INTERNAL else ""
            raise ArgumentError(f"getME() does not know {name!r}{internal}; valid: {', '.join(self.NAMES)}")
        return _GETTERS[name](self)

    def _terms(self) -> list[tuple[Any, tuple[int, ...], str]]:
        """lme4's random-effects terms: (block, column indices in the block, VarCorr group name)."""
        out = []
        for b in self.design.blocks:
            names = getattr(b, "bar_names", None) or [b.group] * len(b.bars)
            out.extend((b, tuple(bar), name) for bar, name in zip(b.bars, names, strict=True))
        return out

    def _z(self) -> sp.csc_matrix:
        rows, cols, vals, start = [], [], [], 0
        n = self.design.n
        for b, bar, _ in self._terms():
            k = len(bar)
            for j, c in enumerate(bar):
                rows.append(np.arange(n))
                cols.append(start + b.codes * k + j)
                vals.append(b.Z[:, c])
            start += len(b.levels) * k
        if not rows:
            return sp.csc_matrix((n, 0))
        return sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, start))

    def _lambda(self) -> sp.csc_matrix:
        lams = self.layout.lambdas(self.estimates.theta)
        index = {id(b): i for i, b in enumerate(self.design.blocks)}
        parts = []
        for b, bar, _ in self._terms():
            lam = lams[index[id(b)]][np.ix_(bar, bar)]
            parts.append(sp.kron(sp.identity(len(b.levels), format="csc"), sp.csc_matrix(lam), format="csc"))
        return sp.block_diag(parts, format="csc") if parts else sp.csc_matrix((0, 0))

    def _b(self) -> np.ndarray:
        arrays = {id(b): a for b, a in zip(self.design.blocks, self._ranef_arrays(), strict=True)}
        return np.concatenate([arrays[id(b)][:, list(bar)].reshape(-1) for b, bar, _ in self._terms()] or [[]])

    def _gp(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum([len(b.levels) * len(bar) for b, bar, _ in self._terms()])]).astype(int)


#: lme4's names of its factorisation's pieces, which hierbayes' own factorisation does not reproduce
_INTERNAL = ("L", "RX", "RZX", "Lind", "u", "A", "Tp", "ST")


def _flist(fit) -> pd.DataFrame:
    cols = {}
    for b in fit.design.blocks:
        cols.setdefault(b.group, pd.Categorical.from_codes(b.codes, categories=list(b.levels)))
    return pd.DataFrame(cols)


def _cnms(fit) -> dict[str, list[str]]:
    return {name: [b.terms[c] for c in bar] for b, bar, name in fit._terms()}


def _m_i(fit) -> list[int]:
    return [sum(1 for r, c in b.theta_index if r in bar and c in bar) for b, bar, _ in fit._terms()]


def _sigma(fit) -> float:
    s = fit.sigma
    return 1.0 if s is None else float(s)


_GETTERS = {
    "X": lambda f: f.design.X,
    "Z": lambda f: f._z(),
    "Zt": lambda f: f._z().T.tocsc(),
    "y": lambda f: f.design.y,
    "mu": lambda f: np.asarray(f.fitted, dtype=float),
    "offset": lambda f: f.design.offset if f.design.offset is not None else np.zeros(f.design.n),
    "weights": lambda f: f.design.weights if f.design.weights is not None else np.ones(f.design.n),
    "beta": lambda f: f.fixef.to_numpy(),
    "fixef": lambda f: f.fixef,
    "theta": lambda f: f.theta,
    "sigma": _sigma,
    "b": lambda f: f._b(),
    "Lambda": lambda f: f._lambda(),
    "Lambdat": lambda f: f._lambda().T.tocsc(),
    "lower": lambda f: f.layout.lower,
    "flist": _flist,
    "cnms": _cnms,
    "Gp": lambda f: f._gp(),
    "n_rtrms": lambda f: len(f._terms()),
    "k": lambda f: len(f._terms()),
    "n_rfacs": lambda f: len({b.group for b in f.design.blocks}),
    "l_i": lambda f: [len(levels) for levels in {b.group: b.levels for b in f.design.blocks}.values()],
    "q_i": lambda f: [len(b.levels) * len(bar) for b, bar, _ in f._terms()],
    "p_i": lambda f: [len(bar) for _, bar, _ in f._terms()],
    "m_i": _m_i,
    "m": lambda f: int(f.layout.size),
    "n": lambda f: int(f.design.n),
    "N": lambda f: int(f.design.n),
    "p": lambda f: int(f.design.p),
    "q": lambda f: int(f._gp()[-1]),
    "REML": lambda f: int(f.design.p) if getattr(f, "reml", False) else 0,
    "is_REML": lambda f: bool(getattr(f, "reml", False)),
    "devfun": lambda f: f.devfun,
    "glmer.nb.theta": lambda f: getattr(f, "nb_theta", None),
}
