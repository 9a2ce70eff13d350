"""Fit objects: one extractor API (fixef, ranef, coef, varcorr, sigma, predict, summary) for every engine."""

from hierbayes.fits.base import MixedFit
from hierbayes.fits.lmer import LmerFit

__all__ = ["LmerFit", "MixedFit"]
