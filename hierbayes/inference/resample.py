"""Case resampling of grouped data (lmeresampler's case bootstrap), on design row indices.

Whole groups of the chosen grouping factor are drawn with replacement; a
group drawn twice becomes two distinct levels. Several nested factors
(outer first) resample at each level within the units drawn above. Factors
nested in a resampled one are relabelled per draw; crossed factors keep
their levels.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from hierbayes.design import Design
from hierbayes.errors import ModelError
from hierbayes.reml.refit import with_rows


def _nested_in(inner: np.ndarray, outer: np.ndarray) -> bool:
    """Each level of ``inner`` occurs within one level of ``outer``."""
    pairs = np.unique(np.c_[inner, outer], axis=0)
    return len(np.unique(pairs[:, 0])) == len(pairs)


@dataclass(frozen=True)
class CasePlan:
    """Which blocks to resample (outer to inner) and which blocks are nested in which."""

    levels: tuple[int, ...]
    nested: dict[int, int]  # block -> innermost resampled block it is nested in

    @classmethod
    def build(cls, design: Design, resample: list[str]) -> CasePlan:
        names = [b.group for b in design.blocks]
        idx = []
        for g in resample:
            if g not in names:
                raise ModelError(f"cannot resample '{g}': the grouping factors are {', '.join(names)}")
            idx.append(names.index(g))
        idx.sort(key=lambda i: design.blocks[i].nlevels)
        for outer, inner in pairwise(idx):
            if not _nested_in(design.blocks[inner].codes, design.blocks[outer].codes):
                raise ModelError(
                    f"case resampling at several levels needs nested factors; "
                    f"'{names[inner]}' is not nested in '{names[outer]}'"
                )
        nested = {}
        for h, b in enumerate(design.blocks):
            if h in idx:
                continue
            for g in reversed(idx):
                if _nested_in(b.codes, design.blocks[g].codes):
                    nested[h] = g
                    break
        return cls(tuple(idx), nested)


def resample_design(design: Design, plan: CasePlan, rng: np.random.Generator) -> Design:
    """One case-bootstrap replicate of the design."""
    blocks = design.blocks
    units: list[tuple[np.ndarray, dict[int, int]]] = [(np.arange(design.n), {})]
    for depth, level in enumerate(plan.levels):
        codes = blocks[level].codes
        new_units: list[tuple[np.ndarray, dict[int, int]]] = []
        if depth == 0:
            order = np.argsort(codes, kind="stable")
            bounds = np.r_[0, np.cumsum(np.bincount(codes, minlength=blocks[level].nlevels))]
            for g in rng.integers(0, blocks[level].nlevels, size=blocks[level].nlevels):
                new_units.append((order[bounds[g] : bounds[g + 1]], {level: len(new_units)}))
        else:
            for rows, anc in units:
                groups = np.unique(codes[rows])
                for g in rng.choice(groups, size=len(groups), replace=True):
                    new_units.append((rows[codes[rows] == g], {**anc, level: len(new_units)}))
        units = new_units
    sizes = [len(r) for r, _ in units]
    rows = np.concatenate([r for r, _ in units])
    level_ids = {lv: np.repeat([anc[lv] for _, anc in units], sizes) for lv in plan.levels}
    new_codes, nlevels = [], []
    for h, b in enumerate(blocks):
        if h in plan.levels:
            c = level_ids[h]
        elif h in plan.nested:
            c = np.unique(np.c_[level_ids[plan.nested[h]], b.codes[rows]], axis=0, return_inverse=True)[1]
        else:
            new_codes.append(b.codes[rows])
            nlevels.append(b.nlevels)
            continue
        c = np.asarray(c).reshape(-1)
        new_codes.append(c)
        nlevels.append(int(c.max()) + 1)
    return with_rows(design, rows, new_codes, nlevels)
