"""The parsed form of an lme4 model formula.

``ParsedFormula`` is what the parser hands to the design layer: the response,
the fixed-effects part (a formulaic right-hand side), and the random-effects
bars already expanded the lme4 way (``||`` into independent bars, ``a/b`` into
``a`` and ``b:a``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RandomBar:
    """One random-effects term ``(lhs | group)`` after expansion.

    Attributes
    ----------
    lhs
        The left side as R prints it, e.g. ``"1 + Days"`` or ``"0 + Days"``.
    group
        R expressions whose interaction is the grouping factor, in lme4's
        naming order: ``("cask", "batch")`` is the factor lme4 prints as
        ``cask:batch``; ``("factor(g)",)``, ``("interaction(a, b)",)`` and
        ``("`my g`",)`` are single factors.
    correlated
        False when the bar came from a double bar ``||``.
    position
        Offset of the bar's opening parenthesis in the formula text.
    structure
        glmmTMB's covariance structure when the bar was written inside one:
        ``"diag"`` (independent columns, one SD each) or ``"us"`` (unstructured,
        the same as a plain bar); None for a plain bar.
    """

    lhs: str
    group: tuple[str, ...]
    correlated: bool = True
    position: int = 0
    structure: str | None = None

    @property
    def group_name(self) -> str:
        """The grouping factor's name as lme4 prints it (``"cask:batch"``, ``"my g"``, ``"factor(g)"``).

        lme4 deparses the bar's right side: a lone column name without
        backticks (R prints a symbol bare), anything else as R code.
        """
        if len(self.group) == 1:
            g = self.group[0]
            if len(g) > 2 and g[0] == g[-1] == "`":
                return g[1:-1].replace("\\`", "`").replace("\\\\", "\\")
            return g
        return ":".join(self.group)

    def to_string(self) -> str:
        """The bar as formula text, e.g. ``"(1 + Days | Subject)"``; ``||`` for an independent term."""
        bar = f"({self.lhs} {'|' if self.correlated else '||'} {':'.join(self.group)})"
        return f"{self.structure}{bar}" if self.structure else bar


@dataclass(frozen=True)
class ParsedFormula:
    """An lme4 formula split into response, fixed part and random bars.

    Attributes
    ----------
    text
        The formula exactly as written.
    response
        The response expression (``"Reaction"``, ``"log(y)"``), or None for a
        one-sided formula; for ``cbind(s, f)`` this is None and
        ``response_cbind`` holds the two expressions.
    response_cbind
        ``(successes, failures)`` expressions of an lme4 binomial response.
    fixed
        Right-hand side of the fixed effects, as R prints it.
    bars
        Random-effects bars, expanded.
    offsets
        Expressions given as ``offset(...)`` terms.
    """

    text: str
    response: str | None
    fixed: str
    bars: tuple[RandomBar, ...]
    response_cbind: tuple[str, str] | None = None
    offsets: tuple[str, ...] = ()

    @property
    def group_names(self) -> tuple[str, ...]:
        """Distinct grouping factor names in order of first appearance."""
        seen: dict[str, None] = {}
        for bar in self.bars:
            seen.setdefault(bar.group_name, None)
        return tuple(seen)

    @property
    def response_text(self) -> str:
        """The left-hand side as formula text."""
        if self.response_cbind is not None:
            return f"cbind({self.response_cbind[0]}, {self.response_cbind[1]})"
        return self.response or ""

    def to_string(self) -> str:
        """A canonical formula text that parses back to the same structure.

        Examples
        --------
        >>> from hierbayes.formula import parse_formula
        >>> parse_formula("y ~ x + (x || g)").to_string()
        'y ~ x + (1 || g) + (0 + x || g)'
        """
        parts = [self.fixed]
        parts += [f"offset({o})" for o in self.offsets]
        parts += [b.to_string() for b in self.bars]
        lhs = self.response_text
        return (f"{lhs} ~ " if lhs else "~ ") + " + ".join(parts)

    def fixed_only(self) -> str:
        """The formula without random effects (for ``lm``-style fits)."""
        lhs = self.response_text
        return (f"{lhs} ~ " if lhs else "~ ") + self.fixed

    def structure(self) -> tuple:
        """Everything but the original text and positions, for comparisons."""
        bars = tuple((b.lhs, b.group, b.correlated) for b in self.bars)
        return (self.response, self.response_cbind, self.fixed, bars, self.offsets)
