"""Inference for REML/ML fits: tests of fixed effects, model comparison, intervals, bootstrap.

The user-facing entry points are methods of ``LmerFit`` (``coef_table``,
``anova``, ``ranova``, ``confint``, ``profile``, ``bootstrap``, ``simulate``,
``icc``, ``r2``) and :func:`hierbayes.anova` for likelihood-ratio tests
between fits; the modules here do the work:

* :mod:`~hierbayes.inference.satterthwaite`, :mod:`~hierbayes.inference.kenward_roger`:
  denominator degrees of freedom (lmerTest, pbkrtest);
* :mod:`~hierbayes.inference.coef_table`, :mod:`~hierbayes.inference.anova_terms`,
  :mod:`~hierbayes.inference.contrasts`: t tables and F tests per model term;
* :mod:`~hierbayes.inference.compare`, :mod:`~hierbayes.inference.ranova`:
  likelihood-ratio tests (lme4's ``anova``, lmerTest's ``ranova``);
* :mod:`~hierbayes.inference.profile`, :mod:`~hierbayes.inference.profile_plot`,
  :mod:`~hierbayes.inference.intervals`, :mod:`~hierbayes.inference.bootstrap`:
  profile-likelihood, Wald and bootstrap intervals (lme4's ``confint``);
* :mod:`~hierbayes.inference.simulate`, :mod:`~hierbayes.inference.r2`:
  new responses, Nakagawa's R2 and ICCs.

Names load on first use (``import hierbayes`` stays light). Functions named
like their module (``profile``, ``bootstrap``, ``simulate``, ``ranova``,
``coef_table``) are imported from the module: ``from
hierbayes.inference.profile import profile``.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "anova": "compare",
    "anova_table": "anova_terms",
    "confint": "intervals",
    "plot_profile": "profile_plot",
    "r2_nakagawa": "r2",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"hierbayes.inference.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'hierbayes.inference' has no attribute {name!r}")
