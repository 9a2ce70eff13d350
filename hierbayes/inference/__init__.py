"""Inference for REML/ML fits: tests of fixed effects, model comparison, intervals, bootstrap.

The user-facing entry points are methods of ``LmerFit`` (``coef_table``,
``anova``, ``ranova``, ``confint``, ``profile``, ``simulate``, ``r2``) and
:func:`hierbayes.anova` for likelihood-ratio tests between fits; the modules
here do the work:

* :mod:`~hierbayes.inference.satterthwaite`, :mod:`~hierbayes.inference.kenward_roger`:
  denominator degrees of freedom (lmerTest, pbkrtest);
* :mod:`~hierbayes.inference.coef_table`, :mod:`~hierbayes.inference.anova_terms`:
  t tables and F tests per model term;
* :mod:`~hierbayes.inference.compare`, :mod:`~hierbayes.inference.ranova`:
  likelihood-ratio tests (lme4's ``anova``, lmerTest's ``ranova``);
* :mod:`~hierbayes.inference.profile`, :mod:`~hierbayes.inference.bootstrap`:
  profile-likelihood and bootstrap intervals (lme4's ``confint``);
* :mod:`~hierbayes.inference.simulate`, :mod:`~hierbayes.inference.r2`:
  new responses, Nakagawa's R2.
"""

from __future__ import annotations

__all__ = ["anova"]


def __getattr__(name: str):
    if name == "anova":
        from hierbayes.inference.compare import anova

        return anova
    raise AttributeError(f"module 'hierbayes.inference' has no attribute {name!r}")
