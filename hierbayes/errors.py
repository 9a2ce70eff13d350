"""Exceptions and warnings raised by hierbayes.

Every error names its culprit (the column, the term, the position in the
formula); every warning says what happened and what to do about it.
"""

from __future__ import annotations


class HierbayesError(Exception):
    """Base class of every error raised by hierbayes."""


class FormulaError(HierbayesError, ValueError):
    """A malformed model formula.

    The message shows the formula and points at the offending position.

    Parameters
    ----------
    message
        What is wrong.
    formula
        The formula as the user wrote it.
    position
        0-based offset of the problem in ``formula`` (or None).
    """

    def __init__(self, message: str, formula: str | None = None, position: int | None = None):
        self.message = message
        self.formula = formula
        self.position = position
        super().__init__(self._render())

    def _render(self) -> str:
        if self.formula is None:
            return self.message
        text = f"{self.message}\n  {self.formula}"
        if self.position is not None:
            pos = max(0, min(self.position, len(self.formula)))
            text += "\n  " + " " * pos + "^"
        return text


class DataError(HierbayesError, ValueError):
    """The data cannot be used with the model (a column, a level, a value)."""


class ColumnNotFoundError(DataError, KeyError):
    """A formula names a column the data frame does not have."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ModelError(HierbayesError, ValueError):
    """A model cannot be built or fitted as asked (bad family, bad prior, ...)."""


class FileError(HierbayesError, OSError):
    """A fit cannot be saved to or loaded from a file (the message names the file and what is wrong)."""


class HierbayesWarning(UserWarning):
    """Base class of every warning issued by hierbayes."""


class DroppedRowsWarning(HierbayesWarning):
    """Rows were removed because of missing, infinite or empty values."""


class RankDeficiencyWarning(HierbayesWarning):
    """Aliased fixed-effect columns were dropped."""


class SingularFitWarning(HierbayesWarning):
    """A variance component is at zero or a correlation at +-1."""


class ConvergenceWarning(HierbayesWarning):
    """The optimizer may not have reached the optimum."""


class ScalingWarning(HierbayesWarning):
    """Predictors are on very different scales."""


class DesignWarning(HierbayesWarning):
    """A design that is legal but probably not what was meant."""


class SamplingWarning(HierbayesWarning):
    """Divergences, large R-hat or small effective sample size."""


class OverdispersionWarning(HierbayesWarning):
    """A Poisson (or binomial) fit has more residual variation than the family allows."""


class ArgumentError(ModelError, TypeError):
    """An unknown keyword argument, or an option with a value it cannot take (names the valid ones)."""


class EstimationError(ModelError):
    """The model cannot be estimated from these data (n <= p, a constant response, a criterion that is not finite)."""


class SeparationWarning(ConvergenceWarning):
    """A binomial fit whose fixed-effect estimates diverge: the data are (quasi-)completely separated."""


class UnknownParameterError(ArgumentError, KeyError):
    """A parameter or term name (``parm``, ``which``) that the fit does not have; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])
