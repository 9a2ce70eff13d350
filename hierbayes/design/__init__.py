"""The design layer: formula + data -> y, X and random-effects blocks (never imports PyMC)."""

from hierbayes.design.checks import check_lmm_levels
from hierbayes.design.design import Design, build_design
from hierbayes.design.frame import ModelFrame
from hierbayes.design.random import ReBlock

__all__ = ["Design", "ModelFrame", "ReBlock", "build_design", "check_lmm_levels"]
