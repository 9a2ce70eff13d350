## =============================================================================
## make_structures_satterthwaite.R -- Satterthwaite df of the fixed effects of
## nlme::lme fits with a residual structure (issue 20)
## =============================================================================
##
## No R package computes lmerTest's exact Satterthwaite df for lme. emmeans's
## mode = "appx-satterthwaite" for lme objects is the nearest: for a contrast
## k, df = 2 (k'Vk)^2 / (g' A g), with A = fit$apVar (nlme's approximate
## covariance of all variance parameters -- random-effects SDs, the
## correlation and variance-function parameters, log sigma -- from a
## finite-difference Hessian) and g the gradient of k'Vk in them
## (emmeans:::gradV.kludge, finite differences through lme's internals).
## Both derivatives are coarse finite differences, so these df are
## approximations: hierbayes's (tight numerical derivatives, structure
## parameters included) are compared at 2% (tests/structures/test_satterthwaite.py).
## Here k runs over the unit vectors: one df per fixed effect, as
## emmeans(fit, ...) would give for those contrasts.
##
## Writes tests/reference/structures_satterthwaite_reference.json.
## Run from the repository root:  Rscript tests/reference/make_structures_satterthwaite.R
## =============================================================================

suppressPackageStartupMessages({
  library(nlme)
  library(emmeans)
  library(jsonlite)
})
if (!file.exists("tests/reference/data/ovary.csv"))
  stop("run from the repository root: Rscript tests/reference/make_structures_satterthwaite.R")

OUT <- "tests/reference/structures_satterthwaite_reference.json"
TIGHT <- lmeControl(maxIter = 1000, msMaxIter = 1000, msMaxEval = 10000, niterEM = 100,
                    tolerance = 1e-12, rel.tol = 1e-15, x.tol = 1e-13, returnObject = TRUE)

read_data <- function(file, factors) {
  d <- read.csv(file.path("tests/reference/data", file))
  for (f in factors) d[[f]] <- factor(d[[f]])
  d
}

satt_df <- function(fit) {
  G <- emmeans:::gradV.kludge(fit)
  A <- fit$apVar
  V <- as.matrix(vcov(fit))
  df <- sapply(seq_len(nrow(V)), function(j) {
    g <- sapply(G, function(M) M[j, j])
    2 * V[j, j]^2 / drop(t(g) %*% A %*% g)
  })
  list(terms = I(colnames(V)), df = I(unname(df)), se = I(unname(sqrt(diag(V)))),
       containment = I(unname(fit$fixDF$X)), apVar_pars = I(names(attr(A, "Pars"))))
}

cases <- list()
ov <- read_data("ovary.csv", "Mare")
cases$ovary_ar1_reml <- satt_df(lme(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), ov, random = ~ 1 | Mare,
                                    correlation = corAR1(form = ~ 1 | Mare), control = TIGHT))
ort <- read_data("orthodont.csv", c("Subject", "Sex"))
cases$orthodont_varident_reml <- satt_df(lme(distance ~ age * Sex, ort, random = ~ 1 | Subject,
                                             weights = varIdent(form = ~ 1 | Sex), control = TIGHT))
bw <- read_data("bodyweight.csv", c("Rat", "Diet"))
cases$bodyweight_car1_reml <- satt_df(lme(weight ~ Time * Diet, bw, random = ~ Time | Rat,
                                          correlation = corCAR1(form = ~ Time | Rat), control = TIGHT))
px <- read_data("pixel.csv", c("Dog", "Side"))
cases$pixel_cs_reml <- satt_df(lme(pixel ~ day + I(day^2), px, random = ~ day | Dog,
                                   correlation = corCompSymm(form = ~ 1 | Dog/Side), control = TIGHT))

meta <- list(
  R_version = R.version.string,
  packages = list(nlme = as.character(packageVersion("nlme")), emmeans = as.character(packageVersion("emmeans")),
                  jsonlite = as.character(packageVersion("jsonlite"))),
  date = format(Sys.time(), tz = "UTC", usetz = TRUE),
  command = "Rscript tests/reference/make_structures_satterthwaite.R",
  file = basename(OUT),
  nlme_control = "lmeControl(maxIter = 1000, msMaxIter = 1000, msMaxEval = 10000, niterEM = 100, tolerance = 1e-12, rel.tol = 1e-15, x.tol = 1e-13, returnObject = TRUE)",
  method = "emmeans appx-satterthwaite for lme: 2 (k'Vk)^2 / (g' apVar g), g from emmeans:::gradV.kludge")
writeLines(toJSON(list(meta = meta, cases = cases), auto_unbox = TRUE, digits = NA, pretty = TRUE), OUT)
cat("wrote", OUT, "\n")
