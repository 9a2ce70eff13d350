## =============================================================================
## make_formula_reference.R -- R's meaning of formula idioms, odd column names
## and predictions, for tests/design, tests/formula and tests/reliability
## =============================================================================
##
## What it makes (under tests/reference/):
##   data/formula_idioms.csv     simulated data (seed 20261207) with the columns
##                               the idioms need, among them names R users write
##                               in backticks: `my var`, `my y`, `my group`,
##                               `succ count`, `if`, class, N, I, größe, `0`,
##                               `1`, `2` (the CSV is written, then read back,
##                               and everything below uses the read-back data)
##   formula_reference.json      see tests/reference/README.md:
##     model_matrix[id]   colnames(model.matrix(~ rhs, data)) and its first
##                        30 rows and column sums; for some, the same terms
##                        replayed on new data (predvars: poly/scale keep the
##                        training coefficients, as predict() does)
##     fits[id]           lmer/glmer fits with those idioms: fixef, theta,
##                        sigma, logLik/deviance, ranef names and levels,
##                        predictions with re.form = NULL / NA / subsets and
##                        allow.new.levels = TRUE, and lme4's error text
##     contr              contr.poly(k) for k = 2..6 and the other contrasts
##
## Fits are converged tightly (bobyqa, rhoend 1e-10; glmer: tolPwrss 1e-12) so
## that hierbayes, which converges tightly, matches to many digits.
##
## Collation: R sorts character levels with the locale's collation; the data
## here use lower-case ASCII labels only, so every locale gives one order (and
## it is hierbayes' code-point order).
##
## Run from the repository root:  Rscript tests/reference/make_formula_reference.R
## =============================================================================

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
if (!file.exists("hierbayes/datasets/data/sleepstudy.csv"))
  stop("run from the repository root: Rscript tests/reference/make_formula_reference.R")
invisible(Sys.setlocale("LC_COLLATE", "C"))

REF_DIR <- "tests/reference"
CSV <- file.path(REF_DIR, "data", "formula_idioms.csv")
arr <- function(x) I(unname(as.vector(x)))
named <- function(x) stats::setNames(as.list(unname(as.vector(x))), names(x))
mat_rows <- function(m) lapply(seq_len(nrow(m)), function(i) arr(as.matrix(m)[i, ]))

## --- data ----------------------------------------------------------------------------------------------------
set.seed(20261207)
n <- 120
g <- rep(1:12, each = 10)
h <- rep(c("p", "q", "r"), 40)
k <- sample(c("b", "a", "c"), n, replace = TRUE)
nn <- rep(c(3L, 1L, 2L), 40)
o <- sample(1:4, n, replace = TRUE)
x <- round(runif(n, 1, 3), 3)
z <- round(rnorm(n), 3)
tt <- round(seq(0, 1, length.out = n), 4)
l <- rep(c(TRUE, FALSE, FALSE), 40)
grp <- sprintf("grp %d", rep(1:8, 15))
b_g <- rnorm(12, 0, 1)[g]
b_s <- rnorm(12, 0, 0.4)[g]
y <- round(10 + 2 * x + c(a = 0, b = 0.7, c = -0.5)[k] + 0.6 * l + b_g + b_s * x + sin(2 * pi * tt) + rnorm(n, 0, 0.8), 4)
size <- sample(5:15, n, replace = TRUE)
eta <- -0.5 + 0.6 * x + rnorm(8, 0, 0.7)[rep(1:8, 15)]
succ <- rbinom(n, size, plogis(eta))
d0 <- data.frame(
  y = y, x = x, z = z, t = tt, k = k, n = nn, o = o, l = l, g = g, h = h, w = round(runif(n, 0.5, 2), 3),
  N = round(runif(n, 1, 4), 3), I = round(runif(n, 1, 2), 3), size = size,
  check.names = FALSE, stringsAsFactors = FALSE
)
d0[["my var"]] <- round(rnorm(n), 3)
d0[["my.var"]] <- round(rnorm(n), 3)
d0[["class"]] <- round(rnorm(n), 3)
d0[["if"]] <- round(rnorm(n), 3)
d0[["größe"]] <- round(runif(n, 150, 200), 1)
d0[["my y"]] <- round(y + 0.5 * d0[["my var"]], 4)
d0[["my group"]] <- grp
d0[["succ count"]] <- succ
d0[["0"]] <- y
d0[["1"]] <- x
d0[["2"]] <- g
write.csv(d0, CSV, row.names = FALSE, fileEncoding = "UTF-8")
d <- read.csv(CSV, check.names = FALSE, stringsAsFactors = FALSE, encoding = "UTF-8")
stopifnot(identical(names(d), names(d0)), is.logical(d$l))

newdata <- data.frame(x = c(0.5, 1.25, 2, 2.75, 3.5, 2.2), z = c(-1, 0, 1, 2, 0.5, -0.3),
                      t = c(0, 0.25, 0.5, 0.75, 1, 0.1), k = c("a", "b", "c", "a", "b", "c"),
                      n = c(1L, 2L, 3L, 1L, 2L, 3L), o = c(1L, 2L, 3L, 4L, 1L, 2L),
                      l = c(TRUE, FALSE, TRUE, FALSE, TRUE, FALSE), h = c("p", "q", "r", "p", "q", "r"),
                      N = c(1, 2, 3, 4, 2, 1), I = c(1, 1.5, 2, 1.2, 1.8, 1.1),
                      stringsAsFactors = FALSE, check.names = FALSE)
newdata[["my var"]] <- c(0, 1, -1, 0.5, 2, -2)
newdata[["my.var"]] <- c(1, 0, 0.5, -1, 0, 2)
newdata[["class"]] <- c(0.1, 0.2, 0.3, -0.4, 0, 1)
newdata[["if"]] <- c(1, -1, 0, 0.5, 0.2, 0)
newdata[["größe"]] <- c(160, 170, 180, 190, 155, 199)

## --- model matrices ------------------------------------------------------------------------------------------
MM <- list(
  factor_n = "factor(n)", as_factor_n = "as.factor(n)", ordered_o = "ordered(o)", as_numeric_n = "as.numeric(n)",
  as_character_n = "as.character(n)", factor_n_x = "factor(n):x", x_factor_n = "x:factor(n)",
  factor_n_times_x = "factor(n) * x", ordered_k = "ordered(k)",
  C_treatment_fn = "C(factor(k), contr.treatment)", C_treatment_alias = "C(factor(k), treatment)",
  C_sum_fn = "C(factor(k), contr.sum)", C_sum_alias = "C(factor(k), sum)", C_helmert = "C(factor(k), contr.helmert)",
  C_poly = "C(factor(k), contr.poly)", C_SAS_fn = "C(factor(k), contr.SAS)", C_SAS_alias = "C(factor(k), SAS)",
  C_default = "C(factor(k))", C_base2 = "C(factor(k), contr.treatment, base = 2)",
  C_sum_full = "0 + C(factor(k), contr.sum)", C_sum_x = "x:C(factor(k), contr.sum)",
  C_sum_main_x = "C(factor(k), contr.sum) * x", C_helmert_o = "C(factor(o), contr.helmert)",
  C_poly_o = "C(factor(o), contr.poly)",
  poly2 = "poly(x, 2)", poly3 = "poly(x, 3)", poly_raw = "poly(x, 2, raw = TRUE)", poly_degree = "poly(x, degree = 2)",
  poly_k = "poly(x, 2) * k", transforms = "log1p(x) + exp(z) + sqrt(x) + abs(z)",
  trig_pi = "sin(2 * pi * t) + cos(2 * pi * t)", I_power = "I(x^2)", I_N_over_I = "I(N/I)", I_compare = "I(x > 2)",
  compare = "x > 2", I_minus = "x + I(-x^2)", log_base = "log(x, base = 2)", log_2 = "log(x, 2) + log10(x) + log2(x)",
  scale_x = "scale(x)", scale_nocenter = "scale(x, center = FALSE)", scale_noscale = "scale(x, scale = FALSE)",
  character_k = "k", logical_l = "l", logical_x = "l * x", logical_full = "0 + l", k_times_l = "k * l", k_x = "k:x",
  in_operator = "x %in% k", nest = "k/x", power = "(x + k)^2", minus = "x * z - x",
  relevel_pos = "relevel(factor(k), \"b\")", relevel_ref = "relevel(factor(k), ref = \"c\")",
  factor_levels = "factor(n, levels = c(3, 2, 1))", interaction_kh = "interaction(k, h)",
  odd_names = "`my var` + `my.var` + class + `if` + `größe`", I_odd = "I(`my var` * 2) + log(N) + I",
  as_numeric_l = "as.numeric(l) + I(l * 2)", rounding = "round(x, 1) + floor(x) + ceiling(x) + trunc(z) + sign(z)",
  pmin_ifelse = "pmin(x, 2) + pmax(z, 0) + ifelse(x > 2, 1, 0)", in_set = "I(k %in% c(\"a\", \"b\"))",
  equals = "I(k == \"a\")", exp_half = "exp(x/2) + I(x %% 0.5) + I(x %/% 0.5)",
  integer_names = "`1` + factor(`2`)"
)
NEWDATA_CASES <- c("factor_n", "ordered_o", "poly2", "poly3", "poly_raw", "poly_k", "scale_x", "scale_nocenter",
                   "C_sum_main_x", "trig_pi", "logical_x", "character_k", "odd_names", "interaction_kh",
                   "factor_levels", "relevel_ref", "I_N_over_I")

nd_full <- newdata
nd_full[["1"]] <- newdata$x
nd_full[["2"]] <- c(1, 2, 3, 4, 5, 6)

mm_case <- function(rhs) {
  f <- as.formula(paste("~", rhs))
  mf <- model.frame(f, d)
  X <- model.matrix(attr(mf, "terms"), mf)
  out <- list(rhs = rhs, colnames = arr(colnames(X)), head = mat_rows(X[1:30, , drop = FALSE]),
              colsums = arr(colSums(X)), nrow = nrow(X))
  out
}
mm_new <- function(rhs) {
  f <- as.formula(paste("~", rhs))
  mf <- model.frame(f, d)
  tt <- attr(mf, "terms")
  X0 <- model.matrix(tt, mf)
  mfn <- suppressWarnings(model.frame(tt, nd_full, xlev = .getXlevels(tt, mf)))
  X <- model.matrix(tt, mfn, contrasts.arg = attr(X0, "contrasts"))  # as predict.lm does
  mat_rows(X)
}
model_matrix <- lapply(names(MM), function(id) {
  out <- mm_case(MM[[id]])
  if (id %in% NEWDATA_CASES) out$newdata <- mm_new(MM[[id]])
  out
})
names(model_matrix) <- names(MM)

## --- fits ----------------------------------------------------------------------------------------------------
TIGHT <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10, maxfun = 1e5),
                     check.conv.singular = "ignore")
GTIGHT <- glmerControl(tolPwrss = 1e-12, optimizer = c("bobyqa", "bobyqa"),
                       optCtrl = list(rhoend = 1e-10, maxfun = 1e5))

nd_pred <- rbind(cbind(d[c(1, 25, 60, 97), c("x", "z", "t", "k", "n", "o", "l", "h", "N", "I", "w", "g")]),
                 data.frame(x = 2, z = 0, t = 0.5, k = "b", n = 2L, o = 3L, l = TRUE, h = "q", N = 2, I = 1.5,
                            w = 1, g = 99L))
nd_pred[["my var"]] <- c(d[["my var"]][c(1, 25, 60, 97)], 0.3)
nd_pred[["class"]] <- c(d[["class"]][c(1, 25, 60, 97)], 0.1)
nd_pred[["if"]] <- c(d[["if"]][c(1, 25, 60, 97)], -0.2)
nd_pred[["größe"]] <- c(d[["größe"]][c(1, 25, 60, 97)], 175)
nd_pred[["my group"]] <- c(d[["my group"]][c(1, 25, 60, 97)], "grp 99")
nd_pred[["size"]] <- c(d$size[c(1, 25, 60, 97)], 10L)
nd_pred[["succ count"]] <- c(d[["succ count"]][c(1, 25, 60, 97)], 5L)
nd_pred[["1"]] <- nd_pred$x
nd_pred[["2"]] <- nd_pred$g
rownames(nd_pred) <- NULL

FITS <- list(
  poly_factor = list(f = y ~ poly(x, 2) + factor(n) + (1 | g)),
  trig_factor_group = list(f = log(y) ~ sin(2 * pi * t) + cos(2 * pi * t) + (1 | factor(g)),
                           levels = function(nd) list(`factor(g)` = as.character(nd$g))),
  sum_contrasts_zcp = list(f = y ~ C(factor(k), contr.sum) * x + (x || g), re_forms = list(g_intercept = ~(1 | g))),
  ordered_interaction_group = list(f = y ~ ordered(o) + l + (1 | interaction(h, k)),
                                   levels = function(nd) list(`interaction(h, k)` = paste(nd$h, nd$k, sep = "."))),
  odd_names = list(f = `my y` ~ class + `if` + I(N / I) + `größe` + (1 | `my group`)),
  scale_offset = list(f = y ~ scale(x) + k + offset(log(w)) + (scale(x) | g),
                      re_forms = list(g_intercept = ~(1 | g))),
  integer_names = list(f = `0` ~ `1` + (1 | `2`)),
  binomial_cbind = list(f = cbind(`succ count`, size - `succ count`) ~ x + factor(n) + (1 | `my group`),
                        family = "binomial", levels = function(nd) list(`my group` = nd[["my group"]]))
)

## lme4's predict() fails for some of these (grouping factors made by factor() or interaction(),
## a backticked response in cbind()): the same predictions by hand, from R's own fixef, ranef
## and model matrix, for random intercepts X beta + offset + b[level] (0 for a new level)
fixed_matrix <- function(spec, nd) {
  mf0 <- model.frame(delete.response(terms(lme4::nobars(spec$f))), d)
  tt <- attr(mf0, "terms")
  X0 <- model.matrix(tt, mf0)
  mfn <- suppressWarnings(model.frame(tt, nd, xlev = .getXlevels(tt, mf0)))
  model.matrix(tt, mfn, contrasts.arg = attr(X0, "contrasts"))
}
by_hand <- function(m, spec, nd) {
  X <- fixed_matrix(spec, nd)
  stopifnot(identical(colnames(X), names(fixef(m))))
  eta <- drop(X %*% fixef(m))
  re <- ranef(m)
  for (gname in names(spec$levels(nd))) {
    lev <- spec$levels(nd)[[gname]]
    b <- re[[gname]][lev, "(Intercept)"]
    eta <- eta + ifelse(is.na(b), 0, b)
  }
  eta
}

fit_case <- function(id, spec) {
  fam <- spec$family %||% "gaussian"
  if (fam == "gaussian") {
    m <- lme4::lmer(spec$f, d, REML = TRUE, control = TIGHT)
    crit <- list(REMLcrit = REMLcrit(m), sigma = sigma(m))
  } else {
    m <- lme4::glmer(spec$f, d, family = binomial, control = GTIGHT)
    crit <- list(minus2logLik = -2 * as.numeric(logLik(m)), deviance = deviance(m))
  }
  re <- ranef(m)
  new_rows <- nd_pred
  attempt <- function(expr) tryCatch(arr(expr), error = function(e) paste("ERROR:", conditionMessage(e)))
  pred <- list(
    re_form_NULL_new_levels = attempt(predict(m, new_rows, allow.new.levels = TRUE)),
    re_form_NA = attempt(predict(m, new_rows, re.form = NA)),
    re_form_NULL_seen = attempt(predict(m, new_rows[1:4, ]))
  )
  for (nm in names(spec$re_forms))
    pred[[paste0("re_form_", nm)]] <- attempt(predict(m, new_rows[1:4, ], re.form = spec$re_forms[[nm]]))
  if (!is.null(spec$levels)) {
    pred$by_hand_new_levels <- arr(by_hand(m, spec, new_rows))
    pred$by_hand_NA <- arr(drop(fixed_matrix(spec, new_rows) %*% fixef(m)))
  }
  err <- tryCatch({ predict(m, new_rows); "" }, error = function(e) conditionMessage(e))
  c(list(formula = paste(deparse(spec$f, width.cutoff = 500), collapse = ""), family = fam,
         fixef = named(fixef(m)), theta = named(getME(m, "theta")),
         logLik = as.numeric(logLik(m)), ngrps = named(ngrps(m)),
         ranef = lapply(re, function(r) list(levels = arr(rownames(r)), terms = arr(colnames(r)), values = mat_rows(r))),
         predict = pred, new_levels_error = err), crit)
}
`%||%` <- function(a, b) if (is.null(a)) b else a
fits <- lapply(names(FITS), function(id) fit_case(id, FITS[[id]]))
names(fits) <- names(FITS)

contr <- list(
  poly = lapply(2:6, function(k) mat_rows(contr.poly(k))),
  poly_names = lapply(2:6, function(k) arr(colnames(contr.poly(k)))),
  sum4 = mat_rows(contr.sum(4)), helmert4 = mat_rows(contr.helmert(4)), SAS4 = mat_rows(contr.SAS(4)),
  treatment4_base2 = mat_rows(contr.treatment(4, base = 2)),
  treatment4_base2_names = arr(colnames(contr.treatment(4, base = 2)))
)

pkgs <- c("lme4", "Matrix", "jsonlite")
meta <- list(R_version = R.version.string,
             packages = as.list(sapply(pkgs, function(p) as.character(packageVersion(p)))),
             date = format(Sys.time(), "%Y-%m-%d"),
             command = "Rscript tests/reference/make_formula_reference.R",
             platform = R.version$platform, collate = Sys.getlocale("LC_COLLATE"),
             data = CSV, file = "formula_reference.json",
             newdata_model_matrix = lapply(nd_full, function(v) arr(v)),
             newdata_predict = lapply(nd_pred, function(v) arr(v)))
out <- list(meta = meta, model_matrix = model_matrix, fits = fits, contr = contr)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null", pretty = FALSE),
           file.path(REF_DIR, "formula_reference.json"), useBytes = TRUE)
cat("wrote", file.path(REF_DIR, "formula_reference.json"), "with", length(model_matrix), "model matrices and",
    length(fits), "fits\n")
