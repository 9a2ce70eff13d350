## =============================================================================
## make_structures.R -- R reference numbers for covariance structures (issue 20)
## =============================================================================
##
## Writes tests/reference/structures_reference.json:
##   nlme      nlme::lme fits with residual correlation (corAR1, corARMA,
##             corCAR1, corCompSymm) and variance functions (varIdent,
##             varPower, varExp, varComb) on nlme's own data (Pinheiro &
##             Bates 2000, ch. 5 and the nlme help pages), REML and ML.
##             Every case is fitted twice: with nlme's default lmeControl()
##             and with a tight one (TIGHT below); the record holds the tight
##             fit plus a summary of the default fit and the differences.
##   anova     nlme anova(fit1, fit2) for nested pairs (REML and ML).
##   glmmTMB   structured random-effects covariances: diag(), us(), cs(),
##             ar1() on sleepstudy and a simulated data set, REML and ML,
##             with tightened nlminb.
## and the data files it fits (read back from CSV before fitting, so R and
## Python see the same numbers):
##   tests/reference/data/ovary.csv, ovary_gaps.csv, orthodont.csv,
##   bodyweight.csv, dialyzer.csv, pixel.csv      (exported from nlme)
##   tests/reference/data/covstruct_sim.csv       (simulated here, seed 20)
##
## Run from the repository root:  Rscript tests/reference/make_structures.R
## (about a minute).  Layout and conventions: tests/reference/README.md.
## =============================================================================

suppressPackageStartupMessages({
  library(nlme)
  library(lme4)
  library(glmmTMB)
  library(jsonlite)
})
if (!file.exists("hierbayes/datasets/data/sleepstudy.csv"))
  stop("run from the repository root: Rscript tests/reference/make_structures.R")

REF_DIR <- "tests/reference"
SIM_DIR <- file.path(REF_DIR, "data")
OUT <- file.path(REF_DIR, "structures_reference.json")
COMMAND <- "Rscript tests/reference/make_structures.R"

## ---------------------------------------------------------------------------
## JSON helpers (same conventions as make_references.R)
## ---------------------------------------------------------------------------
`%||%` <- function(a, b) if (is.null(a)) b else a
arr <- function(x) I(unname(as.vector(x)))
named <- function(x, nms = names(x)) {
  if (length(x) == 0) return(structure(list(), names = character(0)))
  stats::setNames(as.list(unname(as.vector(x))), nms)
}
mat_rows <- function(m) {
  m <- as.matrix(m)
  lapply(seq_len(nrow(m)), function(i) arr(m[i, ]))
}
named_matrix <- function(m) {
  m <- as.matrix(m)
  list(names = arr(colnames(m) %||% character(0)), values = mat_rows(m))
}
df_rows <- function(df, key = "term") {
  df <- as.data.frame(df, check.names = FALSE, stringsAsFactors = FALSE)
  rn <- rownames(df)
  lapply(seq_len(nrow(df)), function(i) {
    row <- lapply(df[i, , drop = FALSE], function(v) {
      v <- v[[1]]
      if (is.factor(v)) v <- as.character(v)
      unname(v)
    })
    c(stats::setNames(list(rn[i]), key), row)
  })
}
capture <- function(expr) {
  warns <- character(0); msgs <- character(0)
  value <- withCallingHandlers(expr,
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") },
    message = function(m) { msgs <<- c(msgs, trimws(conditionMessage(m))); invokeRestart("muffleMessage") })
  list(value = value, warnings = warns, messages = msgs)
}
safely <- function(expr) tryCatch(expr, error = function(e) list(error = conditionMessage(e)))
deparse1 <- function(x) paste(deparse(x, width.cutoff = 500L), collapse = " ")
## Write a data frame so that read.csv gives back exactly the same doubles.
write_exact_csv <- function(d, path) {
  for (v in names(d)) {
    if (is.factor(d[[v]])) d[[v]] <- as.character(d[[v]])
    if (is.double(d[[v]])) {          # shortest of 15 / 17 significant digits that reads back exactly
      x <- d[[v]]
      s <- trimws(formatC(x, digits = 15, format = "g"))
      bad <- as.numeric(s) != x
      s[bad] <- sprintf("%.17g", x[bad])
      d[[v]] <- s
    }
  }
  write.csv(d, path, row.names = FALSE, quote = FALSE)
  cat("wrote", path, "\n")
}

## ---------------------------------------------------------------------------
## Data: export nlme's data sets as plain CSVs, read them back, fit those.
## Factor levels: factor(x) of the raw values (sorted), as for the bundled
## data, so R's levels are pandas' sorted categories.  (nlme's groupedData
## objects carry other level orders, e.g. Orthodont's Sex is Male, Female and
## its Subject levels are ordered by distance; the CSV fits therefore print
## SexMale where Pinheiro & Bates print SexFemale, and the varIdent reference
## stratum is Female (see varIdent_reference below).)
## ---------------------------------------------------------------------------
plain <- function(gd) {
  d <- as.data.frame(gd)
  attr(d, "formula") <- NULL
  for (v in names(d)) if (is.factor(d[[v]])) d[[v]] <- as.character(d[[v]])
  d
}
ov <- plain(nlme::Ovary)
ov$Mare <- as.integer(ov$Mare)
ov$visit <- ave(seq_len(nrow(ov)), ov$Mare, FUN = seq_along)   # 1, 2, ... within mare (rows are in time order)
stopifnot(all(tapply(ov$Time, ov$Mare, function(t) all(diff(t) > 0))))
DATA_FILES <- list(
  ovary = list(d = ov, factors = "Mare"),
  ovary_gaps = list(d = ov[ov$visit %% 5 != 0, ], factors = "Mare"),
  orthodont = list(d = plain(nlme::Orthodont), factors = c("Subject", "Sex")),
  bodyweight = list(d = transform(plain(nlme::BodyWeight), Rat = as.integer(Rat), Diet = as.integer(Diet)),
                    factors = c("Rat", "Diet")),
  dialyzer = list(d = transform(plain(nlme::Dialyzer), Subject = as.integer(Subject), QB = as.integer(QB)),
                  factors = c("Subject", "QB")),
  pixel = list(d = transform(plain(nlme::Pixel), Dog = as.integer(Dog)), factors = c("Dog", "Side"))
)
## Simulated data for the structured random-effects terms (glmmTMB): 40 groups
## x 5 time points (factor tf = t1..t5, numeric time = 1..5) x 2 replicates, so
## that the residual is identified next to a full 5 x 5 random-effects block.
##   y_ar1 = 2 + 0.5 x + b[g, time] + e,  b[g, ] ~ AR1 over the 5 times (sd 1, rho 0.6)
##   y_cs  = 2 + 0.5 x + c[g, f] + e,     f = a, b, c, a, b for times 1..5;
##           c[g, ] ~ N(0, S), S = heterogeneous CS (sds 1, 1.5, 0.7; rho 0.4)
##   e ~ N(0, 0.5^2); x ~ N(0, 1) rounded to 4 decimals, y rounded to 4 decimals
set.seed(20)
ng <- 40; nt <- 5; nrep <- 2
sim <- expand.grid(rep = seq_len(nrep), time = seq_len(nt), g = sprintf("g%02d", seq_len(ng)),
                   KEEP.OUT.ATTRS = FALSE, stringsAsFactors = FALSE)[, c("g", "time", "rep")]
sim$tf <- paste0("t", sim$time)
sim$f <- c("a", "b", "c")[(sim$time - 1) %% 3 + 1]     # 3-level factor for cs(): a, b, c, a, b
sim$x <- round(rnorm(nrow(sim)), 4)
R_ar1 <- 0.6^abs(outer(1:nt, 1:nt, "-"))
b_ar1 <- t(chol(R_ar1)) %*% matrix(rnorm(nt * ng), nt, ng)            # nt x ng, sd 1
sd_cs <- c(1.0, 1.5, 0.7); rho_cs <- 0.4
S_cs <- diag(sd_cs) %*% (rho_cs + (1 - rho_cs) * diag(3)) %*% diag(sd_cs)
b_cs <- t(chol(S_cs)) %*% matrix(rnorm(3 * ng), 3, ng)                # 3 x ng
gi <- match(sim$g, sprintf("g%02d", seq_len(ng)))
fi <- match(sim$f, c("a", "b", "c"))
sim$y_ar1 <- round(2 + 0.5 * sim$x + b_ar1[cbind(sim$time, gi)] + rnorm(nrow(sim), sd = 0.5), 4)
sim$y_cs <- round(2 + 0.5 * sim$x + b_cs[cbind(fi, gi)] + rnorm(nrow(sim), sd = 0.5), 4)
DATA_FILES$covstruct_sim <- list(d = sim, factors = c("g", "tf", "f"))

DATA <- list(); DATA_PATH <- list()
for (nm in names(DATA_FILES)) {
  path <- file.path(SIM_DIR, paste0(nm, ".csv"))
  write_exact_csv(DATA_FILES[[nm]]$d, path)
  d <- read.csv(path, stringsAsFactors = FALSE)
  for (f in DATA_FILES[[nm]]$factors) d[[f]] <- factor(d[[f]])
  DATA[[nm]] <- d; DATA_PATH[[nm]] <- path
}
for (nm in names(DATA)) assign(nm, DATA[[nm]], envir = globalenv())
sleepstudy <- read.csv("hierbayes/datasets/data/sleepstudy.csv"); sleepstudy$Subject <- factor(sleepstudy$Subject)
DATA_PATH$sleepstudy <- "hierbayes/datasets/data/sleepstudy.csv"

## ---------------------------------------------------------------------------
## nlme cases
## ---------------------------------------------------------------------------
## TIGHT: nlminb (nlme's default optimizer) with rel.tol/x.tol passed through
## lmeControl's `...` (lme keeps abs.tol, rel.tol, x.tol, ... for nlminb;
## msTol is only used by opt = "optim"), many more iterations, and the outer
## loop tolerance (used by varPower()/varExp() of fitted values, whose
## covariate is updated between inner optimisations) at 1e-12.  At these
## tolerances nlminb may end with "singular convergence (7)" (it cannot
## improve further); returnObject = TRUE turns nlme's error for that into a
## warning, kept in fit_warnings.
TIGHT <- lmeControl(maxIter = 1000, msMaxIter = 1000, msMaxEval = 10000, niterEM = 100,
                    tolerance = 1e-12, rel.tol = 1e-15, x.tol = 1e-13, returnObject = TRUE)
TIGHT_TEXT <- paste("lmeControl(maxIter = 1000, msMaxIter = 1000, msMaxEval = 10000, niterEM = 100,",
                    "tolerance = 1e-12, rel.tol = 1e-15, x.tol = 1e-13, returnObject = TRUE)")
## A second tight nlminb fit (rel.tol = 1e-12, x.tol at its default): the two
## show how far the tight optimum is determined.  The one with the higher
## log-likelihood is the record's main fit.  (optim/BFGS with reltol = 1e-15
## was tried too and is worse: it stops up to 5.8 log-likelihood units short
## on the Ovary AR(1)/CAR(1) cases, so it is not used.)
TIGHT2 <- lmeControl(maxIter = 1000, msMaxIter = 1000, msMaxEval = 10000, niterEM = 100,
                     tolerance = 1e-12, rel.tol = 1e-12, returnObject = TRUE)
TIGHT2_TEXT <- paste("lmeControl(maxIter = 1000, msMaxIter = 1000, msMaxEval = 10000, niterEM = 100,",
                     "tolerance = 1e-12, rel.tol = 1e-12, returnObject = TRUE)")

OVARY_F <- "follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time)"
OVARY_PY <- "follicles ~ np.sin(2 * np.pi * Time) + np.cos(2 * np.pi * Time)"
DIAL_F <- "rate ~ (pressure + I(pressure^2) + I(pressure^3) + I(pressure^4)) * QB"
DIAL_PY <- "rate ~ (pressure + I(pressure**2) + I(pressure**3) + I(pressure**4)) * QB"
DIAL_R <- "~ pressure + I(pressure^2) | Subject"
BW_F <- "weight ~ Time * Diet"

nl <- function(id, data, fixed, random, correlation = NULL, weights = NULL, py_formula = NULL,
               lme4_random = NULL, source, note = NULL)
  list(id = id, data = data, fixed = fixed, random = random, correlation = correlation,
       weights = weights, py_formula = py_formula, lme4_random = lme4_random, source = source, note = note)
NLME_CASES <- list(
  nl("ovary_iid", "ovary", OVARY_F, "~ 1 | Mare", py_formula = OVARY_PY, lme4_random = "(1 | Mare)",
     source = "Pinheiro & Bates (2000) 5.3.4, fm1Ovar.lme; ?Ovary"),
  nl("ovary_ar1", "ovary", OVARY_F, "~ 1 | Mare", "corAR1(form = ~ 1 | Mare)", py_formula = OVARY_PY,
     source = "P&B 5.3.4, fm2Ovar.lme <- update(fm1Ovar.lme, correlation = corAR1())"),
  nl("ovary_arma11", "ovary", OVARY_F, "~ 1 | Mare", "corARMA(form = ~ 1 | Mare, p = 1, q = 1)",
     py_formula = OVARY_PY, source = "P&B 5.3.4, fm4Ovar.lme (corARMA(p = 1, q = 1))"),
  nl("ovary_car1", "ovary", OVARY_F, "~ 1 | Mare", "corCAR1(form = ~ Time | Mare)", py_formula = OVARY_PY,
     source = "P&B 5.3.4 (corCAR1 on the Ovary time scale)",
     note = paste("Time is in fractions of the estrus cycle (spacing about 0.045), so Phi is tiny: the",
                  "lag-one correlation is Phi^0.045 (about 0.6). Compare Phi relatively or on log(Phi).")),
  nl("ovary_gaps_ar1", "ovary_gaps", OVARY_F, "~ 1 | Mare", "corAR1(form = ~ visit | Mare)", py_formula = OVARY_PY,
     source = "Ovary with every 5th visit removed (visit %% 5 == 0): AR(1) on integer positions with gaps",
     note = paste("nlme stores corAR1 with a non-consecutive integer covariate as corARMA(p = 1), so it",
                  "prints the parameter as 'Phi1'; the correlation between visits i and j is Phi1^|i - j|.")),
  nl("ovary_gaps_ar1_order", "ovary_gaps", OVARY_F, "~ 1 | Mare", "corAR1(form = ~ 1 | Mare)", py_formula = OVARY_PY,
     source = "the same rows, AR(1) on the row order (gaps ignored); contrast with ovary_gaps_ar1"),
  nl("orthodont_varident", "orthodont", "distance ~ age * Sex", "~ 1 | Subject",
     weights = "varIdent(form = ~ 1 | Sex)",
     source = "P&B 5.2.1 (varIdent by Sex; here with a random intercept)",
     note = "Sex levels are Female, Male (sorted): coefficients SexMale, age:SexMale; varIdent ratio 'Male' (Female = 1)."),
  nl("orthodont_varident_slope", "orthodont", "distance ~ Sex * I(age - 11)", "~ I(age - 11) | Subject",
     weights = "varIdent(form = ~ 1 | Sex)",
     source = "P&B 5.2.1, fm3Orth.lme: lme(distance ~ Sex * I(age - 11), random = ~ I(age - 11) | Subject, weights = varIdent(form = ~ 1 | Sex))",
     note = "Sex levels are Female, Male (sorted): coefficients SexMale, SexMale:I(age - 11); varIdent ratio 'Male' (Female = 1)."),
  nl("bodyweight_iid", "bodyweight", BW_F, "~ Time | Rat", lme4_random = "(Time | Rat)",
     source = "P&B 5.2.1, fm1BW.lme"),
  nl("bodyweight_varpower", "bodyweight", BW_F, "~ Time | Rat", weights = "varPower()",
     source = "P&B 5.2.1, fm2BW.lme <- update(fm1BW.lme, weights = varPower())",
     note = paste("varPower() is a power of the fitted values (level 1). nlme alternates: the inner",
                  "optimisation holds the fitted values fixed, then updates them, until the relative",
                  "change of the parameters is below lmeControl(tolerance).")),
  nl("bodyweight_varpower_time", "bodyweight", BW_F, "~ Time | Rat", weights = "varPower(form = ~ Time)",
     source = "P&B 5.2.1 (variance a power of Time)"),
  nl("bodyweight_car1", "bodyweight", BW_F, "~ Time | Rat", "corCAR1(form = ~ Time | Rat)",
     source = "P&B 5.3.4 (continuous-time AR(1) in days)"),
  nl("bodyweight_varpower_car1", "bodyweight", BW_F, "~ Time | Rat", "corCAR1(form = ~ Time | Rat)",
     "varPower()", source = "P&B 5.3.4, fm3BW.lme <- update(fm2BW.lme, corr = corCAR1())"),
  nl("dialyzer_iid", "dialyzer", DIAL_F, DIAL_R, py_formula = DIAL_PY,
     lme4_random = "(pressure + I(pressure^2) | Subject)", source = "P&B 5.2.1, fm1Dial.lme"),
  nl("dialyzer_varpower", "dialyzer", DIAL_F, DIAL_R, weights = "varPower(form = ~ pressure)",
     py_formula = DIAL_PY, source = "P&B 5.2.1, fm2Dial.lme <- update(fm1Dial.lme, weights = varPower(form = ~ pressure))"),
  nl("dialyzer_varpower_ar1", "dialyzer", DIAL_F, DIAL_R, "corAR1(form = ~ 1 | Subject)",
     "varPower(form = ~ pressure)", py_formula = DIAL_PY,
     source = "P&B 5.3.4, fm3Dial.lme <- update(fm2Dial.lme, corr = corAR1())"),
  nl("dialyzer_varexp", "dialyzer", DIAL_F, DIAL_R, weights = "varExp(form = ~ pressure)",
     py_formula = DIAL_PY, source = "P&B 5.2.1 (exponential variance function of pressure)"),
  nl("dialyzer_varident", "dialyzer", DIAL_F, DIAL_R, weights = "varIdent(form = ~ 1 | QB)",
     py_formula = DIAL_PY, source = "P&B 5.2.1 (variance by blood-flow rate QB)"),
  nl("dialyzer_varcomb", "dialyzer", DIAL_F, DIAL_R,
     weights = "varComb(varIdent(form = ~ 1 | QB), varPower(form = ~ pressure))", py_formula = DIAL_PY,
     source = "P&B 5.2.1 (varComb of varIdent by QB and varPower of pressure)",
     note = "nlme names the combined parameters 'A.300' (varIdent ratio of QB 300 to QB 200) and 'B.power'."),
  nl("pixel_cs", "pixel", "pixel ~ day + I(day^2)", "~ day | Dog", "corCompSymm(form = ~ 1 | Dog/Side)",
     py_formula = "pixel ~ day + I(day**2)", lme4_random = "(day | Dog) + (1 | Dog:Side)",
     source = "P&B 4.2 / 5.3 (Pixel): compound symmetry within Dog/Side in place of the Side random intercept",
     note = paste("With Rho >= 0 this is the same model as lme4's (day | Dog) + (1 | Dog:Side):",
                  "Rho = var(Dog:Side) / (var(Dog:Side) + sigma^2) (see lme4_equivalent).",
                  "Compound symmetry within the same grouping as a random intercept (e.g. Orthodont",
                  "~ 1 | Subject with corCompSymm(~ 1 | Subject)) is not identified and is not a case."))
)
names(NLME_CASES) <- vapply(NLME_CASES, `[[`, "", "id")

ANOVA_PAIRS <- list(
  list(id = "ovary_iid_vs_ar1", models = c("ovary_iid", "ovary_ar1")),
  list(id = "ovary_ar1_vs_arma11", models = c("ovary_ar1", "ovary_arma11")),
  list(id = "bodyweight_varpower_vs_car1", models = c("bodyweight_varpower", "bodyweight_varpower_car1")),
  list(id = "dialyzer_iid_vs_varpower", models = c("dialyzer_iid", "dialyzer_varpower")),
  list(id = "dialyzer_varpower_vs_ar1", models = c("dialyzer_varpower", "dialyzer_varpower_ar1"))
)

## Build the lme call with literal arguments (so that update()/anova()/
## intervals() work and the call prints as typed).
lme_call <- function(cs, method, control) {
  cl <- list(quote(nlme::lme), fixed = str2lang(cs$fixed), data = as.name(cs$data),
             random = str2lang(cs$random), method = method)
  if (!is.null(cs$correlation)) cl$correlation <- str2lang(cs$correlation)
  if (!is.null(cs$weights)) cl$weights <- str2lang(cs$weights)
  if (!is.null(control)) cl$control <- control
  as.call(cl)
}
fit_lme <- function(cs, method, control) capture(eval(lme_call(cs, method, control), envir = globalenv()))

## nlme's varIdent reference stratum (ratio 1) is the stratum of the first
## row after lme has sorted the data by the grouping factor(s); it is
## recorded with the stratum factor's levels, and here it is always the first
## level (checked).
varident_reference <- function(fit, cs) {
  vs <- fit$modelStruct$varStruct
  if (inherits(vs, "varComb")) vs <- Filter(function(v) inherits(v, "varIdent"), vs)[[1]] %||% NULL
  if (is.null(vs) || !inherits(vs, "varIdent")) return(NULL)
  gn <- attr(vs, "groupNames")
  sv <- all.vars(getGroupsFormula(formula(vs)))
  lev <- levels(DATA[[cs$data]][[sv]])
  if (!identical(gn[1], lev[1])) stop("varIdent reference stratum is not the first level in ", cs$id)
  list(stratum_variable = sv, groupNames = arr(gn), reference = gn[1], factor_levels = arr(lev))
}
struct_coef <- function(s) if (is.null(s)) NULL else coef(s, unconstrained = FALSE, allCoef = FALSE)

## Random effects: one block per grouping level of the reStruct (outermost
## first, as nlme prints them), covariances in the data's units.
re_blocks <- function(fit) {
  rs <- fit$modelStruct$reStruct
  lvls <- rev(names(rs))                          # nlme stores innermost first
  lapply(stats::setNames(lvls, lvls), function(g) {
    S <- as.matrix(pdMatrix(rs[[g]])) * fit$sigma^2
    sds <- sqrt(diag(S))
    list(terms = arr(colnames(S)), sd = named(sds, colnames(S)),
         corr = mat_rows(cov2cor(S)), cov = mat_rows(S), pdClass = class(rs[[g]])[1])
  })
}
ranef_record <- function(fit) {
  re <- ranef(fit)
  if (is.data.frame(re)) re <- stats::setNames(list(re), names(fit$groups))
  lapply(re, function(r) list(levels = arr(rownames(r)), terms = arr(colnames(r)), values = mat_rows(as.matrix(r))))
}
intervals_record <- function(fit) {
  iv <- safely(capture(intervals(fit, which = "all")))
  if (!is.null(iv$error)) return(list(error = iv$error))
  iv <- iv$value
  tab <- function(m) {
    m <- as.matrix(m)
    lapply(seq_len(nrow(m)), function(i) list(term = rownames(m)[i], lower = unname(m[i, "lower"]),
                                              est = unname(m[i, "est."]), upper = unname(m[i, "upper"])))
  }
  out <- list(level = 0.95, fixed = tab(iv$fixed))
  if (!is.null(iv$reStruct)) out$reStruct <- lapply(iv$reStruct, function(d) tab(as.matrix(d)))
  if (!is.null(iv$corStruct)) out$corStruct <- tab(iv$corStruct)
  if (!is.null(iv$varStruct)) out$varStruct <- tab(iv$varStruct)
  out$sigma <- named(iv$sigma)
  out
}
## newdata for predict(): rows 1-3, one row from the middle and the last row
## of the data, plus a copy of row 1 with a covariate moved (see pred_rows).
pred_newdata <- function(cs) {
  d <- DATA[[cs$data]]
  rows <- unique(c(1, 2, 3, nrow(d) %/% 2, nrow(d)))
  d[rows, , drop = FALSE]
}
summary_fit <- function(fit) {
  list(logLik = as.numeric(logLik(fit)), beta = named(fixef(fit)), sigma = fit$sigma,
       modelStruct = named(coef(fit$modelStruct, unconstrained = FALSE)),
       numIter = fit$numIter %||% NULL)
}

## Optimality check of the structure parameters: each natural-scale
## parameter k of the corStruct/varStruct is moved to v_k (1 +- h), the
## structure is held fixed there (corXXX(value, fixed = TRUE); varXXX(fixed =
## value)) and the rest is refitted (TIGHT).  A parabola through the three
## log-likelihoods puts its vertex at v_k + offset; |offset| / |v_k| says how far
## the reported value is from the maximum along that coordinate.
fix_struct_call <- function(callstr, values, kind) {
  cl <- str2lang(callstr)
  fix1 <- function(cl, v) {
    if (kind == "cor") { cl$value <- unname(v); cl$fixed <- TRUE }
    else cl$fixed <- if (identical(cl[[1]], quote(varIdent))) v else unname(v)
    cl
  }
  if (identical(cl[[1]], quote(varComb))) {
    for (i in 2:length(cl)) {
      pre <- paste0(LETTERS[i - 1], ".")
      v <- values[startsWith(names(values), pre)]
      names(v) <- substring(names(v), nchar(pre) + 1)
      cl[[i]] <- fix1(cl[[i]], v)
    }
    cl
  } else fix1(cl, values)
}
profile_check <- function(cs, method, fit, h = 1e-3) {
  out <- list()
  f0 <- as.numeric(logLik(fit))
  for (kind in c("cor", "var")) {
    st <- fit$modelStruct[[if (kind == "cor") "corStruct" else "varStruct"]]
    if (is.null(st)) next
    v <- coef(st, unconstrained = FALSE)
    callstr <- if (kind == "cor") cs$correlation else cs$weights
    for (k in seq_along(v)) {
      step <- h * abs(v[k])
      fk <- sapply(c(-1, 1), function(sg) {
        vv <- v; vv[k] <- v[k] + sg * step
        cs2 <- cs
        cs2[[if (kind == "cor") "correlation" else "weights"]] <- deparse1(fix_struct_call(callstr, vv, kind))
        r <- safely(suppressWarnings(eval(lme_call(cs2, method, TIGHT), envir = globalenv())))
        if (is.list(r) && !is.null(r$error)) NA_real_ else as.numeric(logLik(r))
      })
      curv <- 2 * f0 - fk[1] - fk[2]
      off <- step * (fk[2] - fk[1]) / (2 * curv)
      out[[names(v)[k]]] <- list(value = unname(v[k]), step = step, logLik_minus = fk[1], logLik_plus = fk[2],
                                 vertex_offset = off, rel_offset = abs(off) / abs(v[k]),
                                 is_max = isTRUE(curv > 0 && fk[1] <= f0 + 1e-9 && fk[2] <= f0 + 1e-9))
    }
  }
  out
}

nlme_record <- function(cs, method) {
  def <- fit_lme(cs, method, NULL)
  t1 <- fit_lme(cs, method, TIGHT)
  t2 <- fit_lme(cs, method, TIGHT2)
  ll <- function(f) as.numeric(logLik(f))
  use2 <- ll(t2$value) > ll(t1$value)
  tight <- if (use2) t2 else t1
  fit <- tight$value
  s <- summary(fit)
  tt <- s$tTable
  l <- logLik(fit)
  corS <- struct_coef(fit$modelStruct$corStruct)
  varS <- struct_coef(fit$modelStruct$varStruct)
  nd <- pred_newdata(cs)
  pr <- predict(fit, newdata = nd, level = 0:1)
  rec <- list(
    data = DATA_PATH[[cs$data]], fixed = cs$fixed, py_formula = cs$py_formula,
    random = cs$random, correlation = cs$correlation, weights = cs$weights,
    method = method, REML = method == "REML", source = cs$source, note = cs$note,
    call = deparse1(lme_call(cs, method, NULL)),
    control = if (use2) TIGHT2_TEXT else TIGHT_TEXT,
    logLik = as.numeric(l), logLik_df = attr(l, "df"), AIC = AIC(fit), BIC = BIC(fit),
    minus2logLik = -2 * as.numeric(l),
    nobs = nobs(fit), ngroups = named(fit$dims$ngrps[seq_len(fit$dims$Q)]),
    beta = named(fixef(fit)),
    vcov = named_matrix(vcov(fit)),
    tTable = df_rows(tt, "term"),
    fixDF = named(fit$fixDF$X), fixDF_terms = named(fit$fixDF$terms),
    sigma = fit$sigma,
    random_effects = re_blocks(fit),
    modelStruct = named(coef(fit$modelStruct, unconstrained = FALSE)),
    modelStruct_unconstrained = named(coef(fit$modelStruct, unconstrained = TRUE)),
    residual_params = named(c(corS, varS)),
    corStruct_class = if (is.null(fit$modelStruct$corStruct)) NULL else class(fit$modelStruct$corStruct)[1],
    varStruct_class = if (is.null(fit$modelStruct$varStruct)) NULL else class(fit$modelStruct$varStruct)[1],
    varIdent_reference = varident_reference(fit, cs),
    intervals = intervals_record(fit),
    ranef = ranef_record(fit),
    fitted_level0 = arr(fitted(fit, level = 0)),
    fitted_level1 = arr(fitted(fit, level = 1)),
    residuals_normalized_head10 = arr(head(residuals(fit, type = "normalized"), 10)),
    predict = list(rows = arr(as.integer(rownames(nd))),
                   newdata = lapply(seq_len(nrow(nd)), function(i) lapply(nd[i, , drop = FALSE], function(v) {
                     v <- v[[1]]; if (is.factor(v)) as.character(v) else v })),
                   level0 = arr(pr$predict.fixed),
                   level1 = arr(pr[[ncol(pr)]])),
    numIter = fit$numIter %||% NULL,
    fit_warnings = arr(tight$warnings), fit_messages = arr(tight$messages),
    default_fit = c(summary_fit(def$value), list(control = "lmeControl() (nlme defaults)",
                                                 warnings = arr(def$warnings))),
    tight_fits = list(tight = c(summary_fit(t1$value), list(control = TIGHT_TEXT, warnings = arr(t1$warnings))),
                      tight2 = c(summary_fit(t2$value), list(control = TIGHT2_TEXT, warnings = arr(t2$warnings)))),
    tight_used = if (use2) "tight2" else "tight"
  )
  if (!is.null(cs$lme4_random)) {
    ## the same model in lme4 (only where lme4 can express it): a cross-check
    lf <- as.formula(paste(cs$fixed, "+", cs$lme4_random))
    m4 <- suppressMessages(suppressWarnings(
      lme4::lmer(lf, data = DATA[[cs$data]], REML = method == "REML",
                 control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5)))))
    vc <- as.data.frame(VarCorr(m4))
    rec$lme4_equivalent <- list(formula = paste(cs$fixed, "+", cs$lme4_random), logLik = as.numeric(logLik(m4)),
                                beta = named(fixef(m4)), sigma = sigma(m4),
                                varcorr = lapply(seq_len(nrow(vc)), function(i)
                                  list(grp = vc$grp[i], var1 = if (is.na(vc$var1[i])) NULL else vc$var1[i],
                                       var2 = if (is.na(vc$var2[i])) NULL else vc$var2[i],
                                       vcov = vc$vcov[i], sdcor = vc$sdcor[i])))
  }
  ## the difference between the default and the tight fit
  d <- summary_fit(def$value)
  rec$default_vs_tight <- list(
    logLik_tight_minus_default = as.numeric(l) - d$logLik,
    max_abs_beta_diff = max(abs(fixef(fit) - fixef(def$value))),
    max_rel_modelStruct_diff = max(abs(coef(fit$modelStruct, unconstrained = FALSE) -
                                         coef(def$value$modelStruct, unconstrained = FALSE)) /
                                     pmax(abs(coef(fit$modelStruct, unconstrained = FALSE)), 1e-8)),
    sigma_rel_diff = abs(fit$sigma - def$value$sigma) / fit$sigma)
  rec$profile_check <- profile_check(cs, method, fit)
  ## the spread between the two tight fits: how well the optimum is pinned down
  o <- if (use2) t1$value else t2$value
  rec$tight_spread <- list(
    logLik_diff = abs(as.numeric(l) - ll(o)),
    max_abs_beta_diff = max(abs(fixef(fit) - fixef(o))),
    max_rel_modelStruct_diff = max(abs(coef(fit$modelStruct, unconstrained = FALSE) -
                                         coef(o$modelStruct, unconstrained = FALSE)) /
                                     pmax(abs(coef(fit$modelStruct, unconstrained = FALSE)), 1e-8)))
  list(rec = rec, fit = fit)
}

cat("== nlme cases ==\n")
NLME <- list(); NLME_FITS <- list()
for (cs in NLME_CASES) for (method in c("REML", "ML")) {
  id <- paste0(cs$id, "_", tolower(method))
  cat(" ", id, "\n")
  r <- nlme_record(cs, method)
  NLME[[id]] <- r$rec
  NLME_FITS[[id]] <- r$fit
}

## groupedData check: nlme's own (groupedData) objects give the same fits as
## the CSVs (Ovary AR(1), Orthodont varIdent, BodyWeight CAR1), REML.
gd_check <- suppressWarnings(list(
  ovary_ar1_reml = lme(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), nlme::Ovary,
                       random = ~ 1 | Mare, correlation = corAR1(), control = TIGHT),
  orthodont_varident_reml = lme(distance ~ age * Sex, nlme::Orthodont, random = ~ 1 | Subject,
                                weights = varIdent(form = ~ 1 | Sex), control = TIGHT),
  bodyweight_varpower_car1_reml = lme(weight ~ Time * Diet, nlme::BodyWeight, random = ~ Time | Rat,
                                      weights = varPower(), correlation = corCAR1(form = ~ Time), control = TIGHT)))
GD_CHECK <- lapply(names(gd_check), function(id)
  list(case = id, logLik_groupedData = as.numeric(logLik(gd_check[[id]])), logLik_csv = NLME[[id]]$logLik,
       modelStruct_groupedData = named(coef(gd_check[[id]]$modelStruct, unconstrained = FALSE))))

cat("== nlme anova ==\n")
ANOVA <- list()
for (p in ANOVA_PAIRS) for (method in c("reml", "ml")) {
  ids <- paste0(p$models, "_", method)
  a <- capture(anova(NLME_FITS[[ids[1]]], NLME_FITS[[ids[2]]]))
  tab <- as.data.frame(a$value)
  rownames(tab) <- ids
  tab$call <- NULL
  ANOVA[[paste0(p$id, "_", method)]] <- list(models = arr(ids), table = df_rows(tab, "row"),
                                             warnings = arr(a$warnings))
}

## ---------------------------------------------------------------------------
## glmmTMB: structured random-effects covariances
## ---------------------------------------------------------------------------
## Tight glmmTMB fits: nlminb with many iterations and rel.tol = 1e-15 (it
## usually ends in "singular convergence (7)" with |gradient| ~ 1e-4), then
## Newton steps on the outer parameters (TMB's gradient, optimHess of it) until
## the gradient stops shrinking (|gradient| ~ 1e-13), then a refit from
## those values (start =) so that every glmmTMB extractor reports the polished
## optimum.  tmb_fit() is the procedure; the record keeps |gradient| before and
## after and the default fit for comparison.
TMB_TIGHT <- glmmTMBControl(optCtrl = list(iter.max = 1e4, eval.max = 1e4, rel.tol = 1e-15))
TMB_TIGHT_TEXT <- paste("glmmTMBControl(optCtrl = list(iter.max = 1e4, eval.max = 1e4, rel.tol = 1e-15)),",
                        "then Newton steps on the outer parameters (TMB gradient, optimHess) and a refit",
                        "with start = the polished parameters")
tmb_fit <- function(formula, data, ...) {
  cap1 <- capture(glmmTMB(formula, data = data, control = TMB_TIGHT, ...))
  m1 <- cap1$value
  obj <- m1$obj; par <- m1$fit$par
  g0 <- max(abs(obj$gr(par)))
  gbest <- g0
  for (k in 1:8) {
    H <- optimHess(par, obj$fn, obj$gr)
    cand <- par - solve(H, drop(obj$gr(par)))
    gc <- max(abs(obj$gr(cand)))
    if (!is.finite(gc) || gc >= gbest) break
    par <- cand; gbest <- gc
    if (gbest < 1e-12) break
  }
  st <- split(unname(par), factor(names(par), levels = unique(names(par))))
  cap2 <- capture(glmmTMB(formula, data = data, control = TMB_TIGHT, start = st, ...))
  m2 <- cap2$value
  list(fit = m2, warnings = c(cap1$warnings, cap2$warnings),
       gradient_nlminb = g0, gradient_polished = max(abs(m2$sdr$gradient.fixed)),
       nlminb_message = m1$fit$message, refit_message = m2$fit$message,
       polish_par_change = max(abs(m2$fit$par - m1$fit$par)))
}

tmb <- function(id, data, formula, lme4_formula = NULL, note = NULL)
  list(id = id, data = data, formula = formula, lme4_formula = lme4_formula, note = note)
TMB_CASES <- list(
  tmb("sleep_diag", "sleepstudy", "Reaction ~ Days + diag(1 + Days | Subject)",
      "Reaction ~ Days + (Days || Subject)", note = "diag(): independent intercept and slope, the same model as lme4's (Days || Subject)"),
  tmb("sleep_us", "sleepstudy", "Reaction ~ Days + us(1 + Days | Subject)", "Reaction ~ Days + (Days | Subject)",
      note = "us(): unstructured, the same model as lme4's (Days | Subject)"),
  tmb("sim_ar1", "covstruct_sim", "y_ar1 ~ x + ar1(0 + tf | g)",
      note = "ar1(): one SD for all five time levels, correlation rho^|i-j| between levels i and j (levels t1..t5 are equally spaced)"),
  tmb("sim_cs", "covstruct_sim", "y_cs ~ x + cs(0 + f | g)",
      note = "glmmTMB 1.1.5's cs() is heterogeneous compound symmetry: one SD per level of f and one common correlation"),
  tmb("sim_diag", "covstruct_sim", "y_cs ~ x + diag(0 + f | g)",
      lme4_formula = "y_cs ~ x + (0 + dummy(f, 'a') | g) + (0 + dummy(f, 'b') | g) + (0 + dummy(f, 'c') | g)",
      note = "diag() over the levels of a factor: one SD per level, no correlation"),
  tmb("sim_us_f", "covstruct_sim", "y_cs ~ x + us(0 + f | g)", "y_cs ~ x + (0 + f | g)",
      note = "us() over the levels of a factor (3 SDs, 3 correlations); cs() is its constrained version")
)
names(TMB_CASES) <- vapply(TMB_CASES, `[[`, "", "id")

tmb_record <- function(cs, REML) {
  d <- get(cs$data)
  tf <- tmb_fit(as.formula(cs$formula), d, REML = REML)
  m <- tf$fit
  def <- suppressWarnings(glmmTMB(as.formula(cs$formula), data = d, REML = REML))
  l <- logLik(m)
  vc <- VarCorr(m)$cond
  blocks <- lapply(vc, function(S) {
    sds <- attr(S, "stddev"); cr <- attr(S, "correlation")
    code <- unname(attr(S, "blockCode"))
    struct <- names(glmmTMB:::.valid_covstruct)[match(code, glmmTMB:::.valid_covstruct)]
    out <- list(terms = arr(names(sds)), sd = named(sds), corr = mat_rows(cr), cov = mat_rows(as.matrix(S)),
                struct = struct)
    ## the single correlation parameter of ar1() and cs(): corr[1, 2]
    if (struct %in% c("ar1", "cs")) out$rho <- cr[1, 2]
    out
  })
  ct <- summary(m)$coefficients$cond
  rec <- list(
    data = DATA_PATH[[cs$data]], formula = cs$formula, REML = REML, note = cs$note,
    control = TMB_TIGHT_TEXT,
    logLik = as.numeric(l), logLik_df = attr(l, "df"), AIC = AIC(m), BIC = BIC(m),
    minus2logLik = -2 * as.numeric(l), nobs = nobs(m),
    beta = named(fixef(m)$cond),
    vcov = named_matrix(vcov(m)$cond),
    coef_table = df_rows(ct, "term"),
    sigma = sigma(m),
    varcorr = blocks,
    theta = named(getME(m, "theta"), paste0("theta", seq_along(getME(m, "theta")))),
    par = named(m$fit$par, make.unique(names(m$fit$par))),
    max_abs_gradient = max(abs(m$sdr$gradient.fixed)),
    max_abs_gradient_before_polish = tf$gradient_nlminb,
    polish_par_change = tf$polish_par_change,
    nlminb_message = tf$nlminb_message, refit_message = tf$refit_message,
    pdHess = m$sdr$pdHess,
    fit_warnings = arr(tf$warnings),
    default_fit = list(control = "glmmTMBControl() (defaults)", logLik = as.numeric(logLik(def)),
                       beta = named(fixef(def)$cond), par = named(def$fit$par, make.unique(names(def$fit$par))),
                       max_abs_gradient = max(abs(def$sdr$gradient.fixed))),
    default_vs_tight = list(logLik_tight_minus_default = as.numeric(l) - as.numeric(logLik(def)),
                            max_abs_par_diff = max(abs(m$fit$par - def$fit$par)))
  )
  if (!is.null(cs$lme4_formula)) {
    m4 <- suppressMessages(suppressWarnings(lme4::lmer(as.formula(cs$lme4_formula), data = d, REML = REML,
      control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5)))))
    rec$lme4_equivalent <- list(formula = cs$lme4_formula, logLik = as.numeric(logLik(m4)),
                                beta = named(fixef(m4)), sigma = sigma(m4))
  }
  rec
}
cat("== glmmTMB cases ==\n")
TMB <- list()
for (cs in TMB_CASES) for (REML in c(TRUE, FALSE)) {
  id <- paste0(cs$id, if (REML) "_reml" else "_ml")
  cat(" ", id, "\n")
  TMB[[id]] <- tmb_record(cs, REML)
}

## ---------------------------------------------------------------------------
## Write
## ---------------------------------------------------------------------------
res <- list(
  meta = list(
    R_version = R.version.string,
    packages = list(nlme = as.character(packageVersion("nlme")),
                    lme4 = as.character(packageVersion("lme4")),
                    glmmTMB = as.character(packageVersion("glmmTMB")),
                    TMB = as.character(packageVersion("TMB")),
                    Matrix = as.character(packageVersion("Matrix")),
                    jsonlite = as.character(packageVersion("jsonlite"))),
    date = format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z"),
    command = COMMAND, platform = R.version$platform, file = "structures_reference.json",
    nlme_control_tight = TIGHT_TEXT, nlme_control_tight2 = TIGHT2_TEXT,
    glmmTMB_control = TMB_TIGHT_TEXT,
    lme4_control_crosscheck = "lmerControl(optimizer = 'bobyqa', optCtrl = list(rhoend = 1e-12, maxfun = 1e5))",
    sim_seed = 20),
  nlme = NLME,
  anova = ANOVA,
  groupedData_check = GD_CHECK,
  glmmTMB = TMB
)
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, na = "null", null = "null", pretty = TRUE), OUT,
           useBytes = TRUE)
cat("wrote", OUT, "\n")

## summary table: default vs tight, and the lme4 cross-checks
cat("\n== default vs tight (nlme) ==\n")
for (id in names(NLME)) {
  r <- NLME[[id]]
  pc <- if (length(r$profile_check)) max(sapply(r$profile_check, `[[`, "rel_offset")) else NA
  ok <- if (length(r$profile_check)) all(sapply(r$profile_check, `[[`, "is_max")) else NA
  cat(sprintf("%-30s prof rel offset %8.1e max %s | ", id, pc, ok))
  cat(sprintf("%-30s %.10f  t-d %9.2e  |db| %8.2e  rel(str) %8.2e  spread: %8.1e %8.1e %8.1e %s%s\n",
              id, r$logLik, r$default_vs_tight$logLik_tight_minus_default, r$default_vs_tight$max_abs_beta_diff,
              r$default_vs_tight$max_rel_modelStruct_diff, r$tight_spread$logLik_diff,
              r$tight_spread$max_abs_beta_diff, r$tight_spread$max_rel_modelStruct_diff, r$tight_used,
              if (!is.null(r$lme4_equivalent)) sprintf("  lme4 %.10f", r$lme4_equivalent$logLik) else ""))
}
cat("\n== glmmTMB ==\n")
for (id in names(TMB)) {
  r <- TMB[[id]]
  cat(sprintf("%-16s logLik %.10f  |grad| %8.2e (was %8.2e)  tight-default %9.2e%s\n", id, r$logLik, r$max_abs_gradient,
              r$max_abs_gradient_before_polish,
              r$default_vs_tight$logLik_tight_minus_default,
              if (!is.null(r$lme4_equivalent)) sprintf("  lme4 %.10f", r$lme4_equivalent$logLik) else ""))
}
for (g in GD_CHECK) cat(sprintf("groupedData check %-30s %.12f %.12f\n", g$case, g$logLik_groupedData, g$logLik_csv))
