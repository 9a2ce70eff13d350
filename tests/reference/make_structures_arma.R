## =============================================================================
## make_structures_arma.R -- more corARMA references (issue 20), beside the
## ARMA(1,1) Ovary cases of make_structures.R
## =============================================================================
##
##   acf     stats::ARMAacf for a few (ar, ma) pairs (the correlations hierbayes
##           builds each group's Toeplitz matrix from);
##   fits    nlme::lme with corARMA on Ovary: ARMA(2,0) and ARMA(0,2) over the
##           row order, ARMA(1,1) at integer positions with gaps (ovary_gaps,
##           ~ visit | Mare), REML and ML, tight lmeControl.
##
## Writes tests/reference/structures_arma_reference.json.
## Run from the repository root:  Rscript tests/reference/make_structures_arma.R
## =============================================================================

suppressPackageStartupMessages({
  library(nlme)
  library(jsonlite)
})
if (!file.exists("tests/reference/data/ovary.csv"))
  stop("run from the repository root: Rscript tests/reference/make_structures_arma.R")

OUT <- "tests/reference/structures_arma_reference.json"
TIGHT <- lmeControl(maxIter = 1000, msMaxIter = 1000, msMaxEval = 10000, niterEM = 100,
                    tolerance = 1e-12, rel.tol = 1e-15, x.tol = 1e-13, returnObject = TRUE)

acf_cases <- list(
  list(ar = c(0.5, -0.2), ma = 0.3), list(ar = numeric(), ma = c(0.3, 0.1)), list(ar = 0.9, ma = -0.5),
  list(ar = c(0.2, 0.3, -0.1), ma = numeric()), list(ar = c(0.6, 0.2), ma = c(-0.4, 0.3)))
acf <- lapply(acf_cases, function(k) list(ar = I(k$ar), ma = I(k$ma), acf = I(unname(ARMAacf(k$ar, k$ma, 8)))))

read_data <- function(file) {
  d <- read.csv(file.path("tests/reference/data", file))
  d$Mare <- factor(d$Mare)
  d
}
f_ov <- follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time)
fit_record <- function(data, corr, reml, file, form, p, q) {
  m <- lme(f_ov, data, random = ~ 1 | Mare, correlation = corr, method = if (reml) "REML" else "ML",
           control = TIGHT)
  list(data = file, form = form, p = p, q = q, REML = reml, logLik = as.numeric(logLik(m)),
       beta = as.list(fixef(m)), sigma = m$sigma,
       sd_Mare = as.numeric(VarCorr(m)[1, "StdDev"]),
       residual_params = as.list(coef(m$modelStruct$corStruct, unconstrained = FALSE)))
}
ov <- read_data("ovary.csv")
gaps <- read_data("ovary_gaps.csv")
fits <- list()
for (reml in c(TRUE, FALSE)) {
  s <- if (reml) "reml" else "ml"
  fits[[paste0("ovary_arma20_", s)]] <- fit_record(ov, corARMA(form = ~ 1 | Mare, p = 2, q = 0), reml,
                                                   "ovary.csv", "~ 1 | Mare", 2, 0)
  fits[[paste0("ovary_arma02_", s)]] <- fit_record(ov, corARMA(form = ~ 1 | Mare, p = 0, q = 2), reml,
                                                   "ovary.csv", "~ 1 | Mare", 0, 2)
  fits[[paste0("ovary_gaps_arma11_", s)]] <- fit_record(gaps, corARMA(form = ~ visit | Mare, p = 1, q = 1), reml,
                                                        "ovary_gaps.csv", "~ visit | Mare", 1, 1)
}

meta <- list(
  R_version = R.version.string,
  packages = list(nlme = as.character(packageVersion("nlme")), jsonlite = as.character(packageVersion("jsonlite"))),
  date = format(Sys.time(), tz = "UTC", usetz = TRUE),
  command = "Rscript tests/reference/make_structures_arma.R",
  file = basename(OUT),
  nlme_control = "lmeControl(maxIter = 1000, msMaxIter = 1000, msMaxEval = 10000, niterEM = 100, tolerance = 1e-12, rel.tol = 1e-15, x.tol = 1e-13, returnObject = TRUE)")
writeLines(toJSON(list(meta = meta, acf = acf, fits = fits), auto_unbox = TRUE, digits = NA, pretty = TRUE), OUT)
cat("wrote", OUT, "\n")
