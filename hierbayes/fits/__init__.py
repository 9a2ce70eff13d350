"""Fit objects: one extractor API (fixef, ranef, coef, varcorr, sigma, predict, summary) for every engine.

* :class:`LmerFit` -- linear mixed models by REML/ML (``hb.lmer``);
* :class:`GlmerFit` -- GLMMs by maximum likelihood (``hb.glmer``);
* :class:`PosteriorFit` -- Bayesian fits (``hb.bayes``).
"""

from hierbayes.fits.base import MixedFit
from hierbayes.fits.glmer import GlmerFit
from hierbayes.fits.lmer import LmerFit
from hierbayes.fits.posterior import PosteriorFit

__all__ = ["GlmerFit", "LmerFit", "MixedFit", "PosteriorFit"]
