## =============================================================================
## make_references.R -- R reference numbers for the hierbayes test-suite
## =============================================================================
##
## What it makes (all under tests/reference/):
##   lmer_reference.json       lme4::lmer fits (REML and ML) of every LMM case
##   inference_reference.json  lmerTest (Satterthwaite) / pbkrtest (Kenward-Roger)
##                             tables, ranova, confint (profile / Wald / boot),
##                             lme4 anova model comparisons, Nakagawa R^2, ICC,
##                             lmerTest's Satterthwaite internals
##   glmer_reference.json      lme4::glmer fits (binomial, poisson)
##   data/dyestuff2.csv        lme4::Dyestuff2 exported (classic singular fit)
##
## How to rerun (from the repository root):
##   python tests/reference/make_sim_data.py      # only if data/sim_*.csv changed
##   Rscript tests/reference/make_references.R
##
## Needs R with lme4, lmerTest, pbkrtest, Matrix, glmmTMB (versions recorded),
## jsonlite.  Runtime is about a minute, most of it the two parametric
## bootstraps (confint(method = "boot", nsim = 1000)) on the hsb data.
## The JSON layout is documented in tests/reference/README.md.
## =============================================================================

suppressPackageStartupMessages({
  library(Matrix)
  library(lme4)
  library(lmerTest)   # masks lme4::lmer; we always call lme4::lmer explicitly
  library(pbkrtest)
  library(jsonlite)
})

if (!file.exists("hierbayes/datasets/data/sleepstudy.csv"))
  stop("run this script from the repository root: Rscript tests/reference/make_references.R")

REF_DIR  <- "tests/reference"
DATA_DIR <- "hierbayes/datasets/data"
SIM_DIR  <- file.path(REF_DIR, "data")
COMMAND  <- "Rscript tests/reference/make_references.R"

## ---------------------------------------------------------------------------
## JSON helpers: matrices -> list of rows, named vectors -> objects,
## data frames -> list of row objects with a "term"/"row" key.
## ---------------------------------------------------------------------------
arr <- function(x) I(unname(as.vector(x)))            # always a JSON array
named <- function(x, nms = names(x)) {                 # {name: value}
  if (length(x) == 0) return(structure(list(), names = character(0)))
  stats::setNames(as.list(unname(as.vector(x))), nms)
}
mat_rows <- function(m) {                              # [[row], [row], ...]
  m <- as.matrix(m)
  lapply(seq_len(nrow(m)), function(i) arr(m[i, ]))
}
named_matrix <- function(m) {
  m <- as.matrix(m)
  list(rownames = arr(rownames(m) %||% character(0)),
       colnames = arr(colnames(m) %||% character(0)),
       values = mat_rows(m))
}
`%||%` <- function(a, b) if (is.null(a)) b else a
df_rows <- function(df, key = "term") {
  df <- as.data.frame(df, check.names = FALSE, stringsAsFactors = FALSE)
  rn <- rownames(df)
  lapply(seq_len(nrow(df)), function(i) {
    row <- lapply(df[i, , drop = FALSE], function(v) {
      v <- v[[1]]
      if (is.factor(v)) v <- as.character(v)
      v
    })
    c(stats::setNames(list(rn[i]), key), row)
  })
}
write_json_file <- function(obj, path) {
  txt <- jsonlite::toJSON(obj, auto_unbox = TRUE, digits = NA, na = "null",
                          null = "null", pretty = TRUE)
  writeLines(txt, path, useBytes = TRUE)
  cat("wrote", path, "\n")
}

## Run an expression, collecting warnings and messages instead of printing them.
capture <- function(expr) {
  warns <- character(0); msgs <- character(0)
  value <- withCallingHandlers(expr,
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") },
    message = function(m) { msgs <<- c(msgs, trimws(conditionMessage(m))); invokeRestart("muffleMessage") })
  list(value = value, warnings = warns, messages = msgs)
}
## Run an expression; on error return list(error = message).
safely <- function(expr) tryCatch(expr, error = function(e) list(error = conditionMessage(e)))

## Record of every warning / non-routine message seen while making the
## references (printed at the end; the JSON keeps all of them).
ROUTINE <- "^(Computing (profile|bootstrap) confidence intervals|refitting model\\(s\\) with ML)"
PROBLEMS <- list()
note_problems <- function(file, id, what, cap) {
  cap$messages <- cap$messages[!grepl(ROUTINE, cap$messages)]
  if (length(cap$warnings) || length(cap$messages))
    PROBLEMS[[length(PROBLEMS) + 1]] <<- list(file = file, case = id, step = what,
                                               warnings = cap$warnings, messages = cap$messages)
}

## ---------------------------------------------------------------------------
## Data
## ---------------------------------------------------------------------------
## Export lme4::Dyestuff2 so Python and R read the same file.
write.csv(lme4::Dyestuff2, file.path(SIM_DIR, "dyestuff2.csv"), row.names = FALSE)

DATASETS <- list(
  sleepstudy  = list(path = file.path(DATA_DIR, "sleepstudy.csv"),  factors = "Subject"),
  sleep2      = list(path = file.path(DATA_DIR, "sleep2.csv"),      factors = "Subject"),
  hsb         = list(path = file.path(DATA_DIR, "hsb.csv"),         factors = "school"),
  penicillin  = list(path = file.path(DATA_DIR, "penicillin.csv"),  factors = c("plate", "sample")),
  pastes      = list(path = file.path(DATA_DIR, "pastes.csv"),      factors = c("batch", "cask", "sample")),
  dyestuff    = list(path = file.path(DATA_DIR, "dyestuff.csv"),    factors = "Batch"),
  dyestuff2   = list(path = file.path(SIM_DIR,  "dyestuff2.csv"),   factors = "Batch"),
  cbpp        = list(path = file.path(DATA_DIR, "cbpp.csv"),        factors = c("herd", "period")),
  grouseticks = list(path = file.path(DATA_DIR, "grouseticks.csv"), factors = c("INDEX", "BROOD", "YEAR", "LOCATION")),
  sim_nested  = list(path = file.path(SIM_DIR, "sim_nested.csv"),   factors = c("school", "student", "treatment")),
  sim_nested2 = list(path = file.path(SIM_DIR, "sim_nested2.csv"),  factors = c("school", "class")),
  sim_crossed = list(path = file.path(SIM_DIR, "sim_crossed.csv"),  factors = c("student", "rater", "treatment")),
  sim_transforms = list(path = file.path(SIM_DIR, "sim_transforms.csv"), factors = c("g", "k")),
  sim_rankdef = list(path = file.path(SIM_DIR, "sim_rankdef.csv"),  factors = "g"),
  sim_binary  = list(path = file.path(SIM_DIR, "sim_binary.csv"),   factors = "g"),
  sim_poisson_crossed = list(path = file.path(SIM_DIR, "sim_poisson_crossed.csv"), factors = c("site", "year"))
)
load_data <- function(name) {
  spec <- DATASETS[[name]]
  if (!file.exists(spec$path))
    stop(spec$path, " is missing: run `python tests/reference/make_sim_data.py` first")
  d <- read.csv(spec$path, stringsAsFactors = FALSE)
  for (f in spec$factors) d[[f]] <- factor(d[[f]])
  if (name == "hsb") d$sector <- factor(d$sector, levels = c("Public", "Catholic"))
  d
}
DATA <- lapply(stats::setNames(names(DATASETS), names(DATASETS)), load_data)
for (nm in names(DATA)) assign(nm, DATA[[nm]], envir = globalenv())

## ---------------------------------------------------------------------------
## Case lists
## ---------------------------------------------------------------------------
lmm <- function(id, formula, data, REML = TRUE, new_levels = FALSE, py_formula = NULL)
  list(id = id, formula = formula, data = data, REML = REML,
       new_levels = new_levels, py_formula = py_formula)

LMM_CASES <- list(
  lmm("sleep_int_reml",       "Reaction ~ Days + (1|Subject)",        "sleepstudy"),
  lmm("sleep_int_ml",         "Reaction ~ Days + (1|Subject)",        "sleepstudy", FALSE),
  lmm("sleep_slope_reml",     "Reaction ~ Days + (Days|Subject)",     "sleepstudy", new_levels = TRUE),
  lmm("sleep_slope_ml",       "Reaction ~ Days + (Days|Subject)",     "sleepstudy", FALSE),
  lmm("sleep_zcp_reml",       "Reaction ~ Days + (Days||Subject)",    "sleepstudy"),
  lmm("sleep_zcp_ml",         "Reaction ~ Days + (Days||Subject)",    "sleepstudy", FALSE),
  lmm("sleep_slopeonly_reml", "Reaction ~ Days + (0 + Days|Subject)", "sleepstudy"),
  lmm("sleep_slopeonly_ml",   "Reaction ~ Days + (0 + Days|Subject)", "sleepstudy", FALSE),
  lmm("sleep_null_reml",      "Reaction ~ 1 + (1|Subject)",           "sleepstudy"),
  lmm("sleep_noint_reml",     "Reaction ~ 0 + Days + (Days|Subject)", "sleepstudy"),
  lmm("sleep_twobars_reml",   "Reaction ~ Days + (1|Subject) + (0 + Days|Subject)", "sleepstudy"),
  lmm("sleep2_reml",          "Reaction ~ days_deprived + (days_deprived|Subject)", "sleep2", new_levels = TRUE),
  lmm("hsb_null_reml",        "mathach ~ (1|school)",                 "hsb"),
  lmm("hsb_null_ml",          "mathach ~ (1|school)",                 "hsb", FALSE),
  lmm("hsb_cses_reml",        "mathach ~ cses + (1|school)",          "hsb"),
  lmm("hsb_cses_ml",          "mathach ~ cses + (1|school)",          "hsb", FALSE),
  lmm("hsb_cses_slope_reml",  "mathach ~ cses + (cses|school)",       "hsb", new_levels = TRUE),
  lmm("hsb_sector_reml",      "mathach ~ sector * cses + mean_ses + (cses|school)", "hsb"),
  lmm("hsb_sector_ml",        "mathach ~ sector * cses + mean_ses + (cses|school)", "hsb", FALSE),
  lmm("penicillin_reml",      "diameter ~ 1 + (1|plate) + (1|sample)", "penicillin", new_levels = TRUE),
  lmm("pastes_reml",          "strength ~ 1 + (1|batch/cask)",        "pastes", new_levels = TRUE),
  lmm("pastes_colon_reml",    "strength ~ 1 + (1|batch) + (1|batch:cask)", "pastes"),
  lmm("dyestuff_reml",        "Yield ~ 1 + (1|Batch)",                "dyestuff", new_levels = TRUE),
  lmm("dyestuff_ml",          "Yield ~ 1 + (1|Batch)",                "dyestuff", FALSE),
  lmm("dyestuff2_reml",       "Yield ~ 1 + (1|Batch)",                "dyestuff2", new_levels = TRUE),
  lmm("sim_nested_reml",      "y ~ treatment + (1 + treatment|school)", "sim_nested", new_levels = TRUE),
  lmm("sim_nested2_reml",     "y ~ x + (1|school/class)",             "sim_nested2", new_levels = TRUE),
  lmm("sim_crossed_reml",     "score ~ treatment + (1 + treatment|rater) + (1|student)", "sim_crossed", new_levels = TRUE),
  lmm("sim_transforms_reml",  "y ~ log(x) + scale(z) + I(x^2) + k + (1|g)", "sim_transforms", new_levels = TRUE,
      py_formula = "y ~ log(x) + scale(z) + I(x**2) + k + (1|g)"),
  lmm("sim_rankdef_reml",     "y ~ x1 + x2 + x3 + (1|g)",             "sim_rankdef", new_levels = TRUE)
)
names(LMM_CASES) <- vapply(LMM_CASES, `[[`, "", "id")

INFERENCE_IDS <- c("sleep_null_reml", "sleep_int_reml", "sleep_slope_reml", "sleep_zcp_reml",
                   "sleep2_reml", "hsb_cses_reml", "hsb_cses_slope_reml", "hsb_sector_reml",
                   "penicillin_reml", "pastes_reml", "sim_nested_reml", "sim_crossed_reml")
PROFILE_IDS   <- c("sleep2_reml", "sleep_slope_reml", "sleep_int_reml", "hsb_null_reml", "dyestuff_reml")
BOOT_IDS      <- c("hsb_null_reml", "hsb_cses_reml")
BOOT_NSIM     <- 1000
BOOT_SEED     <- 1
R2_IDS        <- c("sleep_int_reml", "sleep_slope_reml", "hsb_cses_reml")
ICC_IDS       <- c("sleep_null_reml", "hsb_null_reml", "hsb_cses_reml")
INTERNALS_IDS <- c("sleep_int_reml", "sleep_slope_reml")
COMPARISONS <- list(
  list(id = "sleep_int_vs_slope",      models = c("sleep_int_reml", "sleep_slope_reml"), refit = TRUE),
  list(id = "sleep_int_vs_slope_norefit", models = c("sleep_int_reml", "sleep_slope_reml"), refit = FALSE),
  list(id = "sleep_zcp_vs_slope",      models = c("sleep_zcp_reml", "sleep_slope_reml"), refit = TRUE),
  list(id = "sleep_null_vs_int",       models = c("sleep_null_reml", "sleep_int_reml"), refit = TRUE),
  list(id = "hsb_cses_vs_cses_slope",  models = c("hsb_cses_reml", "hsb_cses_slope_reml"), refit = TRUE),
  list(id = "hsb_null_ml_vs_cses_ml",  models = c("hsb_null_ml", "hsb_cses_ml"), refit = TRUE)
)

glmm <- function(id, formula, data, family, link, nAGQ = 1L, weights = NULL, extras = FALSE)
  list(id = id, formula = formula, data = data, family = family, link = link,
       nAGQ = nAGQ, weights = weights, extras = extras)
GLMM_CASES <- list(
  glmm("cbpp_laplace", "cbind(incidence, size - incidence) ~ period + (1 | herd)", "cbpp", "binomial", "logit", extras = TRUE),
  glmm("cbpp_agq",     "cbind(incidence, size - incidence) ~ period + (1 | herd)", "cbpp", "binomial", "logit", nAGQ = 25L),
  glmm("cbpp_prop",    "incidence/size ~ period + (1 | herd)", "cbpp", "binomial", "logit", weights = "size"),
  glmm("grouse_nested", "TICKS ~ YEAR + cHEIGHT + (1|LOCATION/BROOD)", "grouseticks", "poisson", "log"),
  glmm("sim_binary_slope",  "y ~ x + (x|g)", "sim_binary", "binomial", "logit"),
  glmm("sim_binary_probit", "y ~ x + (1|g)", "sim_binary", "binomial", "probit"),
  glmm("sim_poisson_crossed", "count ~ x + (1|site) + (1|year)", "sim_poisson_crossed", "poisson", "log")
)
names(GLMM_CASES) <- vapply(GLMM_CASES, `[[`, "", "id")

## ---------------------------------------------------------------------------
## Pieces shared by the lmer and glmer records
## ---------------------------------------------------------------------------
varcorr_rows <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  lapply(seq_len(nrow(vc)), function(i)
    list(grp = vc$grp[i], var1 = if (is.na(vc$var1[i])) NULL else vc$var1[i],
         var2 = if (is.na(vc$var2[i])) NULL else vc$var2[i],
         vcov = vc$vcov[i], sdcor = vc$sdcor[i]))
}

## Conditional covariance of the random effects, per level, as k x k matrices.
## lme4 returns one k x k x nlevel array when the factor has a single term, and
## a list of per-term arrays when several terms share the factor (e.g. (x||g)):
## then the cross-term entries are not computed and are written as null.
ranef_record <- function(m) {
  re <- ranef(m, condVar = TRUE)
  out <- list()
  for (g in names(re)) {
    df <- re[[g]]
    pv <- attr(df, "postVar")
    k <- ncol(df); nl <- nrow(df)
    full <- array(NA_real_, c(k, k, nl))
    if (is.list(pv)) {
      pos <- 0
      for (blk in pv) {
        kb <- dim(blk)[1]; idx <- pos + seq_len(kb)
        full[idx, idx, ] <- blk
        pos <- pos + kb
      }
      layout <- "blocks"
    } else {
      full[, , ] <- pv
      layout <- "full"
    }
    condsd <- matrix(NA_real_, nl, k)
    for (j in seq_len(nl)) condsd[j, ] <- sqrt(diag(matrix(full[, , j], k, k)))
    out[[g]] <- list(
      levels = arr(rownames(df)),
      terms = arr(colnames(df)),
      values = mat_rows(as.matrix(df)),
      condsd = mat_rows(condsd),
      condvar_layout = layout,
      condvar = lapply(seq_len(nl), function(j) mat_rows(matrix(full[, , j], k, k)))
    )
  }
  out
}
coef_record <- function(m) {
  cf <- coef(m)
  lapply(cf, function(df) list(levels = arr(rownames(df)), terms = arr(colnames(df)),
                               values = mat_rows(as.matrix(df))))
}
conv_messages <- function(m) arr(as.character(m@optinfo$conv$lme4$messages %||% character(0)))
vcov_record <- function(m) {
  V <- as.matrix(vcov(m))
  list(names = arr(colnames(V)), values = mat_rows(V))
}
corr_record <- function(m) {
  V <- as.matrix(vcov(m))
  list(names = arr(colnames(V)), values = mat_rows(cov2cor(V)))
}
## lme4's starting theta: 1 on diagonal elements of the relative covariance
## factors (lower bound 0), 0 on off-diagonal ones (lower bound -Inf).
theta_start <- function(m) ifelse(getME(m, "lower") == 0, 1, 0)

## Newdata with unseen grouping levels: the first 5 rows, where rows 1-2 get the
## level "NEW" in every grouping variable of the random-effects terms.
grouping_vars <- function(m) unique(unlist(lapply(findbars(formula(m)), function(b) all.vars(b[[3]]))))
new_level_data <- function(m, d) {
  nd <- d[1:5, , drop = FALSE]
  for (v in grouping_vars(m)) {
    x <- as.character(nd[[v]]); x[1:2] <- "NEW"
    nd[[v]] <- factor(x)
  }
  nd
}

## ---------------------------------------------------------------------------
## lmer record
## ---------------------------------------------------------------------------
## The call is built with the literal formula and the data set's name (the data
## frames live in the global environment), so update()/ranova()/refits work and
## m@call prints like an interactive call.
lmm_call <- function(case, fun = "lme4::lmer", devFunOnly = FALSE) {
  cl <- list(str2lang(fun), formula = str2lang(case$formula), data = as.name(case$data),
             REML = case$REML)
  if (devFunOnly) cl$devFunOnly <- TRUE
  as.call(cl)
}
fit_lmm <- function(case, fun = "lme4::lmer")
  capture(eval(lmm_call(case, fun), envir = globalenv()))

lmer_record <- function(case) {
  d <- DATA[[case$data]]
  cap <- fit_lmm(case)
  note_problems("lmer", case$id, "fit", cap)
  m <- cap$value
  X <- getME(m, "X")
  th <- getME(m, "theta")
  devfun <- suppressMessages(eval(lmm_call(case, devFunOnly = TRUE), envir = globalenv()))
  pts <- list(start = theta_start(m), scaled_0.7 = 0.7 * th, fitted = th)
  ll <- logLik(m)
  q <- quantile(residuals(m, type = "pearson", scaled = TRUE))
  names(q) <- c("Min", "1Q", "Median", "3Q", "Max")
  head5 <- d[1:5, , drop = FALSE]
  rec <- list(
    data = DATASETS[[case$data]]$path,
    formula = case$formula,
    py_formula = case$py_formula,
    REML = case$REML,
    objective = if (case$REML) REMLcrit(m) else deviance(m),
    reml_crit = if (case$REML) REMLcrit(m) else NULL,
    deviance_ml = -2 * as.numeric(logLik(m, REML = FALSE)),
    theta = named(th),
    lower = named(getME(m, "lower"), names(th)),
    beta = named(fixef(m)),
    vcov = vcov_record(m),
    corr_fixef = corr_record(m),
    sigma = sigma(m),
    nobs = nobs(m),
    ngrps = named(ngrps(m)),
    grouping_factors = arr(names(getME(m, "flist"))),
    cnms = lapply(getME(m, "cnms"), arr),
    cnms_factors = arr(names(getME(m, "cnms"))),
    df_residual = df.residual(m),
    varcorr = varcorr_rows(m),
    ranef = ranef_record(m),
    coef = coef_record(m),
    logLik = as.numeric(ll), logLik_df = attr(ll, "df"),
    AIC = AIC(m), BIC = BIC(m),
    isSingular = isSingular(m),
    conv_messages = conv_messages(m),
    fit_warnings = arr(cap$warnings),
    fit_messages = arr(cap$messages),
    fitted = arr(fitted(m)),
    residuals = arr(residuals(m)),
    scaled_residual_quantiles = named(q),
    devfun = lapply(pts, function(p) list(theta = arr(p), value = devfun(p))),
    predict_head5 = list(rows = arr(1:5),
                         re_form_NULL = arr(predict(m, newdata = head5)),
                         re_form_NA = arr(predict(m, newdata = head5, re.form = NA))),
    X_colnames = arr(colnames(X))
  )
  if (case$new_levels) {
    nd <- new_level_data(m, d)
    rec$predict_new_levels <- list(
      rows = arr(1:5), new_level = "NEW", new_level_rows = arr(1:2),
      grouping_vars = arr(grouping_vars(m)),
      allow_new_levels = TRUE,
      re_form_NULL = arr(predict(m, newdata = nd, allow.new.levels = TRUE)))
  }
  dropped <- attr(X, "col.dropped")
  if (!is.null(dropped)) {
    rec$col_dropped <- named(dropped)   # {name: 1-based column index in the full X}
    rec$rank_message <- arr(c(cap$messages, cap$warnings))
  }
  if (case$id == "pastes_reml")
    rec$note <- "lme4 expands (1|batch/cask) to (1|batch) + (1|batch:cask) and names the nested factor 'cask:batch'"
  rec
}

## ---------------------------------------------------------------------------
## inference record (lmerTest / pbkrtest / lme4 confint)
## ---------------------------------------------------------------------------
coef_table <- function(m, ddf) df_rows(summary(m, ddf = ddf)$coefficients, "term")
anova_table <- function(m, type, ddf) df_rows(anova(m, type = type, ddf = ddf), "term")

## Nakagawa R^2 by hand (Nakagawa & Schielzeth 2013; Johnson 2014 for slopes).
nakagawa <- function(m) {
  X <- getME(m, "X")
  eta_f <- as.vector(X %*% fixef(m))
  n <- length(eta_f)
  var_f <- var(eta_f)                       # n - 1 denominator (used below)
  var_f_n <- var_f * (n - 1) / n            # n denominator, for reference
  ## per random-effects term k: mean(diag(Z_k (I (x) Sigma_k) Z_k')), i.e. the
  ## mean over observations of z_i' Sigma_k z_i (Johnson 2014), where z_i holds
  ## the term's covariates for observation i.  getME(m, "Ztlist") has one
  ## nlevels x n block per column of each term, in the order of unlist(cnms);
  ## the column sums of a block are that covariate's values.
  vc <- VarCorr(m)
  cn <- getME(m, "cnms")
  Ztl <- getME(m, "Ztlist")
  n_obs <- nobs(m)
  terms_r <- list()
  var_r <- 0
  pos <- 0
  for (i in seq_along(cn)) {
    k <- length(cn[[i]])
    Zi <- vapply(seq_len(k), function(j) as.vector(colSums(Ztl[[pos + j]])), numeric(n_obs))
    Zi <- matrix(Zi, n_obs, k)
    pos <- pos + k
    S <- as.matrix(vc[[i]])[cn[[i]], cn[[i]], drop = FALSE]
    contrib <- mean(rowSums((Zi %*% S) * Zi))
    terms_r[[length(terms_r) + 1]] <- list(group = names(vc)[i], terms = arr(cn[[i]]),
                                           variance = contrib)
    var_r <- var_r + contrib
  }
  var_e <- sigma(m)^2
  tot <- var_f + var_r + var_e
  list(var_fixed = var_f, var_fixed_denominator = "n-1",
       var_fixed_n_denominator = var_f_n,
       var_random = var_r, var_random_terms = terms_r, var_residual = var_e,
       R2_marginal = var_f / tot, R2_conditional = (var_f + var_r) / tot)
}
icc_record <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  var_r <- sum(vc$vcov[vc$grp != "Residual" & is.na(vc$var2)])
  var_e <- sigma(m)^2
  list(var_random = var_r, var_residual = var_e, ICC_adjusted = var_r / (var_r + var_e))
}
confint_rows <- function(ci) {
  ci <- as.matrix(ci)
  lapply(seq_len(nrow(ci)), function(i)
    list(term = rownames(ci)[i], lower = unname(ci[i, 1]), upper = unname(ci[i, 2])))
}
confint_record <- function(m, id, method, ...) {
  cap <- capture(confint(m, method = method, ...))
  note_problems("inference", id, paste0("confint ", method), cap)
  list(level = 0.95, rows = confint_rows(cap$value),
       warnings = arr(cap$warnings), messages = arr(cap$messages))
}

inference_record <- function(case) {
  id <- case$id
  rec <- list(data = DATASETS[[case$data]]$path, formula = case$formula, REML = case$REML)
  need_lmerTest <- id %in% c(INFERENCE_IDS, "sleep_slope_ml")
  if (need_lmerTest) {
    cap <- fit_lmm(case, "lmerTest::lmer")
    note_problems("inference", id, "lmerTest fit", cap)
    mt <- cap$value
    rec$coef_satterthwaite <- coef_table(mt, "Satterthwaite")
    if (case$REML) {
      kr <- capture(coef_table(mt, "Kenward-Roger"))
      note_problems("inference", id, "summary KR", kr)
      rec$coef_kenward_roger <- kr$value
    }
    has_fixed <- length(attr(terms(mt), "term.labels")) > 0
    if (has_fixed) {
      rec$anova_type3_satterthwaite <- anova_table(mt, 3, "Satterthwaite")
      rec$anova_type1_satterthwaite <- anova_table(mt, 1, "Satterthwaite")
      if (case$REML) {
        kr <- capture(anova_table(mt, 3, "Kenward-Roger"))
        note_problems("inference", id, "anova KR", kr)
        rec$anova_type3_kenward_roger <- kr$value
      }
    }
    if (id %in% INFERENCE_IDS) {
      rn <- capture(ranova(mt))
      note_problems("inference", id, "ranova", rn)
      rec$ranova <- df_rows(rn$value, "row")
    }
    if (id %in% INTERNALS_IDS) {
      rec$lmerTest_internals <- list(
        varpar = named(c(getME(mt, "theta"), sigma = sigma(mt))),
        vcov_varpar = mat_rows(mt@vcov_varpar),
        Jac_list = lapply(mt@Jac_list, mat_rows),
        note = "varpar = (theta, sigma); Jac_list[[i]] = d vcov(beta) / d varpar[i]")
    }
  }
  ## lme4 fit for confint (profile / Wald / boot), R^2 and ICC
  m <- if (id %in% c(PROFILE_IDS, BOOT_IDS, R2_IDS, ICC_IDS)) fit_lmm(case)$value else NULL
  if (id %in% PROFILE_IDS) {
    rec$confint_profile <- confint_record(m, id, "profile")
    rec$confint_wald <- confint_record(m, id, "Wald")
  }
  if (id %in% BOOT_IDS) {
    cat("  bootstrap", id, "(nsim =", BOOT_NSIM, ")\n")
    rec$confint_boot <- c(confint_record(m, id, "boot", nsim = BOOT_NSIM, seed = BOOT_SEED),
                          list(nsim = BOOT_NSIM, seed = BOOT_SEED, boot_type = "perc",
                               note = "Monte Carlo reference: parametric bootstrap, lme4 confint(method='boot', nsim, seed)"))
  }
  if (id %in% R2_IDS) rec$r2_nakagawa <- nakagawa(m)
  if (id %in% ICC_IDS) rec$icc <- icc_record(m)
  rec
}

comparison_record <- function(cmp, fits) {
  env <- new.env()
  for (nm in cmp$models) assign(nm, fits[[nm]], envir = env)
  cl <- as.call(c(list(as.name("anova")), lapply(cmp$models, as.name), list(refit = cmp$refit)))
  cap <- capture(eval(cl, envir = env))
  note_problems("inference", cmp$id, "anova", cap)
  list(models = arr(cmp$models),
       formulas = arr(vapply(cmp$models, function(x) LMM_CASES[[x]]$formula, "")),
       refit = cmp$refit,
       call = paste(deparse(cl), collapse = ""),
       table = df_rows(cap$value, "row"),
       messages = arr(c(cap$messages, cap$warnings)))
}

## ---------------------------------------------------------------------------
## glmer record
## ---------------------------------------------------------------------------
fit_glmm <- function(case, formula = case$formula, devFunOnly = FALSE) {
  cl <- list(quote(lme4::glmer), formula = str2lang(formula), data = as.name(case$data),
             family = call(case$family, link = case$link), nAGQ = case$nAGQ)
  if (!is.null(case$weights)) cl$weights <- as.name(case$weights)
  if (devFunOnly) cl$devFunOnly <- TRUE
  capture(eval(as.call(cl), envir = globalenv()))
}

glmer_record <- function(case) {
  d <- DATA[[case$data]]
  cap <- fit_glmm(case)
  note_problems("glmer", case$id, "fit", cap)
  m <- cap$value
  ll <- logLik(m)
  ct <- summary(m)$coefficients
  rec <- list(
    data = DATASETS[[case$data]]$path,
    formula = case$formula,
    family = case$family, link = case$link, nAGQ = case$nAGQ,
    weights = case$weights,
    deviance = deviance(m),
    minus2logLik = -2 * as.numeric(ll),
    logLik = as.numeric(ll), logLik_df = attr(ll, "df"),
    AIC = AIC(m), BIC = BIC(m),
    df_residual = df.residual(m),
    nobs = nobs(m),
    ngrps = named(ngrps(m)),
    theta = named(getME(m, "theta")),
    lower = named(getME(m, "lower"), names(getME(m, "theta"))),
    beta = named(fixef(m)),
    vcov = vcov_record(m),
    coef_table = df_rows(ct, "term"),
    varcorr = varcorr_rows(m),
    ranef = ranef_record(m),
    fitted = arr(fitted(m)),
    predict_link_head5 = arr(predict(m, newdata = d[1:5, , drop = FALSE], type = "link")),
    residuals = list(deviance = arr(residuals(m, "deviance")),
                     pearson = arr(residuals(m, "pearson")),
                     response = arr(residuals(m, "response")),
                     working = arr(residuals(m, "working"))),
    isSingular = isSingular(m),
    conv_messages = conv_messages(m),
    fit_warnings = arr(cap$warnings),
    fit_messages = arr(cap$messages)
  )
  if (case$family == "poisson") {
    chi2 <- sum(residuals(m, "pearson")^2)
    rdf <- df.residual(m)
    rec$overdispersion <- list(pearson_chisq = chi2, df_residual = rdf, ratio = chi2 / rdf,
                               p_value = pchisq(chi2, rdf, lower.tail = FALSE))
  }
  if (case$extras) {
    ## model without period, compared with lme4's anova
    m0_form <- sub("period \\+ ", "", case$formula)
    m0 <- fit_glmm(case, m0_form)$value
    env <- new.env(); assign("cbpp_noperiod", m0, env); assign(case$id, m, env)
    cmp <- capture(eval(call("anova", as.name("cbpp_noperiod"), as.name(case$id)), env))
    note_problems("glmer", case$id, "anova", cmp)
    rec$anova_vs_noperiod <- list(formula_m0 = m0_form, table = df_rows(cmp$value, "row"))
    rec$confint_wald <- confint_record(m, case$id, "Wald")
    rec$confint_profile <- confint_record(m, case$id, "profile")
    ## devfun at c(theta, beta); a fresh devfun per point (PIRLS state-free)
    th <- getME(m, "theta"); be <- fixef(m)
    pts <- list(fitted = c(th, be), theta1_beta_hat = c(rep(1, length(th)), be))
    rec$devfun <- lapply(pts, function(p) {
      df <- fit_glmm(case, devFunOnly = TRUE)$value
      list(par = arr(p), value = df(p))
    })
    rec$devfun_note <- "glmer(..., devFunOnly=TRUE) (nAGQ=1 stage: argument c(theta, beta)); value is the Laplace deviance -2 log L"
  }
  rec
}

## ---------------------------------------------------------------------------
## Run everything
## ---------------------------------------------------------------------------
meta <- list(
  R_version = R.version.string,
  packages = list(lme4 = as.character(packageVersion("lme4")),
                  lmerTest = as.character(packageVersion("lmerTest")),
                  pbkrtest = as.character(packageVersion("pbkrtest")),
                  Matrix = as.character(packageVersion("Matrix")),
                  glmmTMB = as.character(packageVersion("glmmTMB")),
                  jsonlite = as.character(packageVersion("jsonlite"))),
  date = format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z"),
  command = COMMAND,
  platform = R.version$platform
)

cat("== lmer cases ==\n")
LMER <- list(); FITS <- list()
for (case in LMM_CASES) {
  cat(" ", case$id, "\n")
  LMER[[case$id]] <- lmer_record(case)
  FITS[[case$id]] <- fit_lmm(case)$value
}
write_json_file(list(meta = c(meta, list(file = "lmer_reference.json")), cases = LMER),
                file.path(REF_DIR, "lmer_reference.json"))

cat("== inference cases ==\n")
INF <- list()
inf_ids <- unique(c(INFERENCE_IDS, "sleep_slope_ml", PROFILE_IDS, BOOT_IDS, R2_IDS, ICC_IDS, INTERNALS_IDS))
for (id in inf_ids) {
  cat(" ", id, "\n")
  INF[[id]] <- inference_record(LMM_CASES[[id]])
}
CMP <- list()
for (cmp in COMPARISONS) CMP[[cmp$id]] <- comparison_record(cmp, FITS)
write_json_file(list(meta = c(meta, list(file = "inference_reference.json",
                                         boot = list(nsim = BOOT_NSIM, seed = BOOT_SEED))),
                     cases = INF, comparisons = CMP),
                file.path(REF_DIR, "inference_reference.json"))

cat("== glmer cases ==\n")
GLMER <- list()
for (case in GLMM_CASES) {
  cat(" ", case$id, "\n")
  GLMER[[case$id]] <- glmer_record(case)
}
write_json_file(list(meta = c(meta, list(file = "glmer_reference.json")), cases = GLMER),
                file.path(REF_DIR, "glmer_reference.json"))

## ---------------------------------------------------------------------------
## Targets printed in the teaching materials: compare to the printed precision
## ---------------------------------------------------------------------------
vc_get <- function(rec, grp, var1, var2 = NULL, what = "vcov") {
  for (r in rec$varcorr)
    if (r$grp == grp && identical(r$var1, var1) && identical(r$var2, var2)) return(r[[what]])
  NA_real_
}
ci_get <- function(ci, term, side) {
  for (r in ci$rows) if (r$term == term) return(r[[side]])
  NA_real_
}
se_get <- function(tab, term) {
  for (r in tab) if (r$term == term) return(r[["Std. Error"]])
  NA_real_
}
TARGETS <- list()
## Exact targets must round to the printed number.  Monte Carlo targets (the
## bootstrap) only need to agree within `tol`: a different random stream moves
## a 2.5%/97.5% quantile of 1000 draws by several hundredths.
target <- function(label, value, printed, tol = NULL) {
  dec <- if (grepl("\\.", printed)) nchar(sub(".*\\.", "", printed)) else 0
  kind <- if (is.null(tol)) "printed" else "monte_carlo"
  if (is.null(tol)) tol <- 0.5 * 10^(-dec) * (1 + 1e-8)
  diff <- value - as.numeric(printed)
  ok <- isTRUE(abs(diff) <= tol)
  TARGETS[[length(TARGETS) + 1]] <<- data.frame(target = label, printed = printed,
                                                 value = formatC(value, digits = 10, format = "g"),
                                                 diff = formatC(diff, digits = 3, format = "g"),
                                                 check = kind, ok = ok, stringsAsFactors = FALSE)
}
s2 <- LMER$sleep2_reml
target("sleep2 REML criterion", s2$reml_crit, "1404.1")
target("sleep2 var Subject (Intercept)", vc_get(s2, "Subject", "(Intercept)"), "958.35")
target("sleep2 var Subject days_deprived", vc_get(s2, "Subject", "days_deprived"), "45.78")
target("sleep2 corr", vc_get(s2, "Subject", "(Intercept)", "days_deprived", "sdcor"), "0.18")
target("sleep2 var Residual", vc_get(s2, "Residual", NULL), "651.60")
target("sleep2 fixef (Intercept)", s2$beta[["(Intercept)"]], "267.96742")
target("sleep2 fixef days_deprived", s2$beta[["days_deprived"]], "11.43543")
target("sleep2 SE (Intercept)", sqrt(s2$vcov$values[[1]][1]), "8.265896")
target("sleep2 SE days_deprived", sqrt(s2$vcov$values[[2]][2]), "1.845293")
target("sleep2 sigma", s2$sigma, "25.5264")
hn <- LMER$hsb_null_reml
target("hsb_null REML criterion", hn$reml_crit, "47116.8")
target("hsb_null var school", vc_get(hn, "school", "(Intercept)"), "8.614")
target("hsb_null var Residual", vc_get(hn, "Residual", NULL), "39.148")
target("hsb_null fixef (Intercept)", hn$beta[["(Intercept)"]], "12.6370")
target("hsb_null SE (Intercept)", sqrt(hn$vcov$values[[1]][1]), "0.2444")
hm <- LMER$hsb_null_ml
target("hsb_null_ml AIC", hm$AIC, "47121.8")
target("hsb_null_ml BIC", hm$BIC, "47142.4")
target("hsb_null_ml logLik", hm$logLik, "-23557.9")
target("hsb_null_ml var school", vc_get(hm, "school", "(Intercept)"), "8.553")
hc <- LMER$hsb_cses_reml
target("hsb_cses REML criterion", hc$reml_crit, "46724")
target("hsb_cses var school", vc_get(hc, "school", "(Intercept)"), "8.672")
target("hsb_cses var Residual", vc_get(hc, "Residual", NULL), "37.010")
target("hsb_cses fixef (Intercept)", hc$beta[["(Intercept)"]], "12.6361")
target("hsb_cses SE (Intercept)", sqrt(hc$vcov$values[[1]][1]), "0.2445")
target("hsb_cses fixef cses", hc$beta[["cses"]], "2.1912")
target("hsb_cses SE cses", sqrt(hc$vcov$values[[2]][2]), "0.1087")
target("hsb_cses SE cses (Satterthwaite table)", se_get(INF$hsb_cses_reml$coef_satterthwaite, "cses"), "0.1087")
cp <- INF$sleep2_reml$confint_profile
prof <- list(c(".sig01", "19.0979934", "46.3366599"), c(".sig02", "-0.4051073", "0.8058951"),
             c(".sig03", "4.0079284", "10.2487351"), c(".sigma", "22.4666029", "29.3494509"),
             c("(Intercept)", "251.3443396", "284.5904989"), c("days_deprived", "7.7245247", "15.1463328"))
for (p in prof) {
  target(paste("sleep2 profile", p[1], "lower"), ci_get(cp, p[1], "lower"), p[2])
  target(paste("sleep2 profile", p[1], "upper"), ci_get(cp, p[1], "upper"), p[3])
}
cb <- INF$hsb_null_reml$confint_boot
boot <- list(c(".sig01", "2.594500", "3.354701"), c(".sigma", "6.152638", "6.361720"),
             c("(Intercept)", "12.158422", "13.085090"))
for (p in boot) {
  ## tolerance: half the bootstrap SD implied by our interval, (upper - lower) / 3.92 / 2
  tol <- (ci_get(cb, p[1], "upper") - ci_get(cb, p[1], "lower")) / 3.92 / 2
  target(paste("hsb_null boot", p[1], "lower"), ci_get(cb, p[1], "lower"), p[2], tol)
  target(paste("hsb_null boot", p[1], "upper"), ci_get(cb, p[1], "upper"), p[3], tol)
}
TT <- do.call(rbind, TARGETS)
options(width = 200)
cat("\n== targets from the teaching materials ==\n")
cat("check = printed: value must round to the printed number;",
    "monte_carlo: |diff| <= half the bootstrap SD (different random stream)\n")
print(TT, row.names = FALSE, right = FALSE)
cat(sprintf("%d of %d printed-precision targets match; %d of %d Monte Carlo targets within tolerance\n",
            sum(TT$ok[TT$check == "printed"]), sum(TT$check == "printed"),
            sum(TT$ok[TT$check == "monte_carlo"]), sum(TT$check == "monte_carlo")))

cat("\n== warnings / messages seen while fitting ==\n")
if (length(PROBLEMS) == 0) cat("none\n")
for (p in PROBLEMS) {
  cat(sprintf("[%s] %s (%s)\n", p$file, p$case, p$step))
  for (w in p$warnings) cat("   warning:", w, "\n")
  for (msg in p$messages) cat("   message:", msg, "\n")
}
