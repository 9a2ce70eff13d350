## =============================================================================
## make_structures_ranova.R -- likelihood-ratio tests of random-effects terms
## with a residual structure (issue 20: ranova keeps the structure)
## =============================================================================
##
## For each case nlme fits the full model and the model with one random-effects
## term dropped, both with the same residual structure and the same criterion
## (REML or ML), and anova(full, reduced) gives the likelihood-ratio test.
## Dropping the only random-effects term gives nlme's gls with the structure,
## its groups spelled out (corAR1(form = ~ 1 | Mare)). hierbayes's ranova()
## rows are compared with these (tests/structures/test_ranova.py).
##
## Writes tests/reference/structures_ranova_reference.json.
## Run from the repository root:  Rscript tests/reference/make_structures_ranova.R
## =============================================================================

suppressPackageStartupMessages({
  library(nlme)
  library(jsonlite)
})
if (!file.exists("tests/reference/data/ovary.csv"))
  stop("run from the repository root: Rscript tests/reference/make_structures_ranova.R")

OUT <- "tests/reference/structures_ranova_reference.json"
TIGHT <- lmeControl(maxIter = 1000, msMaxIter = 1000, msMaxEval = 10000, niterEM = 100,
                    tolerance = 1e-12, rel.tol = 1e-15, x.tol = 1e-13, returnObject = TRUE)
GLS_TIGHT <- glsControl(maxIter = 1000, msMaxIter = 1000, tolerance = 1e-12, msTol = 1e-15, returnObject = TRUE)

read_data <- function(file, factors) {
  d <- read.csv(file.path("tests/reference/data", file))
  for (f in factors) d[[f]] <- factor(d[[f]])
  d
}

record <- function(full, reduced, row) {
  a <- anova(full, reduced)
  list(row = row, logLik_full = as.numeric(logLik(full)), logLik_reduced = as.numeric(logLik(reduced)),
       df_full = attr(logLik(full), "df"), df_reduced = attr(logLik(reduced), "df"),
       LRT = a$L.Ratio[2], p = a$`p-value`[2],
       reduced_class = class(reduced)[1])
}

cases <- list()
ov <- read_data("ovary.csv", "Mare")
f_ov <- follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time)
for (reml in c(TRUE, FALSE)) {
  method <- if (reml) "REML" else "ML"
  full <- lme(f_ov, ov, random = ~ 1 | Mare, correlation = corAR1(form = ~ 1 | Mare), method = method,
              control = TIGHT)
  red <- gls(f_ov, ov, correlation = corAR1(form = ~ 1 | Mare), method = method, control = GLS_TIGHT)
  cases[[paste0("ovary_ar1_", tolower(method))]] <- record(full, red, "(1 | Mare)")
}

bw <- read_data("bodyweight.csv", c("Rat", "Diet"))
full <- lme(weight ~ Time * Diet, bw, random = ~ Time | Rat, correlation = corCAR1(form = ~ Time | Rat),
            control = TIGHT)
red <- lme(weight ~ Time * Diet, bw, random = ~ 1 | Rat, correlation = corCAR1(form = ~ Time | Rat), control = TIGHT)
cases$bodyweight_car1_reml <- record(full, red, "Time in (Time | Rat)")

ort <- read_data("orthodont.csv", c("Subject", "Sex"))
full <- lme(distance ~ Sex * I(age - 11), ort, random = ~ I(age - 11) | Subject,
            weights = varIdent(form = ~ 1 | Sex), method = "ML", control = TIGHT)
red <- lme(distance ~ Sex * I(age - 11), ort, random = ~ 1 | Subject, weights = varIdent(form = ~ 1 | Sex),
           method = "ML", control = TIGHT)
cases$orthodont_varident_slope_ml <- record(full, red, "I(age - 11) in (I(age - 11) | Subject)")

px <- read_data("pixel.csv", c("Dog", "Side"))
full <- lme(pixel ~ day + I(day^2), px, random = ~ day | Dog, correlation = corCompSymm(form = ~ 1 | Dog/Side),
            control = TIGHT)
red <- lme(pixel ~ day + I(day^2), px, random = ~ 1 | Dog, correlation = corCompSymm(form = ~ 1 | Dog/Side),
           control = TIGHT)
cases$pixel_cs_reml <- record(full, red, "day in (day | Dog)")

meta <- list(
  R_version = R.version.string,
  packages = list(nlme = as.character(packageVersion("nlme")), jsonlite = as.character(packageVersion("jsonlite"))),
  date = format(Sys.time(), tz = "UTC", usetz = TRUE),
  command = "Rscript tests/reference/make_structures_ranova.R",
  file = basename(OUT),
  nlme_control = "lmeControl(maxIter = 1000, msMaxIter = 1000, msMaxEval = 10000, niterEM = 100, tolerance = 1e-12, rel.tol = 1e-15, x.tol = 1e-13, returnObject = TRUE)",
  gls_control = "glsControl(maxIter = 1000, msMaxIter = 1000, tolerance = 1e-12, msTol = 1e-15, returnObject = TRUE)")
writeLines(toJSON(list(meta = meta, cases = cases), auto_unbox = TRUE, digits = NA, pretty = TRUE), OUT)
cat("wrote", OUT, "\n")
