"""``Formula``: a model formula with formulas for the family's auxiliary parameters (distributional models).

``Formula("y ~ x + (1 | g)", sigma="~ x + (1 | g)")`` models the mean by
``y ~ x + (1 | g)`` and the residual SD by ``x + (1 | g)`` on its own link
(log for scales, logit for ``psi``; see docs/families.md). bambi's spelling,
positional ``"name ~ rhs"`` strings (``Formula("y ~ x", "sigma ~ x")``), is
accepted too. This module checks the syntax only; which names a family takes
is checked when the model is built (``hb.bayes``), before any sampling.

Examples
--------
>>> f = Formula("y ~ x + (1 | g)", sigma="~ x + (1 | g)")
>>> f.main, f.aux_formulas
('y ~ x + (1 | g)', {'sigma': 'x + (1 | g)'})
>>> Formula("y ~ x", "sigma ~ x").text
'y ~ x, sigma ~ x'
"""

from __future__ import annotations

from dataclasses import dataclass

from hierbayes.errors import FormulaError
from hierbayes.formula.parser import parse_formula
from hierbayes.formula.terms import ParsedFormula


@dataclass(frozen=True, init=False)
class Formula:
    """A formula for the mean and one for each modelled auxiliary parameter.

    Parameters
    ----------
    main
        The lme4 formula of the response's location, e.g. ``"y ~ x + (1 | g)"``.
    *extra
        Auxiliary formulas written as ``"sigma ~ x + (1 | g)"`` (bambi's ``bmb.Formula`` spelling).
    **aux
        Auxiliary formulas by parameter name: ``sigma="~ x + (1 | g)"`` (the
        ``~`` may be left out; ``"sigma ~ x"`` is accepted too).

    Attributes
    ----------
    main
        The location formula as given.
    aux
        ``(name, right-hand side)`` pairs, in the order given.

    Examples
    --------
    >>> Formula("y ~ x", alpha="x").aux
    (('alpha', 'x'),)
    """

    main: str
    aux: tuple[tuple[str, str], ...]

    def __init__(self, main: str, *extra: str, **aux: str):
        if not isinstance(main, str):
            raise FormulaError(f"a formula must be a string, got {type(main).__name__}")
        parsed = parse_formula(main)
        if parsed.response is None and parsed.response_cbind is None:
            raise FormulaError("the main formula has no response on the left of '~'", main, 0)
        pairs: list[tuple[str, str]] = []
        for text in extra:
            if not isinstance(text, str):
                raise FormulaError(f"an auxiliary formula must be a string such as 'sigma ~ x', not {text!r}")
            if "~" not in text:
                raise FormulaError(
                    "an auxiliary formula given by position needs the parameter on the left, e.g. 'sigma ~ x'; "
                    "or give it by name: Formula(..., sigma='~ x')",
                    text,
                    0,
                )
            name, rhs = text.split("~", 1)
            pairs.append((name.strip(), rhs.strip()))
        for name, text in aux.items():
            if not isinstance(text, str):
                raise FormulaError(f"the formula of '{name}' must be a string such as '~ x', not {text!r}")
            if "~" in text:
                lhs, rhs = text.split("~", 1)
                if lhs.strip() not in ("", name):
                    raise FormulaError(
                        f"the formula of '{name}' has '{lhs.strip()}' on the left of '~'; "
                        f"write {name}='~ {rhs.strip()}'",
                        text,
                        0,
                    )
                text = rhs
            pairs.append((name, text.strip()))
        seen: set[str] = set()
        for name, rhs in pairs:
            if not name.isidentifier():
                raise FormulaError(f"'{name}' is not a parameter name (the left side of an auxiliary formula)")
            if name in seen:
                raise FormulaError(f"the auxiliary parameter '{name}' has two formulas; give one")
            seen.add(name)
            if not rhs:
                raise FormulaError(f"the formula of '{name}' is empty; write '~ 1' for an intercept only")
            aux_parsed(name, rhs)  # its syntax checked now, with the text the user wrote
        object.__setattr__(self, "main", main)
        object.__setattr__(self, "aux", tuple(pairs))

    @property
    def aux_formulas(self) -> dict[str, str]:
        """Parameter name -> right-hand side of its formula."""
        return dict(self.aux)

    @property
    def text(self) -> str:
        """All formulas as one line, bambi's way: ``"y ~ x, sigma ~ x"``."""
        return ", ".join([self.main, *(f"{n} ~ {r}" for n, r in self.aux)])

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        extra = "".join(f", {n}={('~ ' + r)!r}" for n, r in self.aux)
        return f"Formula({self.main!r}{extra})"


def aux_parsed(name: str, rhs: str) -> ParsedFormula:
    """The auxiliary formula ``name ~ rhs`` parsed (a FormulaError points into it)."""
    return parse_formula(f"{name} ~ {rhs}")
