## =============================================================================
## make_emmeans.R -- R reference numbers for marginal means, contrasts and
##                   population predictions (issue 21)
## =============================================================================
##
## Writes tests/reference/emmeans_reference.json:
##   fits        the lme4 fits (tightly converged) with beta, theta, sigma,
##               vcov(fit) and, for lmer fits, pbkrtest::vcovAdj(fit) (the
##               Kenward-Roger adjusted covariance that emmeans uses)
##   ref_grids   ref_grid(fit): factor levels, covariate values, grid, weights
##   emmeans     emmeans(fit, specs, by, at, type, lmer.df, regrid) summaries
##               (every column as emmeans names it), the linear functions
##               (linfct, in beta space) and the covariance emmeans used
##   contrasts   contrast(emm, method, adjust) tables, with confint(), the
##               contrast coefficients (over the EMMs) and linfct
##   emtrends    emtrends() slopes (and their pairwise contrasts)
##   predictions lme4 predict(fit, newdata, re.form = NA / NULL) on a small
##               grid, with delta-method SEs of the population predictions
##               (sqrt(diag(X V X')), V = vcov(fit)) on the link and response
##               scales
## and tests/reference/data/oats.csv (nlme::Oats, exported).
##
## Run from the repository root:  Rscript tests/reference/make_emmeans.R
## (about 20 seconds).  Layout: tests/reference/README.md.
## =============================================================================

suppressPackageStartupMessages({
  library(lme4)
  library(emmeans)
  library(pbkrtest)
  library(jsonlite)
})
if (!file.exists("hierbayes/datasets/data/sleepstudy.csv"))
  stop("run from the repository root: Rscript tests/reference/make_emmeans.R")

REF_DIR <- "tests/reference"
OUT <- file.path(REF_DIR, "emmeans_reference.json")
COMMAND <- "Rscript tests/reference/make_emmeans.R"

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
## data frame -> list of row objects, R's column names verbatim, factors as
## strings; no row-name key (emmeans tables are identified by their columns)
df_records <- function(df) {
  df <- as.data.frame(df, check.names = FALSE, stringsAsFactors = FALSE)
  lapply(seq_len(nrow(df)), function(i) lapply(df[i, , drop = FALSE], function(v) {
    v <- v[[1]]
    if (is.factor(v)) v <- as.character(v)
    unname(v)
  }))
}
capture <- function(expr) {
  warns <- character(0); msgs <- character(0)
  value <- withCallingHandlers(expr,
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") },
    message = function(m) { msgs <<- c(msgs, trimws(conditionMessage(m))); invokeRestart("muffleMessage") })
  list(value = value, warnings = warns, messages = msgs)
}

## ---------------------------------------------------------------------------
## Data
## ---------------------------------------------------------------------------
DATA_DIR <- "hierbayes/datasets/data"
oats_out <- as.data.frame(nlme::Oats)[, c("Block", "Variety", "nitro", "yield")]
oats_out$Block <- as.character(oats_out$Block)
oats_out$Variety <- as.character(oats_out$Variety)
oats_out$N <- sprintf("%.1fcwt", oats_out$nitro)      # nitro as a factor: 0.0cwt .. 0.6cwt
write.csv(oats_out, file.path(REF_DIR, "data", "oats.csv"), row.names = FALSE, quote = FALSE)
cat("wrote tests/reference/data/oats.csv\n")

read_factors <- function(path, factors) {
  d <- read.csv(path, stringsAsFactors = FALSE)
  for (f in factors) d[[f]] <- factor(d[[f]])
  d
}
DATA_PATH <- list(oats = file.path(REF_DIR, "data", "oats.csv"),
                  sleepstudy = file.path(DATA_DIR, "sleepstudy.csv"),
                  cbpp = file.path(DATA_DIR, "cbpp.csv"),
                  grouseticks = file.path(DATA_DIR, "grouseticks.csv"))
oats <- read_factors(DATA_PATH$oats, c("Block", "Variety", "N"))
sleepstudy <- read_factors(DATA_PATH$sleepstudy, "Subject")
cbpp <- read_factors(DATA_PATH$cbpp, c("herd", "period"))
grouseticks <- read_factors(DATA_PATH$grouseticks, c("INDEX", "BROOD", "YEAR", "LOCATION"))

## Unbalanced subsets: with balanced data (all the fits above) Kenward-Roger's
## adjusted covariance equals vcov(fit); these make it differ. Every 7th row
## of sleepstudy and every 5th row of Oats, from the 3rd, are removed.
sleep_unbal_out <- read.csv(DATA_PATH$sleepstudy)[-seq(3, 180, by = 7), ]
write.csv(sleep_unbal_out, file.path(REF_DIR, "data", "sleepstudy_unbalanced.csv"), row.names = FALSE, quote = FALSE)
oats_unbal_out <- read.csv(DATA_PATH$oats, stringsAsFactors = FALSE)[-seq(3, 72, by = 5), ]
write.csv(oats_unbal_out, file.path(REF_DIR, "data", "oats_unbalanced.csv"), row.names = FALSE, quote = FALSE)
DATA_PATH$sleep_unbal <- file.path(REF_DIR, "data", "sleepstudy_unbalanced.csv")
DATA_PATH$oats_unbal <- file.path(REF_DIR, "data", "oats_unbalanced.csv")
sleep_unbal <- read_factors(DATA_PATH$sleep_unbal, "Subject")
oats_unbal <- read_factors(DATA_PATH$oats_unbal, c("Block", "Variety", "N"))
## an empty cell (N = 0.6cwt, Variety = Victory): lme4 drops the aliased column, emmeans marks the
## means and contrasts that involve the cell as non-estimable (nonEst, NA here)
oats_missing <- oats[!(oats$N == "0.6cwt" & oats$Variety == "Victory"), ]
cat("wrote tests/reference/data/sleepstudy_unbalanced.csv, oats_unbalanced.csv\n")

## ---------------------------------------------------------------------------
## Fits (tight optimizers; the emmeans numbers depend on the fit only through
## beta and the covariance V, both stored, so a test can check the emmeans
## algebra with the stored beta/V independently of its own optimum)
## ---------------------------------------------------------------------------
LMER_TIGHT <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
LMER_TIGHT_TEXT <- "lmerControl(optimizer = 'bobyqa', optCtrl = list(rhoend = 1e-12, maxfun = 1e5))"
GLMER_TIGHT <- glmerControl(tolPwrss = 1e-12, optimizer = c("bobyqa", "bobyqa"),
                            optCtrl = list(rhoend = 1e-10, maxfun = 1e5))
GLMER_TIGHT_TEXT <- paste("glmerControl(tolPwrss = 1e-12, optimizer = c('bobyqa', 'bobyqa'),",
                          "optCtrl = list(rhoend = 1e-10, maxfun = 1e5))")

FIT_SPECS <- list(
  oats_N = list(data = "oats", formula = "yield ~ N * Variety + (1 | Block/Variety)", family = "gaussian",
                note = "nitrogen as a factor N (0.0cwt, 0.2cwt, 0.4cwt, 0.6cwt)"),
  oats_nitro = list(data = "oats", formula = "yield ~ nitro * Variety + (1 | Block/Variety)", family = "gaussian",
                    note = "nitrogen as a numeric covariate (0, 0.2, 0.4, 0.6; mean 0.3)"),
  sleep_slope = list(data = "sleepstudy", formula = "Reaction ~ Days + (Days | Subject)", family = "gaussian"),
  sleep_log = list(data = "sleepstudy", formula = "log(Reaction) ~ Days + (Days | Subject)", family = "gaussian",
                   note = "log response: emmeans detects the log transformation, type = 'response' back-transforms (pigs-style)"),
  cbpp = list(data = "cbpp", formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
              family = "binomial", link = "logit"),
  grouse = list(data = "grouseticks", formula = "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION/BROOD)",
                family = "poisson", link = "log"),
  ## unbalanced data, an ML fit (pbkrtest refits it by REML for Kenward-Roger), a numeric variable
  ## used as a factor, an offset
  sleep_unbal = list(data = "sleep_unbal", formula = "Reaction ~ Days + (Days | Subject)", family = "gaussian",
                     note = "sleepstudy without every 7th row from the 3rd"),
  sleep_unbal_ml = list(data = "sleep_unbal", formula = "Reaction ~ Days + (Days | Subject)", family = "gaussian",
                        REML = FALSE, note = "ML fit; vcov_kenward_roger is pbkrtest's, from its REML refit"),
  oats_unbal = list(data = "oats_unbal", formula = "yield ~ N * Variety + (1 | Block/Variety)", family = "gaussian",
                    note = "Oats without every 5th row from the 3rd"),
  oats_fnitro = list(data = "oats", formula = "yield ~ factor(nitro) + Variety + (1 | Block/Variety)",
                     family = "gaussian", note = "numeric nitro coerced to a factor in the formula"),
  grouse_offset = list(data = "grouseticks", formula = "TICKS ~ YEAR + offset(log(HEIGHT)) + (1 | LOCATION)",
                       family = "poisson", link = "log", note = "offset: emmeans puts HEIGHT at its mean"),
  oats_missing = list(data = "oats_missing", formula = "yield ~ N * Variety + (1 | Block/Variety)",
                      family = "gaussian", note = "oats.csv without the 6 rows of N = 0.6cwt, Variety = Victory")
)
FITS <- list()
fit_record <- function(id, sp) {
  d <- get(sp$data)
  if (sp$family == "gaussian") {
    m <- lmer(as.formula(sp$formula), data = d, REML = sp$REML %||% TRUE, control = LMER_TIGHT)
  } else {
    fam <- get(sp$family)(link = sp$link)
    m <- glmer(as.formula(sp$formula), data = d, family = fam, control = GLMER_TIGHT)
  }
  FITS[[id]] <<- m
  rec <- list(data = DATA_PATH[[sp$data]], formula = sp$formula, family = sp$family,
              link = sp$link %||% "identity", note = sp$note,
              REML = if (sp$family == "gaussian") (sp$REML %||% TRUE) else NULL,
              control = if (sp$family == "gaussian") LMER_TIGHT_TEXT else GLMER_TIGHT_TEXT,
              logLik = as.numeric(logLik(m)), theta = named(getME(m, "theta")),
              beta = named(fixef(m)), sigma = sigma(m),
              vcov = named_matrix(vcov(m)), nobs = nobs(m),
              X_colnames = arr(colnames(getME(m, "X"))))
  if (sp$family == "gaussian")
    rec$vcov_kenward_roger <- named_matrix(as.matrix(pbkrtest::vcovAdj(m)))
  rec
}

## ---------------------------------------------------------------------------
## emmeans, contrasts, emtrends
## ---------------------------------------------------------------------------
## Each entry is R code evaluated with the fits (oats_N, ..., grouse) and the
## earlier EMM objects (by id) in scope; the code is stored verbatim.
EMM_CASES <- list(
  ## Oats, nitrogen as a factor
  oats_N_by_variety_kr     = 'emmeans(oats_N, ~ N | Variety)',
  oats_N_by_variety_satt   = 'emmeans(oats_N, ~ N | Variety, lmer.df = "satterthwaite")',
  oats_N_kr                = 'emmeans(oats_N, ~ N)',
  oats_N_satt              = 'emmeans(oats_N, ~ N, lmer.df = "satterthwaite")',
  oats_N_asymptotic        = 'emmeans(oats_N, ~ N, lmer.df = "asymptotic")',
  oats_variety_kr          = 'emmeans(oats_N, ~ Variety)',
  oats_N_variety_kr        = 'emmeans(oats_N, ~ N * Variety)',
  oats_N_at_kr             = 'emmeans(oats_N, ~ N | Variety, at = list(N = c("0.0cwt", "0.6cwt"), Variety = c("Marvellous", "Victory")))',
  ## Oats, nitrogen numeric
  oats_nitro_variety_kr    = 'emmeans(oats_nitro, ~ Variety)',
  oats_nitro_variety_satt  = 'emmeans(oats_nitro, ~ Variety, lmer.df = "satterthwaite")',
  oats_nitro_at_kr         = 'emmeans(oats_nitro, ~ nitro | Variety, at = list(nitro = c(0, 0.2, 0.4, 0.6)))',
  oats_nitro_at_satt       = 'emmeans(oats_nitro, ~ nitro | Variety, at = list(nitro = c(0, 0.2, 0.4, 0.6)), lmer.df = "satterthwaite")',
  oats_nitro_only_kr       = 'emmeans(oats_nitro, ~ nitro, at = list(nitro = c(0, 0.3, 0.6)))',
  ## sleepstudy
  sleep_days_kr            = 'emmeans(sleep_slope, ~ Days, at = list(Days = c(0, 3, 6, 9)))',
  sleep_days_satt          = 'emmeans(sleep_slope, ~ Days, at = list(Days = c(0, 3, 6, 9)), lmer.df = "satterthwaite")',
  sleep_mean_kr            = 'emmeans(sleep_slope, ~ Days)',
  ## log response (back-transformed) and regrid
  sleep_log_link_kr        = 'emmeans(sleep_log, ~ Days, at = list(Days = c(0, 3, 6, 9)))',
  sleep_log_response_kr    = 'emmeans(sleep_log, ~ Days, at = list(Days = c(0, 3, 6, 9)), type = "response")',
  sleep_log_regrid_kr      = 'emmeans(sleep_log, ~ Days, at = list(Days = c(0, 3, 6, 9)), regrid = "response")',
  ## cbpp (binomial)
  cbpp_link                = 'emmeans(cbpp, ~ period)',
  cbpp_response            = 'emmeans(cbpp, ~ period, type = "response")',
  cbpp_regrid              = 'emmeans(cbpp, ~ period, regrid = "response")',
  ## grouseticks (poisson)
  grouse_year_link         = 'emmeans(grouse, ~ YEAR)',
  grouse_year_response     = 'emmeans(grouse, ~ YEAR, type = "response")',
  grouse_height_by_year    = 'emmeans(grouse, ~ cHEIGHT | YEAR, at = list(cHEIGHT = c(-20, 0, 20)), type = "response")',
  grouse_year_regrid       = 'emmeans(grouse, ~ YEAR, regrid = "response")',
  ## unbalanced data (Kenward-Roger's adjusted covariance), ML fit, coerced factor, offset
  sleep_unbal_days_kr      = 'emmeans(sleep_unbal, ~ Days, at = list(Days = c(0, 4.5, 9)))',
  sleep_unbal_days_satt    = 'emmeans(sleep_unbal, ~ Days, at = list(Days = c(0, 4.5, 9)), lmer.df = "satterthwaite")',
  sleep_unbal_ml_days_kr   = 'emmeans(sleep_unbal_ml, ~ Days, at = list(Days = c(0, 9)))',
  oats_unbal_N_kr          = 'emmeans(oats_unbal, ~ N)',
  oats_unbal_N_by_variety_kr = 'emmeans(oats_unbal, ~ N | Variety)',
  oats_unbal_N_variety_kr  = 'emmeans(oats_unbal, ~ N * Variety)',
  oats_unbal_variety_satt  = 'emmeans(oats_unbal, ~ Variety, lmer.df = "satterthwaite")',
  oats_fnitro_kr           = 'emmeans(oats_fnitro, ~ nitro)',
  grouse_offset_year       = 'emmeans(grouse_offset, ~ YEAR, type = "response")',
  oats_missing_N_by_variety_kr = 'emmeans(oats_missing, ~ N | Variety)',
  oats_missing_variety_kr  = 'emmeans(oats_missing, ~ Variety)'
)
CONTRAST_CASES <- list(
  oats_N_by_variety_pairwise_tukey      = 'contrast(oats_N_by_variety_kr, method = "pairwise", adjust = "tukey")',
  oats_N_by_variety_pairwise_bonferroni = 'contrast(oats_N_by_variety_kr, method = "pairwise", adjust = "bonferroni")',
  oats_N_by_variety_pairwise_holm       = 'contrast(oats_N_by_variety_kr, method = "pairwise", adjust = "holm")',
  oats_N_by_variety_pairwise_none       = 'contrast(oats_N_by_variety_kr, method = "pairwise", adjust = "none")',
  oats_N_by_variety_pairwise_satt_tukey = 'contrast(oats_N_by_variety_satt, method = "pairwise", adjust = "tukey")',
  oats_N_pairwise_tukey                 = 'contrast(oats_N_kr, method = "pairwise", adjust = "tukey")',
  oats_N_pairwise_satt_tukey            = 'contrast(oats_N_satt, method = "pairwise", adjust = "tukey")',
  oats_N_revpairwise_tukey              = 'contrast(oats_N_kr, method = "revpairwise", adjust = "tukey")',
  oats_N_trt_vs_ctrl_default            = 'contrast(oats_N_kr, method = "trt.vs.ctrl")',
  oats_N_trt_vs_ctrl_bonferroni         = 'contrast(oats_N_kr, method = "trt.vs.ctrl", adjust = "bonferroni")',
  oats_N_trt_vs_ctrl_holm               = 'contrast(oats_N_kr, method = "trt.vs.ctrl", adjust = "holm")',
  oats_N_trt_vs_ctrl_none               = 'contrast(oats_N_kr, method = "trt.vs.ctrl", adjust = "none")',
  oats_N_trt_vs_ctrl_tukey              = 'contrast(oats_N_kr, method = "trt.vs.ctrl", adjust = "tukey")',
  oats_variety_pairwise_tukey           = 'contrast(oats_variety_kr, method = "pairwise", adjust = "tukey")',
  oats_variety_revpairwise_holm         = 'contrast(oats_variety_kr, method = "revpairwise", adjust = "holm")',
  oats_N_variety_pairwise_tukey         = 'contrast(oats_N_variety_kr, method = "pairwise", adjust = "tukey")',
  oats_nitro_at_trt_vs_ctrl_none        = 'contrast(oats_nitro_at_kr, method = "trt.vs.ctrl", adjust = "none")',
  oats_nitro_variety_pairwise_tukey     = 'contrast(oats_nitro_variety_kr, method = "pairwise", adjust = "tukey")',
  oats_nitro_variety_pairwise_satt_holm = 'contrast(oats_nitro_variety_satt, method = "pairwise", adjust = "holm")',
  sleep_days_pairwise_tukey             = 'contrast(sleep_days_kr, method = "pairwise", adjust = "tukey")',
  sleep_days_revpairwise_holm           = 'contrast(sleep_days_kr, method = "revpairwise", adjust = "holm")',
  sleep_days_satt_pairwise_bonferroni   = 'contrast(sleep_days_satt, method = "pairwise", adjust = "bonferroni")',
  sleep_days_trt_vs_ctrl_none           = 'contrast(sleep_days_kr, method = "trt.vs.ctrl", adjust = "none")',
  sleep_log_response_revpairwise_none   = 'contrast(sleep_log_response_kr, method = "revpairwise", adjust = "none")',
  sleep_log_regrid_pairwise_tukey       = 'contrast(sleep_log_regrid_kr, method = "pairwise", adjust = "tukey")',
  cbpp_link_pairwise_tukey              = 'contrast(cbpp_link, method = "pairwise", adjust = "tukey")',
  cbpp_response_pairwise_tukey          = 'contrast(cbpp_response, method = "pairwise", adjust = "tukey")',
  cbpp_response_pairwise_bonferroni     = 'contrast(cbpp_response, method = "pairwise", adjust = "bonferroni")',
  cbpp_response_pairwise_holm           = 'contrast(cbpp_response, method = "pairwise", adjust = "holm")',
  cbpp_response_pairwise_none           = 'contrast(cbpp_response, method = "pairwise", adjust = "none")',
  cbpp_response_revpairwise_tukey       = 'contrast(cbpp_response, method = "revpairwise", adjust = "tukey")',
  cbpp_response_trt_vs_ctrl_default     = 'contrast(cbpp_response, method = "trt.vs.ctrl")',
  cbpp_response_trt_vs_ctrl_holm        = 'contrast(cbpp_response, method = "trt.vs.ctrl", adjust = "holm")',
  cbpp_regrid_pairwise_tukey            = 'contrast(cbpp_regrid, method = "pairwise", adjust = "tukey")',
  grouse_year_response_pairwise_tukey   = 'contrast(grouse_year_response, method = "pairwise", adjust = "tukey")',
  grouse_year_response_revpairwise_none = 'contrast(grouse_year_response, method = "revpairwise", adjust = "none")',
  grouse_year_link_trt_vs_ctrl_bonf     = 'contrast(grouse_year_link, method = "trt.vs.ctrl", adjust = "bonferroni")',
  grouse_year_regrid_pairwise_holm      = 'contrast(grouse_year_regrid, method = "pairwise", adjust = "holm")',
  sleep_unbal_days_pairwise_default     = 'contrast(sleep_unbal_days_kr, method = "pairwise")',
  sleep_unbal_days_satt_trt_vs_ctrl     = 'contrast(sleep_unbal_days_satt, method = "trt.vs.ctrl")',
  sleep_unbal_ml_days_pairwise          = 'contrast(sleep_unbal_ml_days_kr, method = "pairwise")',
  oats_unbal_N_pairwise_tukey           = 'contrast(oats_unbal_N_kr, method = "pairwise", adjust = "tukey")',
  oats_unbal_N_pairwise_sidak           = 'contrast(oats_unbal_N_kr, method = "pairwise", adjust = "sidak")',
  oats_unbal_N_pairwise_hochberg        = 'contrast(oats_unbal_N_kr, method = "pairwise", adjust = "hochberg")',
  oats_unbal_N_pairwise_BH              = 'contrast(oats_unbal_N_kr, method = "pairwise", adjust = "BH")',
  oats_unbal_N_pairwise_BY              = 'contrast(oats_unbal_N_kr, method = "pairwise", adjust = "BY")',
  oats_unbal_N_eff_default              = 'contrast(oats_unbal_N_kr, method = "eff")',
  oats_unbal_N_trt_vs_ctrlk_default     = 'contrast(oats_unbal_N_kr, method = "trt.vs.ctrlk")',
  oats_unbal_N_by_variety_pairwise      = 'contrast(oats_unbal_N_by_variety_kr, method = "pairwise")',
  oats_unbal_NxV_pairwise_by_variety    = 'contrast(oats_unbal_N_variety_kr, method = "pairwise", by = "Variety")',
  oats_unbal_NxV_pairwise_tukey         = 'contrast(oats_unbal_N_variety_kr, method = "pairwise", adjust = "tukey")',
  oats_unbal_variety_satt_revpairwise   = 'contrast(oats_unbal_variety_satt, method = "revpairwise")',
  oats_fnitro_pairwise_default          = 'contrast(oats_fnitro_kr, method = "pairwise")',
  oats_unbal_N_poly_default             = 'contrast(oats_unbal_N_kr, method = "poly")',
  oats_N_by_variety_poly_default        = 'contrast(oats_N_by_variety_kr, method = "poly")',
  oats_unbal_N_del_eff_default          = 'contrast(oats_unbal_N_kr, method = "del.eff")',
  oats_unbal_N_consec_holm              = 'contrast(oats_unbal_N_kr, method = "consec", adjust = "holm")',
  cbpp_response_consec_bonferroni       = 'contrast(cbpp_response, method = "consec", adjust = "bonferroni")',
  grouse_offset_year_pairwise_default   = 'contrast(grouse_offset_year, method = "pairwise")',
  oats_missing_N_by_variety_pairwise    = 'contrast(oats_missing_N_by_variety_kr, method = "pairwise")',
  oats_missing_N_by_variety_trt_vs_ctrl = 'contrast(oats_missing_N_by_variety_kr, method = "trt.vs.ctrl", adjust = "holm")'
)
TREND_CASES <- list(
  oats_nitro_trend_kr   = 'emtrends(oats_nitro, ~ Variety, var = "nitro")',
  oats_nitro_trend_satt = 'emtrends(oats_nitro, ~ Variety, var = "nitro", lmer.df = "satterthwaite")',
  sleep_days_trend_kr   = 'emtrends(sleep_slope, ~ 1, var = "Days")'
)
TREND_CONTRASTS <- list(
  oats_nitro_trend_pairwise_tukey = 'contrast(oats_nitro_trend_kr, method = "pairwise", adjust = "tukey")'
)

ENV <- new.env()
emm_record <- function(id, code, kind = "emmeans") {
  cap <- capture(eval(str2lang(code), envir = ENV))
  e <- cap$value
  assign(id, e, envir = ENV)
  cap_s <- capture(summary(e))
  s <- cap_s$value
  grid <- e@grid
  rec <- list(
    call = code,
    columns = arr(names(s)),
    estName = attr(s, "estName"), clNames = arr(attr(s, "clNames") %||% character(0)),
    pri_vars = arr(attr(s, "pri.vars") %||% character(0)), by_vars = arr(attr(s, "by.vars") %||% character(0)),
    table = df_records(s),
    messages_printed = arr(attr(s, "mesg") %||% character(0)),
    df_method = attr(e@dffun, "mesg") %||% NULL,
    tran = if (is.character(e@misc$tran)) e@misc$tran else if (!is.null(e@misc$tran)) "custom" else NULL,
    inv_lbl = e@misc$inv.lbl %||% NULL,
    grid = df_records(grid),
    levels = lapply(e@levels, function(v) if (is.numeric(v)) arr(v) else arr(as.character(v))),
    linfct = mat_rows(e@linfct),
    linfct_colnames = arr(colnames(e@linfct) %||% character(0)),
    bhat = arr(e@bhat),
    V = mat_rows(e@V),
    warnings = arr(c(cap$warnings, cap_s$warnings)), messages = arr(c(cap$messages, cap_s$messages)))
  if (kind == "contrast") {
    cf <- coef(e)
    rec$contrast_coefs <- df_records(cf)
    ci <- capture(confint(e))
    rec$confint <- list(columns = arr(names(ci$value)), table = df_records(ci$value),
                        messages_printed = arr(attr(ci$value, "mesg") %||% character(0)))
    rec$adjust_requested <- e@misc$adjust %||% NULL
    ## what summary() applied (emmeans replaces "tukey" by "sidak" for
    ## non-pairwise families and says so in a message)
    am <- grep("^P value adjustment", attr(s, "mesg"), value = TRUE)
    rec$adjust_applied <- if (length(am)) sub("^P value adjustment: ([^ ]+) .*$", "\\1", am) else "none"
    rec$famSize <- e@misc$famSize %||% NULL
  }
  rec
}

## ---------------------------------------------------------------------------
## lme4 predictions and delta-method SEs for population predictions
## ---------------------------------------------------------------------------
pred_record <- function(id, nd, note) {
  m <- FITS[[id]]
  fam <- family(m)
  eta0 <- predict(m, newdata = nd, re.form = NA, type = "link")
  etaR <- predict(m, newdata = nd, re.form = NULL, type = "link", allow.new.levels = TRUE)
  ## population design matrix: the fixed part of the formula, with the fit's
  ## contrasts and factor levels
  tt <- delete.response(terms(m, fixed.only = TRUE))
  fv <- intersect(all.vars(tt), names(m@frame))
  xlev <- Filter(Negate(is.null), lapply(m@frame[fv], levels))
  X <- model.matrix(tt, model.frame(tt, nd, xlev = xlev), contrasts.arg = attr(getME(m, "X"), "contrasts"))
  stopifnot(max(abs(drop(X %*% fixef(m)) - eta0)) < 1e-10)
  V <- as.matrix(vcov(m))
  se_link <- sqrt(rowSums((X %*% V) * X))
  z <- qnorm(0.975)
  out <- list(
    fit = id, note = note,
    newdata = df_records(nd),
    X = mat_rows(X), X_colnames = arr(colnames(X)),
    link_re_form_NA = arr(eta0),
    link_re_form_NULL = arr(etaR),
    response_re_form_NA = arr(predict(m, newdata = nd, re.form = NA, type = "response")),
    response_re_form_NULL = arr(predict(m, newdata = nd, re.form = NULL, type = "response", allow.new.levels = TRUE)),
    se_link_population = arr(se_link),
    ci95_link_population = list(lower = arr(eta0 - z * se_link), upper = arr(eta0 + z * se_link)),
    se_response_population = arr(se_link * abs(fam$mu.eta(eta0))),
    ci95_response_population = list(lower = arr(fam$linkinv(eta0 - z * se_link)),
                                    upper = arr(fam$linkinv(eta0 + z * se_link))),
    formulas = paste("se_link = sqrt(diag(X V X')), V = vcov(fit); se_response = se_link * |dmu/deta|;",
                     "CI: eta +- qnorm(0.975) se_link, mapped by the inverse link (Wald, normal quantile)"))
  out
}

## ---------------------------------------------------------------------------
## Run
## ---------------------------------------------------------------------------
cat("== fits ==\n")
FIT_RECORDS <- list()
for (id in names(FIT_SPECS)) {
  cat(" ", id, "\n")
  FIT_RECORDS[[id]] <- fit_record(id, FIT_SPECS[[id]])
  assign(id, FITS[[id]], envir = ENV)
}

cat("== reference grids ==\n")
RG <- list()
for (id in names(FITS)) {
  rg <- ref_grid(FITS[[id]])
  RG[[id]] <- list(call = sprintf("ref_grid(%s)", id),
                   levels = lapply(rg@levels, function(v) if (is.numeric(v)) arr(v) else arr(as.character(v))),
                   grid = df_records(rg@grid),
                   linfct = mat_rows(rg@linfct),
                   tran = if (is.character(rg@misc$tran)) rg@misc$tran else NULL,
                   note = "numeric covariates enter the grid at their mean (ref_grid default); .wgt. = cell counts")
}

cat("== emmeans ==\n")
EMM <- list()
for (id in names(EMM_CASES)) EMM[[id]] <- emm_record(id, EMM_CASES[[id]])
## V used by emmeans: vcovAdj (KR) or vcov (Satterthwaite / asymptotic / glmer)
for (id in names(EMM)) {
  fit_id <- all.vars(str2lang(EMM_CASES[[id]]))[1]
  e <- get(id, envir = ENV)
  if (grepl("regrid", EMM_CASES[[id]])) { EMM[[id]]$V_source <- "regrid (delta method)"; next }
  Vf <- as.matrix(vcov(FITS[[fit_id]]))
  kr <- identical(attr(e@dffun, "mesg"), "kenward-roger")
  Vr <- if (kr) as.matrix(pbkrtest::vcovAdj(FITS[[fit_id]])) else Vf
  EMM[[id]]$V_source <- if (kr) "pbkrtest::vcovAdj(fit) (fits[id].vcov_kenward_roger)" else "vcov(fit) (fits[id].vcov)"
  EMM[[id]]$max_abs_V_minus_source <- max(abs(as.matrix(e@V) - Vr))
}
cat("== contrasts ==\n")
CON <- list()
for (id in names(CONTRAST_CASES)) CON[[id]] <- emm_record(id, CONTRAST_CASES[[id]], "contrast")
cat("== emtrends ==\n")
TRD <- list()
for (id in names(TREND_CASES)) TRD[[id]] <- emm_record(id, TREND_CASES[[id]])
for (id in names(TREND_CONTRASTS)) TRD[[id]] <- emm_record(id, TREND_CONTRASTS[[id]], "contrast")

cat("== predictions ==\n")
PRED <- list(
  sleep_slope = pred_record("sleep_slope",
    data.frame(Days = c(0, 2.5, 9, 0, 2.5, 9, 0, 2.5, 9),
               Subject = factor(rep(c("308", "335", "NEW"), each = 3))),
    "re.form = NULL with allow.new.levels = TRUE: the NEW subject gets the population prediction"),
  sleep_log = pred_record("sleep_log",
    data.frame(Days = c(0, 4.5, 9), Subject = factor(c("308", "308", "NEW"))),
    "identity link on log(Reaction): type = 'response' is the log scale (lme4 does not back-transform)"),
  cbpp = pred_record("cbpp",
    data.frame(period = factor(c("1", "2", "3", "4", "1", "4"), levels = c("1", "2", "3", "4")),
               herd = factor(c("1", "1", "1", "1", "NEW", "NEW"))),
    "link = logit; response = probability"),
  grouse = pred_record("grouse",
    data.frame(YEAR = factor(c("95", "96", "97", "96"), levels = c("95", "96", "97")),
               cHEIGHT = c(0, -20, 20, 5.5),
               LOCATION = factor(c("32", "32", "NEW", "1")), BROOD = factor(c("501", "501", "NEW", "NEW"))),
    "link = log; response = rate. Nested (1 | LOCATION/BROOD): a NEW BROOD in a known LOCATION gets the LOCATION effect only")
)

## The glmer SEs depend on how tightly the fit converged: lme4's vcov() of a
## glmer fit inverts a finite-difference Hessian of the Laplace deviance,
## and with the default PIRLS tolerance that Hessian is ~1% off (cbpp).  The
## references above use the tight fit; this records the default fit's numbers.
g_def <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp, family = binomial)
DEFAULT_CHECK <- list(
  note = paste("cbpp with glmer's default control: emmeans(type = 'response') and the pairwise odds ratios;",
               "compare with emmeans$cbpp_response and contrasts$cbpp_response_pairwise_tukey (tight fit)"),
  beta = named(fixef(g_def)), se = named(sqrt(diag(as.matrix(vcov(g_def))))),
  se_tight = named(sqrt(diag(as.matrix(vcov(FITS$cbpp))))),
  emmeans_response = df_records(summary(emmeans(g_def, ~ period, type = "response"))),
  pairwise_tukey = df_records(summary(contrast(emmeans(g_def, ~ period, type = "response"), "pairwise"))))

res <- list(
  meta = list(
    R_version = R.version.string,
    packages = list(emmeans = as.character(packageVersion("emmeans")),
                    lme4 = as.character(packageVersion("lme4")),
                    pbkrtest = as.character(packageVersion("pbkrtest")),
                    estimability = as.character(packageVersion("estimability")),
                    mvtnorm = as.character(packageVersion("mvtnorm")),
                    Matrix = as.character(packageVersion("Matrix")),
                    jsonlite = as.character(packageVersion("jsonlite"))),
    date = format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z"),
    command = COMMAND, platform = R.version$platform, file = "emmeans_reference.json",
    lmer_control = LMER_TIGHT_TEXT, glmer_control = GLMER_TIGHT_TEXT,
    df_null_means = "Inf: in emmeans/contrast tables df = null is emmeans' df = Inf (asymptotic; glmer fits, lmer.df = 'asymptotic')",
    emm_options = list(lmer.df = get_emm_option("lmer.df"), pbkrtest.limit = get_emm_option("pbkrtest.limit"),
                       lmerTest.limit = get_emm_option("lmerTest.limit"))),
  fits = FIT_RECORDS,
  ref_grids = RG,
  emmeans = EMM,
  contrasts = CON,
  emtrends = TRD,
  predictions = PRED,
  cbpp_default_fit = DEFAULT_CHECK
)
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, na = "null", null = "null", pretty = TRUE), OUT,
           useBytes = TRUE)
cat("wrote", OUT, "\n")
for (id in names(EMM)) cat(sprintf("%-28s %-8s V-source diff %s\n", id, EMM[[id]]$estName,
                                   format(EMM[[id]]$max_abs_V_minus_source %||% NA, digits = 3)))
