## =============================================================================
## make_external.R -- the external suite: real analyses from lme4, nlme,
## MixedModels.jl, mlmRev, glmmTMB, MASS, lmerTest and pbkrtest, refitted with
## lme4 and stored as reference numbers for tests/external/.
## =============================================================================
##
## For every case this script
##   1. exports the data set it uses (once per data set) to
##      tests/reference/external/data/<name>.csv (or .csv.gz when large) and a
##      schema <name>.json recording each column's R class (factor with its
##      level order, ordered factor, integer, numeric, logical, character);
##   2. reads the data back through that schema (so R and Python fit exactly
##      the same numbers: the CSV holds 15 significant digits);
##   3. fits the model with lme4 exactly as the source writes it (the
##      "default" fit: lme4's default optimizer, or the source's control where
##      the source gives one), then refits it twice with tight tolerances
##        lmer : nloptwrap BOBYQA, ftol_abs = 1e-14, xtol_abs = 1e-12,
##               ftol_rel = 1e-15, xtol_rel = 1e-12 (nloptr's own default
##               xtol_rel = 1e-4 applies otherwise and stops it where lme4's
##               default stops);
##               minqa bobyqa, rhobeg = 0.02, rhoend = 1e-12
##        glmer: tolPwrss = 1e-12 and minqa bobyqa (rhoend = 1e-10) in both
##               stages; tolPwrss = 1e-12 and nloptwrap (the tolerances
##               above) in both stages
##      then polishes: restarts from the best fit so far with bobyqa
##      (rhobeg = 1e-3, rhoend = 1e-12) and with nloptwrap (tolerances as
##      above), for glmer straight into the second stage (nAGQ0initStep =
##      FALSE, start = theta and fixef), until a round gains < 1e-11
##      (relative). The fit with the lowest criterion is "tight". (Without the
##      polish, badly scaled GLMMs such as grouseticks with an uncentred
##      HEIGHT end up to 5e-5 above the optimum even with tight tolerances:
##      the first stage restarts from nAGQ = 0 every time.);
##   4. stores criterion, logLik, fixef, SEs, theta, sigma, VarCorr, the first
##      three conditional modes of every grouping factor, the convergence
##      situation (optimizer messages, warnings, singularity, evaluations)
##      for both fits, plus lmerTest's Satterthwaite df (lmer, when cheap) on
##      the tight fit, and how far lme4's default fit stopped from it.
##
## The tests compare with "tight" (field `compare`). `default_stops_early`
## is TRUE when the default fit's criterion is more than 1e-8 (relative)
## above the tight one, or its theta differs by more than 1e-5, or its fixef
## by more than 1e-4 standard errors. `tight_spread` records how far the two
## tight refits are from each other: the best fit against the best one
## reached by another route (the accuracy the reference supports).
## For glmer the default fit's criterion is computed with lme4's default
## PIRLS tolerance (tolPwrss = 1e-7), so it can come out slightly *below*
## the tight one (e.g. respiratory nAGQ = 5): it is not a better optimum.
##
## Output: tests/reference/external/external_reference.json (+ data/).
##
## Run from the repository root:
##   Rscript tests/reference/make_external.R            # every case (~10 min)
##   Rscript tests/reference/make_external.R ID1 ID2    # refit some cases only,
##                                                      # keeping the others
## =============================================================================

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
  library(lmerTest) # only for as_lmerModLmerTest(); lme4::lmer is called explicitly
})
if (!file.exists("tests/reference/make_external.R"))
  stop("run from the repository root: Rscript tests/reference/make_external.R")

OUT_DIR <- "tests/reference/external"
DATA_DIR <- file.path(OUT_DIR, "data")
OUT_JSON <- file.path(OUT_DIR, "external_reference.json")
dir.create(DATA_DIR, recursive = TRUE, showWarnings = FALSE)

only <- commandArgs(trailingOnly = TRUE)

arr <- function(x) I(unname(as.vector(x)))
named <- function(x) stats::setNames(as.list(unname(as.vector(x))), names(x))

## -----------------------------------------------------------------------------
## Data sets: name -> function returning the data frame exactly as the source
## has it before the model is fitted (derived columns and subsets only where
## the source makes them).
## -----------------------------------------------------------------------------
nlme_data <- function(name) {
  e <- new.env()
  utils::data(list = name, package = "nlme", envir = e)
  as.data.frame(e[[name]])
}
pkg_data <- function(name, package) {
  e <- new.env()
  utils::data(list = name, package = package, envir = e)
  as.data.frame(e[[name]])
}
testdata <- function(file, object) {
  e <- new.env()
  load(system.file("testdata", file, package = "lme4", mustWork = TRUE), envir = e)
  as.data.frame(e[[object]])
}

DATASETS <- list(
  sleepstudy = list(src = "lme4::sleepstudy", f = function() pkg_data("sleepstudy", "lme4")),
  dyestuff = list(src = "lme4::Dyestuff", f = function() pkg_data("Dyestuff", "lme4")),
  dyestuff2 = list(src = "lme4::Dyestuff2", f = function() pkg_data("Dyestuff2", "lme4")),
  penicillin = list(src = "lme4::Penicillin", f = function() pkg_data("Penicillin", "lme4")),
  pastes = list(src = "lme4::Pastes", f = function() pkg_data("Pastes", "lme4")),
  pastes_reordered = list(
    src = "lme4::Pastes with the reordering of man/Pastes.Rd: batch <- reorder(batch, strength); sample <- reorder(reorder(sample, strength), as.numeric(batch))",
    f = function() {
      Pastes <- pkg_data("Pastes", "lme4")
      Pastes <- within(Pastes, batch <- reorder(batch, strength))
      Pastes <- within(Pastes, sample <- reorder(reorder(sample, strength), as.numeric(batch)))
      Pastes
    }),
  cake = list(src = "lme4::cake", f = function() pkg_data("cake", "lme4")),
  cbpp_obs = list(src = "lme4::cbpp with cbpp$obs <- 1:nrow(cbpp) (man/glmer.Rd)",
                  f = function() { cbpp <- pkg_data("cbpp", "lme4"); cbpp$obs <- 1:nrow(cbpp); cbpp }),
  grouseticks = list(src = "lme4::grouseticks", f = function() pkg_data("grouseticks", "lme4")),
  verbagg = list(src = "lme4::VerbAgg", f = function() pkg_data("VerbAgg", "lme4")),
  arabidopsis = list(src = "lme4::Arabidopsis", f = function() pkg_data("Arabidopsis", "lme4")),
  insteval = list(src = "lme4::InstEval", f = function() pkg_data("InstEval", "lme4"), gz = TRUE),
  orthodont_nsex = list(
    src = "nlme::Orthodont with nsex <- as.numeric(Sex==\"Male\"), nsexage <- nsex*age (lme4 man/lmer.Rd)",
    f = function() {
      Orthodont <- nlme_data("Orthodont")
      Orthodont$nsex <- as.numeric(Orthodont$Sex == "Male")
      Orthodont$nsexage <- with(Orthodont, nsex * age)
      Orthodont
    }),
  dat20101314 = list(src = "lme4 testdata/dat20101314.csv (tests/boundary.R), as read.csv reads it",
                     f = function() read.csv(system.file("testdata", "dat20101314.csv", package = "lme4"))),
  offset_lmm = list(
    src = "simulated as in lme4 tests/offset.R (set.seed(101), gaussian response)",
    f = function() {
      set.seed(101)
      d <- expand.grid(block = LETTERS[1:26], rep = 1:100)
      d$x <- runif(nrow(d))
      reff_f <- rnorm(length(levels(d$block)), sd = 1)
      d$eta0 <- 4 + 3 * d$x
      d$eta <- d$eta0 + reff_f[d$block]
      d$mu <- d$eta
      d$y <- rnorm(nrow(d), mean = d$mu, sd = 1)
      d[c("block", "rep", "x", "y")]
    }),
  offset_glmm = list(
    src = "simulated as in lme4 tests/offset.R (set.seed(101), then the Poisson response)",
    f = function() {
      set.seed(101)
      d <- expand.grid(block = LETTERS[1:26], rep = 1:100)
      d$x <- runif(nrow(d))
      reff_f <- rnorm(length(levels(d$block)), sd = 1)
      d$eta0 <- 4 + 3 * d$x
      d$eta <- d$eta0 + reff_f[d$block]
      d$mu <- d$eta
      d$y <- rnorm(nrow(d), mean = d$mu, sd = 1)
      d$mu <- exp(d$eta)
      d$y <- rpois(nrow(d), d$mu)
      d[c("block", "rep", "x", "y")]
    }),
  priorweights = list(
    src = "simulated as in lme4 tests/priorWeights.R (set.seed(1)); w = 1/residSD^2",
    f = function() {
      suppressWarnings(RNGkind("Mersenne-Twister", "Inversion", "Rounding"))
      on.exit(suppressWarnings(RNGkind("Mersenne-Twister", "Inversion", "Rejection")))
      set.seed(1)
      nGroups <- 100; nObs <- 1000
      explVar1 <- rnorm(nObs); explVar2 <- rnorm(nObs)
      groupFac <- as.factor(rep(1:nGroups, each = nObs / nGroups))
      randEff0 <- rep(rnorm(nGroups), each = nObs / nGroups)
      randEff1 <- rep(rnorm(nGroups), each = nObs / nGroups)
      randEff2 <- rep(rnorm(nGroups), each = nObs / nGroups)
      residSD <- rpois(nObs, 1) + 1
      residError <- rnorm(nObs, sd = residSD)
      respVar <- randEff0 + (1 + randEff1) * explVar1 + (1 + randEff2) * explVar2 + residError
      data.frame(y = respVar, x = explVar1, z = explVar2, g = groupFac, v = residSD^2, w = 1 / residSD^2)
    }),
  sleepstudy_w = list(
    src = "lme4::sleepstudy with v <- rpois(n,1)+1, w <- 1/v drawn after the priorweights data (tests/priorWeights.R)",
    f = function() {
      suppressWarnings(RNGkind("Mersenne-Twister", "Inversion", "Rounding"))
      on.exit(suppressWarnings(RNGkind("Mersenne-Twister", "Inversion", "Rejection")))
      set.seed(1)
      rnorm(1000); rnorm(1000); rnorm(100); rnorm(100); rnorm(100); rs <- rpois(1000, 1) + 1; rnorm(1000, sd = rs)
      sleepstudy <- pkg_data("sleepstudy", "lme4")
      v <- rpois(nrow(sleepstudy), 1) + 1
      sleepstudy$w <- 1 / v
      sleepstudy
    }),
  chem97 = list(src = "mlmRev::Chem97 (columns lea, school, score, gcsecnt)",
                f = function() pkg_data("Chem97", "mlmRev")[c("lea", "school", "score", "gcsecnt")], gz = TRUE),
  culcita = list(src = "lme4 testdata/culcita_dat.RData", f = function() testdata("culcita_dat.RData", "culcita_dat")),
  gopher = list(src = "lme4 testdata/gopherdat2.RData (Gdat)", f = function() testdata("gopherdat2.RData", "Gdat")),
  respiratory = list(src = "lme4 testdata/respiratory.RData", f = function() testdata("respiratory.RData", "respiratory")),
  prlogistic = list(src = "lme4 testdata/prLogistic.RData (dataset)", f = function() testdata("prLogistic.RData", "dataset")),
  hessianfly = list(src = "lme4 testdata/gotway_hessianfly.rda", f = function() testdata("gotway_hessianfly.rda", "gotway.hessianfly")),
  trees513 = list(src = "lme4 testdata/trees513.RData (trees513B)", f = function() testdata("trees513.RData", "trees513B")),
  crabs = list(src = "lme4 testdata/crabs_randdata2.Rda (randdata)", f = function() testdata("crabs_randdata2.Rda", "randdata")),
  radinger = list(src = "lme4 testdata/radinger_dat.RData", f = function() testdata("radinger_dat.RData", "radinger_dat")),
  mastitis = list(src = "lme4 testdata/mastitis.rda", f = function() testdata("mastitis.rda", "mastitis")),
  bacteria_wk2 = list(src = "MASS::bacteria with bacteria$wk2 <- bacteria$week > 2 (lme4 tests/glmer-1.R)",
                      f = function() { b <- pkg_data("bacteria", "MASS"); b$wk2 <- b$week > 2; b }),
  bacteria = list(src = "MASS::bacteria", f = function() pkg_data("bacteria", "MASS")),
  contraception = list(src = "mlmRev::Contraception", f = function() pkg_data("Contraception", "mlmRev")),
  rail = list(src = "nlme::Rail", f = function() nlme_data("Rail")),
  ergostool = list(src = "nlme::ergoStool", f = function() nlme_data("ergoStool")),
  machines = list(src = "nlme::Machines", f = function() nlme_data("Machines")),
  machines_unbal = list(src = "nlme::Machines[-c(2,3,6,8,9,12,19,20,27,33),] (nlme scripts/ch01.R MachinesUnbal)",
                        f = function() nlme_data("Machines")[-c(2, 3, 6, 8, 9, 12, 19, 20, 27, 33), ]),
  orthodont = list(src = "nlme::Orthodont", f = function() nlme_data("Orthodont")),
  orthofem = list(src = "nlme::Orthodont[Orthodont$Sex == \"Female\", ] (nlme scripts/ch01.R OrthoFem; unused Subject levels kept, as R keeps them)",
                  f = function() { o <- nlme_data("Orthodont"); o[o$Sex == "Female", ] }),
  pixel = list(src = "nlme::Pixel", f = function() nlme_data("Pixel")),
  oats = list(src = "nlme::Oats", f = function() nlme_data("Oats")),
  assay = list(src = "nlme::Assay", f = function() nlme_data("Assay")),
  oxide = list(src = "nlme::Oxide", f = function() nlme_data("Oxide")),
  wafer = list(src = "nlme::Wafer", f = function() nlme_data("Wafer")),
  bodyweight = list(src = "nlme::BodyWeight", f = function() nlme_data("BodyWeight")),
  ovary = list(src = "nlme::Ovary", f = function() nlme_data("Ovary")),
  igf = list(src = "nlme::IGF", f = function() nlme_data("IGF")),
  salamanders = list(src = "glmmTMB::Salamanders", f = function() pkg_data("Salamanders", "glmmTMB")),
  owls = list(src = "glmmTMB::Owls", f = function() pkg_data("Owls", "glmmTMB")),
  epil = list(src = "MASS::epil", f = function() pkg_data("epil", "MASS")),
  mmmec = list(src = "mlmRev::Mmmec", f = function() pkg_data("Mmmec", "mlmRev")),
  exam = list(src = "mlmRev::Exam", f = function() pkg_data("Exam", "mlmRev")),
  egsingle = list(src = "mlmRev::egsingle", f = function() pkg_data("egsingle", "mlmRev")),
  ham = list(src = "lmerTest::ham", f = function() pkg_data("ham", "lmerTest")),
  carrots = list(src = "lmerTest::carrots", f = function() pkg_data("carrots", "lmerTest")),
  tvbo = list(src = "lmerTest::TVbo (columns Assessor, TVset, Repeat, Picture, Coloursaturation)",
              f = function() pkg_data("TVbo", "lmerTest")[c("Assessor", "TVset", "Repeat", "Picture", "Coloursaturation")]),
  beets = list(src = "pbkrtest::beets", f = function() pkg_data("beets", "pbkrtest"))
)

## -----------------------------------------------------------------------------
## Export + schema, and the schema-driven reader used for the R fits
## -----------------------------------------------------------------------------
col_class <- function(x) {
  if (is.ordered(x)) "ordered" else if (is.factor(x)) "factor" else if (is.logical(x)) "logical"
  else if (is.integer(x)) "integer" else if (is.numeric(x)) "numeric" else if (is.character(x)) "character"
  else stop("unsupported column class: ", paste(class(x), collapse = "/"))
}

strip_df <- function(d) {
  # plain data.frame, plain vectors (groupedData / labelled attributes removed)
  d <- as.data.frame(d)
  for (nm in names(d)) {
    x <- d[[nm]]
    if (is.factor(x)) x <- factor(as.character(x), levels = levels(x), ordered = is.ordered(x))
    else if (is.character(x) || is.numeric(x) || is.logical(x)) attributes(x) <- NULL
    d[[nm]] <- x
  }
  attributes(d) <- list(names = names(d), row.names = seq_len(nrow(d)), class = "data.frame")
  d
}

export_dataset <- function(name) {
  spec <- DATASETS[[name]]
  d <- strip_df(spec$f())
  gz <- isTRUE(spec$gz)
  file <- paste0(name, if (gz) ".csv.gz" else ".csv")
  path <- file.path(DATA_DIR, file)
  con <- if (gz) gzfile(path, "w") else file(path, "w")
  utils::write.csv(d, con, row.names = FALSE, na = "NA")
  close(con)
  cols <- lapply(names(d), function(nm) {
    x <- d[[nm]]
    out <- list(name = nm, class = col_class(x))
    if (is.factor(x)) out$levels <- I(levels(x))
    out$n_missing <- sum(is.na(x))
    out
  })
  schema <- list(dataset = name, source = spec$src, file = file, nrow = nrow(d), columns = cols)
  writeLines(toJSON(schema, auto_unbox = TRUE, pretty = TRUE, digits = NA),
             file.path(DATA_DIR, paste0(name, ".json")))
  read_dataset(name)
}

read_dataset <- function(name) {
  schema <- fromJSON(file.path(DATA_DIR, paste0(name, ".json")), simplifyVector = FALSE)
  path <- file.path(DATA_DIR, schema$file)
  classes <- vapply(schema$columns, function(c) switch(c$class, factor = , ordered = , character = "character",
                                                       integer = "integer", numeric = "numeric", logical = "logical"), "")
  names(classes) <- vapply(schema$columns, function(c) c$name, "")
  d <- utils::read.csv(path, colClasses = classes, check.names = FALSE, na.strings = "NA")
  for (c in schema$columns) {
    if (c$class %in% c("factor", "ordered"))
      d[[c$name]] <- factor(d[[c$name]], levels = unlist(c$levels), ordered = c$class == "ordered")
  }
  d
}

## -----------------------------------------------------------------------------
## Cases. fn: lmer | glmer. f: the formula as the source writes it.
## args: extra arguments as R source text (weights, offset, subset are
## evaluated in the data, as lme4 evaluates them). control: the source's own
## control (default: lme4's default). slow: marked slow in the Python suite.
## loader: "schema" (typed CSV) or "raw" (pandas.read_csv as a user would).
## -----------------------------------------------------------------------------
L <- function(id, data, f, src, REML = TRUE, args = list(), control = NULL, loader = "schema",
              slow = FALSE, satt = TRUE, note = NULL)
  list(id = id, fn = "lmer", data = data, f = f, src = src, REML = REML, args = args, control = control,
       loader = loader, slow = slow, satt = satt, note = note)
G <- function(id, data, f, src, family = "binomial", link = NULL, nAGQ = 1L, args = list(), control = NULL,
              loader = "schema", slow = FALSE, note = NULL)
  list(id = id, fn = "glmer", data = data, f = f, src = src, family = family, link = link, nAGQ = nAGQ,
       args = args, control = control, loader = loader, slow = slow, note = note)

CASES <- list(
  ## ---- lme4: examples and tests --------------------------------------------
  L("lme4_sleep_fm1", "sleepstudy", "Reaction ~ Days + (Days | Subject)", "lme4 man/lmer.Rd fm1"),
  L("lme4_sleep_fm1_ML", "sleepstudy", "Reaction ~ Days + (Days | Subject)", "lme4 man/lmer.Rd fm1_ML", REML = FALSE),
  L("lme4_sleep_zcp", "sleepstudy", "Reaction ~ Days + (Days || Subject)", "lme4 man/lmer.Rd fm2"),
  L("lme4_sleep_uncorr", "sleepstudy", "Reaction ~ Days + (1|Subject) + (0+Days|Subject)", "lme4 tests/lmer-1.R fm2"),
  L("lme4_sleep_subset", "sleepstudy", "Reaction ~ Days + (Days|Subject)", "lme4 man/sleepstudy.Rd fm1",
    args = list(subset = "Days>=2")),
  L("lme4_sleep_log", "sleepstudy", "log(Reaction) ~ log(Days+1) + (log(Days+1)|Subject)", "lme4 tests/lmer-1.R fm2l"),
  L("lmerTest_sleep_poly", "sleepstudy", "Reaction ~ poly(Days, 2) + (Days|Subject)", "lmerTest man/drop1.lmerModLmerTest.Rd"),
  L("lmerTest_sleep_quad", "sleepstudy", "Reaction ~ Days + I(Days^2) + (1|Subject) + (0+Days|Subject)",
    "lmerTest man/contest.lmerModLmerTest.Rd"),
  L("lme4_dyestuff", "dyestuff", "Yield ~ 1|Batch", "lme4 man/Dyestuff.Rd fm1"),
  L("lme4_dyestuff2", "dyestuff2", "Yield ~ 1|Batch", "lme4 man/Dyestuff.Rd fm2 (singular)"),
  L("lme4_penicillin", "penicillin", "diameter ~ (1|plate) + (1|sample)", "lme4 man/Penicillin.Rd fm1"),
  L("lme4_pastes_fm1", "pastes_reordered", "strength ~ (1|batch) + (1|sample)", "lme4 man/Pastes.Rd fm1"),
  L("lme4_pastes_fm2", "pastes_reordered", "strength ~ (1|batch/cask)", "lme4 man/Pastes.Rd fm2"),
  L("lme4_pastes_fm3", "pastes_reordered", "strength ~ (1|batch) + (1|batch:cask)", "lme4 man/Pastes.Rd fm3"),
  L("lme4_pastes_fm4", "pastes_reordered", "strength ~ (1|batch/sample)", "lme4 man/Pastes.Rd fm4"),
  L("lme4_pastes_fm5", "pastes_reordered", "strength ~ (1|batch) + (1|cask)", "lme4 man/Pastes.Rd fm5"),
  L("lme4_cake_fm1", "cake", "angle ~ recipe * temperature + (1|recipe:replicate)", "lme4 man/cake.Rd fm1", REML = FALSE),
  L("lme4_cake_fm2", "cake", "angle ~ recipe + temperature + (1|recipe:replicate)", "lme4 man/cake.Rd fm2", REML = FALSE),
  L("lme4_cake_fm3", "cake", "angle ~ recipe + temp + (1|recipe:replicate)", "lme4 man/cake.Rd fm3", REML = FALSE),
  L("lmerTest_cake_rankdef", "cake", "angle ~ recipe + temp + temperature + (1|recipe:replicate)",
    "lmerTest man/drop1.lmerModLmerTest.Rd (temp is collinear with temperature: lme4 drops a column)"),
  L("lme4_orthodont_nsex", "orthodont_nsex",
    "distance ~ age + (age|Subject) + (0+nsex|Subject) + (0 + nsexage|Subject)", "lme4 man/lmer.Rd"),
  L("lme4_boundary_dat", "dat20101314", "y ~ (1|Operator)+(1|Part)+(1|Part:Operator)", "lme4 tests/boundary.R fit",
    control = 'lmerControl(optimizer="Nelder_Mead")', loader = "raw"),
  L("lme4_offset_lmer", "offset_lmm", "y~x+(1|block)+offset(3*x)", "lme4 tests/offset.R fm1off"),
  L("lme4_weights_REML1", "priorweights", "y ~ x +  (1|g)", "lme4 tests/priorWeights.R REML1", args = list(weights = "w")),
  L("lme4_weights_ML2", "priorweights", "y ~ x +  (x|g)", "lme4 tests/priorWeights.R ML2", REML = FALSE,
    args = list(weights = "w")),
  L("lme4_weights_REML3", "priorweights", "y ~ x + z + (x+z|g)", "lme4 tests/priorWeights.R REML3",
    args = list(weights = "w")),
  L("lme4_weights_sleep", "sleepstudy_w", "Reaction ~ Days + (Days|Subject)", "lme4 tests/priorWeights.R sleepLmer",
    REML = FALSE, args = list(weights = "w")),
  L("lme4_chem97_nested", "chem97", "score ~ (1|lea/school)", "lme4 tests/priorWeights.R Chem97Lmer", satt = FALSE),
  L("mlmRev_chem97_fm2", "chem97", "score ~ gcsecnt + (1|school) + (1|lea)", "mlmRev man/Chem97.Rd fm2",
    satt = FALSE),
  G("lme4_cbpp_gm1", "cbpp_obs", "cbind(incidence, size - incidence) ~ period + (1 | herd)", "lme4 man/glmer.Rd gm1"),
  G("lme4_cbpp_agq9", "cbpp_obs", "cbind(incidence, size - incidence) ~ period + (1 | herd)", "lme4 man/glmer.Rd gm1a",
    nAGQ = 9L),
  G("lme4_cbpp_nagq0", "cbpp_obs", "cbind(incidence, size - incidence) ~ period + (1 | herd)", "lme4 man/glmer.Rd gm1a",
    nAGQ = 0L),
  G("lme4_cbpp_prop", "cbpp_obs", "incidence / size ~ period + (1 | herd)", "lme4 man/cbpp.Rd m1p",
    args = list(weights = "size")),
  G("lme4_cbpp_obs", "cbpp_obs", "cbind(incidence, size - incidence) ~ period + (1 | herd) +  (1|obs)",
    "lme4 man/glmer.Rd gm2"),
  G("lme4_grouse_full", "grouseticks", "TICKS~YEAR+HEIGHT+(1|BROOD)+(1|INDEX)+(1|LOCATION)",
    "lme4 man/grouseticks.Rd full_mod1", family = "poisson"),
  G("lme4_verbagg_2way", "verbagg", "r2 ~ (Anger + Gender + btype + situ)^2 + (1|id) + (1|item)",
    "lme4 man/VerbAgg.Rd fmVA", slow = TRUE),
  G("lme4_culcita", "culcita", "predation~ttt+(1|block)", "lme4 tests/bootMer.R cmod"),
  G("lme4_gopher", "gopher", "shells ~ factor(year) + prev + offset(log(Area)) + (1 | Site)",
    "lme4 man/gopherdat2.Rd gopher_glmer", family = "poisson"),
  G("lme4_respiratory", "respiratory", "outcome~center+treat+sex+age+baseline+(1|idctr)",
    "lme4 tests/respiratory.R m_glmer_4.L"),
  G("lme4_respiratory_agq5", "respiratory", "outcome~center+treat+sex+age+baseline+(1|idctr)",
    "lme4 tests/respiratory.R m_glmer_4.GHQ5", nAGQ = 5L),
  G("lme4_prlogistic", "prlogistic", "rgi ~ sex + pped + (1|schoolid)", "lme4 tests/prLogistic.R lme4_est"),
  G("lme4_hessianfly", "hessianfly", "cbind(y, n-y) ~ gen + (1|block)", "lme4 tests/agridat_gotway.R m1"),
  G("lme4_trees513", "trees513", "damage ~ species - 1 + (1 | lattice / plot)", "lme4 tests/HSAURtrees.R mmodB",
    slow = TRUE),
  G("lme4_crabs", "crabs",
    paste("cbind(final.snail.density, snails.lost) ~ crab.speciesS + crab.speciesW + crab.sizeS + crab.sizeM +",
          "snail.sizeS + crab.speciesS:crab.sizeS + crab.speciesS:crab.sizeM + crab.speciesS:snail.sizeS +",
          "crab.speciesW:snail.sizeS + crab.sizeS:snail.sizeS + crab.sizeM:snail.sizeS +",
          "crab.speciesS:crab.sizeS:snail.sizeS + crab.speciesS:crab.sizeM:snail.sizeS + (snail.size | plot)"),
    "lme4 tests/testcrab.R glmer1B (formula fr)"),
  G("lme4_radinger", "radinger", "presabs~predictor+(1|species)", "lme4 tests/testthat/test-glmer.R"),
  G("lme4_mastitis", "mastitis", "NCM ~ birth + calvingYear + (1|sire) + (1|herd)", "lme4 tests/testthat/test-glmer.R g1",
    family = "poisson", control = 'glmerControl(optimizer=c("bobyqa","Nelder_Mead"))', slow = TRUE),
  G("lme4_offset_glmer", "offset_glmm", "y~x+(1|block)+offset(3*x)", "lme4 tests/offset.R gm1off", family = "poisson",
    control = 'glmerControl(check.conv.grad="ignore")'),
  G("lme4_bacteria_wk2", "bacteria_wk2", "y ~ trt + wk2 + (1|ID)",
    "lme4 tests/glmer-1.R fm5 (with R's default treatment contrasts instead of contr.sdif: same likelihood)"),
  G("lme4_arabidopsis", "arabidopsis", "total.fruits~status+nutrient+(1|gen)",
    "lme4 tests/testthat/test-glmernb.R (negative binomial there; Poisson here)", family = "poisson"),
  ## ---- mlmRev / lmerTest / pbkrtest examples ---------------------------------
  G("mlmRev_contra_fm1", "contraception", "use ~ urban+age+livch+(1|district)", "mlmRev man/Contraception.Rd fm1"),
  G("mlmRev_contra_fm2", "contraception", "use ~ urban+age+livch+(urban|district)", "mlmRev man/Contraception.Rd fm2"),
  G("mlmRev_mmmec", "mmmec", "deaths ~ uvb + (1|region)", "mlmRev man/Mmmec.Rd fm1", family = "poisson",
    args = list(offset = "log(expected)")),
  L("mlmRev_exam_fm1", "exam", "normexam ~ standLRT + sex + schgend + (1|school)", "mlmRev man/Exam.Rd fm1"),
  L("mlmRev_exam_fm2", "exam", "normexam ~ standLRT*sex + schgend + (1|school)", "mlmRev man/Exam.Rd fm2"),
  L("mlmRev_egsingle", "egsingle", "math~year*size+female+(1|childid)+(1|schoolid)", "mlmRev man/egsingle.Rd fm1",
    satt = FALSE),
  L("lmerTest_ham", "ham", "Informed.liking ~ Product*Information + (1|Consumer)", "lmerTest man/ham.Rd"),
  L("lmerTest_carrots", "carrots", "Preference ~ sens2 + Homesize + (1 + sens2 | Consumer)", "lmerTest man/carrots.Rd"),
  L("lmerTest_tvbo", "tvbo", "Coloursaturation ~ TVset + Picture + (1|Assessor:TVset) + (1|Assessor)",
    "lmerTest man/TVbo.Rd"),
  L("pbkrtest_beets", "beets", "sugpct ~ block + sow + harvest + (1|block:harvest)", "pbkrtest man/pb-refdist.Rd beet0",
    REML = FALSE),
  ## ---- nlme (Pinheiro & Bates scripts), random-effects structure in lme4 syntax ----
  L("nlme_rail", "rail", "travel ~ 1 + (1|Rail)", "nlme scripts/ch01.R fm1Rail.lme: random = ~ 1 | Rail"),
  L("nlme_ergostool", "ergostool", "effort ~ Type + (1|Subject)", "nlme scripts/ch01.R fm1Stool"),
  L("nlme_ergostool_noint", "ergostool", "effort ~ Type - 1 + (1|Subject)", "nlme scripts/ch01.R fm3Stool"),

  L("nlme_machines1", "machines", "score ~ Machine + (1|Worker)", "nlme scripts/ch01.R fm1Machine"),
  L("nlme_machines2", "machines", "score ~ Machine + (1|Worker/Machine)", "nlme scripts/ch01.R fm2Machine"),
  L("nlme_machines3", "machines", "score ~ Machine + (Machine - 1|Worker)",
    "nlme scripts/ch01.R fm3Machine: random = ~Machine - 1 |Worker"),
  L("issue15_machines_zcp", "machines", "score ~ Machine + (Machine || Worker)", "issue 15 (Machines, lme4's || on a factor)"),
  L("nlme_machines_unbal", "machines_unbal", "score ~ Machine + (1|Worker/Machine)", "nlme scripts/ch01.R fm1MachinesU"),
  L("nlme_orthofem1", "orthofem", "distance ~ age + (1|Subject)", "nlme scripts/ch01.R fm1OrthF"),
  L("nlme_orthofem2", "orthofem", "distance ~ age + (age|Subject)", "nlme scripts/ch01.R fm2OrthF"),
  L("nlme_orthodont_c", "orthodont", "distance ~ I(age-11) + (I(age-11)|Subject)", "nlme scripts/ch04.R fm1Orth.lme"),
  L("nlme_orthodont_sex", "orthodont", "distance ~ Sex*I(age-11) + (I(age-11)|Subject)", "nlme scripts/ch05.R"),
  L("nlme_pixel1", "pixel", "pixel ~ day + I(day^2) + (day|Dog) + (1|Dog:Side)",
    "nlme scripts/ch01.R fm1Pixel: random = list(Dog = ~ day, Side = ~ 1)"),
  L("nlme_pixel3", "pixel", "pixel ~ day + I(day^2) + (1|Dog/Side)", "nlme scripts/ch01.R fm3Pixel"),
  L("nlme_oats1", "oats", "yield ~ ordered(nitro) * Variety + (1|Block/Variety)", "nlme scripts/ch01.R fm1Oats"),
  L("nlme_oats2", "oats", "yield ~ nitro + (1|Block/Variety)", "nlme scripts/ch01.R fm2Oats"),
  L("nlme_assay", "assay", "logDens ~ sample * dilut + (1|Block) + (1|Block:sample) + (1|Block:dilut)",
    "nlme scripts/ch04.R fm1Assay: pdBlocked(list(pdIdent(~1), pdIdent(~sample-1), pdIdent(~dilut-1)))"),
  L("nlme_oxide", "oxide", "Thickness ~ 1 + (1|Lot/Wafer)", "nlme scripts/ch04.R fm1Oxide (grouping Lot/Wafer)"),
  L("nlme_wafer", "wafer",
    "current ~ voltage + I(voltage^2) + (voltage + I(voltage^2) || Wafer) + (voltage + I(voltage^2) || Wafer:Site)",
    "nlme scripts/ch04.R fm1Wafer: list(Wafer = pdDiag(~voltage+I(voltage^2)), Site = pdDiag(~voltage+I(voltage^2)))"),
  L("nlme_bodyweight", "bodyweight", "weight ~ Time * Diet + (Time|Rat)", "nlme scripts/ch05.R fm1BW.lme"),
  L("nlme_ovary", "ovary", "follicles ~ sin(2*pi*Time) + cos(2*pi*Time) + (sin(2*pi*Time) || Mare)",
    "nlme scripts/ch05.R fm1Ovar.lme: random = pdDiag(~sin(2*pi*Time)) (without its correlation)"),
  L("nlme_igf", "igf", "conc ~ age + (age || Lot)", "nlme scripts/ch04.R fm2IGF.lme: random = pdDiag(~age)"),
  ## ---- MixedModels.jl test/modelcache.jl (fit by ML, MixedModels' default) ----
  L("mmjl_sleep_int", "sleepstudy", "Reaction ~ 1 + Days + (1|Subject)", "MixedModels.jl test/modelcache.jl sleepstudy[1]",
    REML = FALSE, loader = "raw"),
  L("mmjl_sleep_zcp", "sleepstudy", "Reaction ~ 1 + Days + (1 + Days || Subject)",
    "MixedModels.jl test/modelcache.jl sleepstudy[2]: zerocorr(1 + days | subj)", REML = FALSE),
  L("mmjl_dyestuff", "dyestuff", "Yield ~ 1 + (1|Batch)", "MixedModels.jl test/modelcache.jl dyestuff", REML = FALSE,
    loader = "raw"),
  L("mmjl_dyestuff2", "dyestuff2", "Yield ~ 1 + (1|Batch)", "MixedModels.jl test/modelcache.jl dyestuff2",
    REML = FALSE, loader = "raw"),
  L("mmjl_penicillin", "penicillin", "diameter ~ 1 + (1|plate) + (1|sample)", "MixedModels.jl test/modelcache.jl penicillin",
    REML = FALSE, loader = "raw"),
  L("mmjl_pastes_colon", "pastes", "strength ~ 1 + (1|batch:cask)", "MixedModels.jl test/modelcache.jl pastes[1]: (1 | batch & cask)",
    REML = FALSE),
  L("mmjl_oxide2", "oxide", "Thickness ~ 1 + Source + (1 + Source|Lot) + (1 + Source|Lot:Wafer)",
    "MixedModels.jl test/modelcache.jl oxide[2]", REML = FALSE),
  L("mmjl_insteval1", "insteval", "y ~ 1 + service * dept + (1|s) + (1|d)", "MixedModels.jl test/modelcache.jl insteval[1]",
    REML = FALSE, slow = TRUE, satt = FALSE),
  L("mmjl_insteval2", "insteval", "y ~ 1 + service + (1|s) + (1|d) + (1|dept)", "MixedModels.jl test/modelcache.jl insteval[2]",
    REML = FALSE, slow = TRUE, satt = FALSE),
  G("mmjl_contra1", "contraception", "use ~ 1 + age + I(age^2) + urban + livch + (1 | urban:district)",
    "MixedModels.jl test/modelcache.jl contra[1]: abs2(age), (1 | urban & dist)"),
  G("mmjl_contra2", "contraception", "use ~ 1 + urban + (1 + urban | district)", "MixedModels.jl test/modelcache.jl contra[2]"),
  G("mmjl_grouse", "grouseticks", "TICKS ~ 1 + YEAR + cHEIGHT + (1|INDEX) + (1|BROOD) + (1|LOCATION)",
    "MixedModels.jl test/modelcache.jl grouseticks", family = "poisson"),
  G("mmjl_verbagg", "verbagg", "r2 ~ 1 + Anger + Gender + btype + situ + (1|id) + (1|item)",
    "MixedModels.jl test/modelcache.jl verbagg"),
  ## ---- glmmTMB / MASS examples ------------------------------------------------
  G("tmb_salamanders", "salamanders", "count ~ spp * mined + (1|site)",
    "glmmTMB man/Salamanders.Rd zipm3 without its zero-inflation", family = "poisson"),
  G("tmb_owls", "owls", "SiblingNegotiation ~ FoodTreatment*SexParent + (1|Nest) + offset(log(BroodSize))",
    "glmmTMB man/Owls.Rd owls_nb1 as a Poisson GLMM", family = "poisson"),
  G("mass_bacteria", "bacteria", "y ~ trt + I(week > 2) + (1|ID)", "MASS man/bacteria.Rd glmmPQL example, by Laplace"),
  G("mass_epil", "epil", "y ~ lbase*trt + lage + V4 + (1|subject)", "MASS man/epil.Rd glm example + (1|subject)",
    family = "poisson")
)

## -----------------------------------------------------------------------------
## Fitting
## -----------------------------------------------------------------------------
TIGHT_LMER <- list(
  nlopt = lmerControl(optimizer = "nloptwrap",
                      optCtrl = list(algorithm = "NLOPT_LN_BOBYQA", ftol_abs = 1e-14, xtol_abs = 1e-12,
                                         ftol_rel = 1e-15, xtol_rel = 1e-12, maxeval = 1e5)),
  bobyqa = lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 0.02, rhoend = 1e-12, maxfun = 1e5))
)
TIGHT_GLMER <- list(
  bobyqa = glmerControl(tolPwrss = 1e-12, optimizer = c("bobyqa", "bobyqa"),
                        optCtrl = list(rhoend = 1e-10, maxfun = 1e5)),
  nlopt = glmerControl(tolPwrss = 1e-12, optimizer = c("nloptwrap", "nloptwrap"),
                       optCtrl = list(algorithm = "NLOPT_LN_BOBYQA", ftol_abs = 1e-14, xtol_abs = 1e-12,
                                         ftol_rel = 1e-15, xtol_rel = 1e-12, maxeval = 1e5))
)

fit_case <- function(cs, d, control, start = NULL) {
  env <- new.env(parent = globalenv())
  env$d <- d
  f <- stats::as.formula(cs$f, env = env)
  args <- list(f, data = quote(d))
  for (nm in names(cs$args)) args[[nm]] <- str2lang(cs$args[[nm]])
  if (cs$fn == "lmer") {
    args$REML <- cs$REML
    fun <- quote(lme4::lmer)
  } else {
    fam <- if (is.null(cs$link)) get(cs$family)() else get(cs$family)(link = cs$link)
    args$family <- fam
    args$nAGQ <- cs$nAGQ
    fun <- quote(lme4::glmer)
  }
  if (!is.null(control)) args$control <- control
  if (!is.null(start)) args$start <- start
  cl <- as.call(c(fun, args))
  warns <- character(); msgs <- character()
  t0 <- proc.time()[["elapsed"]]
  m <- withCallingHandlers(eval(cl, env),
                           warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") },
                           message = function(m) { msgs <<- c(msgs, conditionMessage(m)); invokeRestart("muffleMessage") })
  list(m = m, warnings = warns, messages = msgs, seconds = proc.time()[["elapsed"]] - t0)
}

criterion_of <- function(m) {
  if (is(m, "glmerMod")) -2 * as.numeric(logLik(m))
  else if (isREML(m)) REMLcrit(m) else deviance(m)
}

varcorr_rows <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  lapply(seq_len(nrow(vc)), function(i) list(
    grp = vc$grp[i], var1 = if (is.na(vc$var1[i])) NULL else vc$var1[i],
    var2 = if (is.na(vc$var2[i])) NULL else vc$var2[i], vcov = vc$vcov[i], sdcor = vc$sdcor[i]))
}

ranef_head <- function(m, k = 3) {
  re <- ranef(m)
  out <- list()
  for (g in names(re)) {
    r <- as.matrix(re[[g]])
    r <- r[seq_len(min(k, nrow(r))), , drop = FALSE]
    out[[g]] <- list(levels = I(rownames(r)), terms = I(colnames(r)),
                     values = lapply(seq_len(nrow(r)), function(i) arr(r[i, ])))
  }
  out
}

record_fit <- function(res, control_text) {
  m <- res$m
  isG <- is(m, "glmerMod")
  ll <- logLik(m)
  X <- getME(m, "X")
  dropped <- attr(X, "col.dropped")
  opt <- m@optinfo
  list(
    control = control_text,
    criterion = criterion_of(m),
    criterion_name = if (isG) "-2 logLik (Laplace/AGQ)" else if (isREML(m)) "REML criterion" else "deviance (ML)",
    logLik = as.numeric(ll), npar = attr(ll, "df"), nobs = nobs(m),
    deviance = if (isG) deviance(m) else NULL,
    fixef = named(fixef(m)),
    se = named(sqrt(diag(as.matrix(vcov(m))))),
    theta = named(getME(m, "theta")),
    sigma = if (isG) NULL else sigma(m),
    varcorr = varcorr_rows(m),
    ngrps = as.list(ngrps(m)),
    ranef_head = ranef_head(m),
    fitted_head = arr(utils::head(fitted(m), 6)),
    col_dropped = if (is.null(dropped)) NULL else named(dropped),
    isSingular = isSingular(m),
    hessian_kappa = if (isG && !is.null(opt$derivs$Hessian)) kappa(opt$derivs$Hessian, exact = TRUE) else NULL,
    optimizer = paste(opt$optimizer, collapse = "/"),
    feval = opt$feval,
    conv_code = opt$conv$opt,
    optimizer_message = if (is.null(opt$message)) NULL else opt$message,
    lme4_messages = I(as.character(unlist(opt$conv$lme4$messages))),
    warnings = I(unique(res$warnings)),
    messages = I(unique(res$messages)),
    seconds = res$seconds
  )
}

## glmer: SEs from a smooth Hessian of the tight fit's deviance.
## lme4's vcov() takes them from deriv12 with one absolute step of 1e-4 for
## every parameter. For small displacements lme4's deviance function does not
## re-converge the conditional modes (it behaves like the deviance at fixed
## u, whose curvature is larger), so on that scale it is not the Laplace
## deviance it is on larger ones. On Arabidopsis the nutrient curvature is
## 327626 with steps of 1e-5, 1e-4 or 3e-3 but 327424 with 1e-2 (the value
## hierbayes' deviance gives at every step), and lme4's SEs come out up to
## 3e-4 (Arabidopsis) or 9e-4 (Salamanders) too small.
## Here every parameter is stepped on its own scale (0.5 and 1 standard
## error for beta; 0.1 theta, at least 0.02, for theta), where the modes are
## re-converged, and the two central-difference Hessians are combined by
## Richardson extrapolation, (4 H(h/2) - H(h)) / 3, to remove the h^2 error.
## These agree with hierbayes' SEs to ~1e-6 where the deviance is close to
## quadratic on the SE scale; elsewhere (extrapolation changes the SEs by
## more than 1e-3) se_smooth is left out.
glmer_se_smooth <- function(m) {
  tryCatch({
    dd <- suppressWarnings(suppressMessages(update(m, devFunOnly = TRUE)))
    th <- getME(m, "theta")
    be <- fixef(m)
    k <- length(th)
    p <- c(th, be)
    sc <- c(pmax(0.1 * abs(th), 0.02), sqrt(diag(as.matrix(vcov(m)))))
    g <- function(z) dd(p + sc * z)
    lower <- c((getME(m, "lower") - th) / sc[seq_len(k)], rep(NA, length(be)))
    lower[is.infinite(lower)] <- NA
    z0 <- rep(0, length(p))
    H1 <- lme4:::deriv12(g, z0, delta = 0.5, lower = lower)$Hessian
    H2 <- lme4:::deriv12(g, z0, delta = 1, lower = lower)$Hessian
    se_of <- function(Hz) {
      H <- Hz / outer(sc, sc)
      H <- (H + t(H)) / 2
      sqrt(diag(2 * solve(H)[-seq_len(k), -seq_len(k), drop = FALSE]))
    }
    se_r <- se_of((4 * H1 - H2) / 3)
    se_1 <- se_of(H1)
    ## where the deviance is far from quadratic over +-1 SE (near-separation,
    ## e.g. Salamanders' empty species x mined cells) the extrapolation is not
    ## to be trusted: no smooth SEs then (the tests fall back on lme4's)
    if (any(!is.finite(se_r)) || max(abs(se_r / se_1 - 1)) > 1e-3) NULL
    else named(stats::setNames(se_r, names(be)))
  }, error = function(e) NULL)
}

satterthwaite_df <- function(m) {
  out <- tryCatch({
    mt <- lmerTest::as_lmerModLmerTest(m)
    co <- summary(mt, ddf = "Satterthwaite")$coefficients
    named(stats::setNames(co[, "df"], rownames(co)))
  }, error = function(e) NULL)
  out
}

max_abs_diff <- function(a, b) if (length(a)) max(abs(unlist(a) - unlist(b))) else 0

ctl_text <- function(cs, nm) switch(nm,
  nlopt = if (cs$fn == "lmer") "lmerControl(optimizer='nloptwrap', optCtrl=list(ftol_abs=1e-14, xtol_abs=1e-12, ftol_rel=1e-15, xtol_rel=1e-12, maxeval=1e5))"
          else "glmerControl(tolPwrss=1e-12, optimizer='nloptwrap' (both stages), optCtrl=list(ftol_abs=1e-14, xtol_abs=1e-12, ftol_rel=1e-15, xtol_rel=1e-12, maxeval=1e5))",
  bobyqa = if (cs$fn == "lmer") "lmerControl(optimizer='bobyqa', optCtrl=list(rhobeg=0.02, rhoend=1e-12, maxfun=1e5))"
           else "glmerControl(tolPwrss=1e-12, optimizer='bobyqa' (both stages), optCtrl=list(rhoend=1e-10, maxfun=1e5))")

POLISH_OPTCTRL <- list(
  bobyqa = list(rhobeg = 1e-3, rhoend = 1e-12, maxfun = 1e5),
  nloptwrap = list(algorithm = "NLOPT_LN_BOBYQA", ftol_abs = 1e-14, xtol_abs = 1e-12, ftol_rel = 1e-15,
                   xtol_rel = 1e-12, maxeval = 1e5))
polish_control <- function(cs, opt) {
  if (cs$fn == "lmer") return(lmerControl(optimizer = opt, optCtrl = POLISH_OPTCTRL[[opt]]))
  if (cs$nAGQ == 0L) return(glmerControl(tolPwrss = 1e-12, optimizer = opt, optCtrl = POLISH_OPTCTRL[[opt]]))
  glmerControl(tolPwrss = 1e-12, optimizer = opt, nAGQ0initStep = FALSE, optCtrl = POLISH_OPTCTRL[[opt]])
}
pc_text <- function(cs, opt) {
  oc <- if (opt == "bobyqa") "rhobeg=1e-3, rhoend=1e-12, maxfun=1e5"
        else "ftol_abs=1e-14, xtol_abs=1e-12, ftol_rel=1e-15, xtol_rel=1e-12, maxeval=1e5"
  if (cs$fn == "lmer") sprintf("lmerControl(optimizer='%s', optCtrl=list(%s))", opt, oc)
  else sprintf("glmerControl(tolPwrss=1e-12, optimizer='%s'%s, optCtrl=list(%s))", opt,
               if (cs$nAGQ == 0L) "" else ", nAGQ0initStep=FALSE", oc)
}

run_case <- function(cs, d) {
  cat(sprintf("%-28s", cs$id))
  src_control <- if (is.null(cs$control)) NULL else eval(str2lang(cs$control))
  def <- fit_case(cs, d, src_control)
  tights <- if (cs$fn == "lmer") TIGHT_LMER else TIGHT_GLMER
  ## a fit that fails under one tight control is simply left out
  if (cs$fn == "glmer" && cs$nAGQ == 0L) {
    tights <- list(bobyqa = glmerControl(tolPwrss = 1e-12, optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10, maxfun = 1e5)),
                   nlopt = glmerControl(tolPwrss = 1e-12, optimizer = "nloptwrap",
                                        optCtrl = list(algorithm = "NLOPT_LN_BOBYQA", ftol_abs = 1e-14, xtol_abs = 1e-12,
                                         ftol_rel = 1e-15, xtol_rel = 1e-12, maxeval = 1e5)))
  }
  tfits <- list()
  for (nm in names(tights)) {
    r <- tryCatch(fit_case(cs, d, tights[[nm]]), error = function(e) { cat(" [", nm, "failed:", conditionMessage(e), "]"); NULL })
    if (!is.null(r)) { r$name <- nm; r$ctl <- ctl_text(cs, nm); tfits[[length(tfits) + 1]] <- r }
  }
  ## polish each route (each initial tight fit): restart from its best fit so
  ## far, alternating the two optimizers (glmer: straight into the second
  ## stage, nAGQ0initStep = FALSE), until a round gains < 1e-11 relative
  polish_route <- function(r0) {
    fits <- list(r0)
    crit_min <- function() min(vapply(fits, function(r) criterion_of(r$m), 0))
    for (round in 1:4) {
      before <- crit_min()
      for (opt in c("bobyqa", "nloptwrap")) {
        b <- fits[[which.min(vapply(fits, function(r) criterion_of(r$m), 0))]]$m
        st <- if (cs$fn == "lmer" || cs$nAGQ == 0L) list(theta = getME(b, "theta"))
              else list(theta = getME(b, "theta"), fixef = fixef(b))
        r <- tryCatch(fit_case(cs, d, polish_control(cs, opt), start = st), error = function(e) NULL)
        if (!is.null(r)) {
          r$name <- paste0(r0$name, "+polish", round, "_", opt)
          r$ctl <- paste0(r0$ctl, "; then ", pc_text(cs, opt), " from the best fit so far")
          fits[[length(fits) + 1]] <- r
        }
      }
      if (before - crit_min() < 1e-11 * max(1, abs(before))) break
    }
    fits[[which.min(vapply(fits, function(r) criterion_of(r$m), 0))]]
  }
  routes <- lapply(tfits, polish_route)
  crits <- vapply(routes, function(r) criterion_of(r$m), 0)
  ord <- order(crits)
  best <- routes[[ord[1]]]
  ## the spread: the best fit against the best fit of the other route
  other <- if (length(ord) > 1) routes[[ord[2]]] else NULL
  tfits <- c(tfits, routes)
  rec_def <- record_fit(def, if (is.null(cs$control)) "lme4 default" else cs$control)
  rec_tight <- record_fit(best, best$ctl)
  mt <- best$m
  se_t <- sqrt(diag(as.matrix(vcov(mt))))
  crit_gap <- rec_def$criterion - rec_tight$criterion
  th_gap <- max_abs_diff(rec_def$theta, rec_tight$theta)
  be_gap <- if (length(se_t)) max(abs(unlist(rec_def$fixef) - unlist(rec_tight$fixef)) / se_t) else 0
  early <- (crit_gap > 1e-8 * max(1, abs(rec_tight$criterion))) || th_gap > 1e-5 || be_gap > 1e-4
  spread <- if (is.null(other)) NULL else list(
    criterion = criterion_of(other$m) - rec_tight$criterion,
    theta = max_abs_diff(getME(other$m, "theta"), getME(mt, "theta")),
    fixef_rel = max(abs(fixef(other$m) - fixef(mt)) / pmax(abs(fixef(mt)), se_t)),
    sigma_rel = if (cs$fn == "lmer") abs(sigma(other$m) / sigma(mt) - 1) else NULL,
    se_rel = max(abs(sqrt(diag(as.matrix(vcov(other$m)))) / se_t - 1)),
    best = best$name, other = other$name)
  if (cs$fn == "lmer" && isTRUE(cs$satt)) rec_tight$satterthwaite_df <- satterthwaite_df(mt)
  if (cs$fn == "glmer" && cs$nAGQ > 0L) {
    rec_tight$se_smooth <- glmer_se_smooth(mt)
    if (!is.null(other)) spread$se_smooth_rel <- {
      so <- glmer_se_smooth(other$m)
      if (is.null(so) || is.null(rec_tight$se_smooth)) NULL else max(abs(unlist(so) / unlist(rec_tight$se_smooth) - 1))
    }
  }
  cat(sprintf(" crit %.10g  default-tight %.2e  theta gap %.1e  beta gap %.1e SE  spread %s  [%.1fs]\n",
              rec_tight$criterion, crit_gap, th_gap, be_gap,
              if (is.null(spread)) "-" else sprintf("%.1e/%.1e", spread$criterion, spread$theta),
              def$seconds + sum(vapply(tfits, function(r) r$seconds, 0))))
  out <- list(
    id = cs$id, source = cs$src, fn = cs$fn, dataset = cs$data,
    data = file.path(DATA_DIR, paste0(cs$data, ".json")),
    formula = cs$f,
    REML = if (cs$fn == "lmer") cs$REML else NULL,
    family = if (cs$fn == "glmer") cs$family else "gaussian",
    link = if (cs$fn == "glmer") (if (is.null(cs$link)) get(cs$family)()$link else cs$link) else "identity",
    nAGQ = if (cs$fn == "glmer") cs$nAGQ else NULL,
    args = if (length(cs$args)) cs$args else NULL,
    source_control = cs$control,
    loader = cs$loader, slow = cs$slow, note = cs$note,
    compare = "tight",
    default_stops_early = early,
    default_minus_tight = list(criterion = crit_gap, theta_max_abs = th_gap, fixef_max_in_se = be_gap),
    tight_spread = spread,
    default = rec_def,
    tight = rec_tight
  )
  out
}

## -----------------------------------------------------------------------------
## Main
## -----------------------------------------------------------------------------
ids <- vapply(CASES, function(cs) cs$id, "")
stopifnot(!anyDuplicated(ids))
if (length(only)) {
  bad <- setdiff(only, ids)
  if (length(bad)) stop("unknown case ids: ", paste(bad, collapse = ", "))
}
run_ids <- if (length(only)) only else ids
old <- if (length(only) && file.exists(OUT_JSON)) fromJSON(OUT_JSON, simplifyVector = FALSE)$cases else list()

needed <- unique(vapply(CASES[ids %in% run_ids], function(cs) cs$data, ""))
data_cache <- list()
for (nm in needed) data_cache[[nm]] <- export_dataset(nm)

results <- old
for (cs in CASES) {
  if (!cs$id %in% run_ids) next
  results[[cs$id]] <- run_case(cs, data_cache[[cs$data]])
}
results <- results[intersect(ids, names(results))]

pkgs <- c("lme4", "lmerTest", "Matrix", "minqa", "nloptr", "nlme", "mlmRev", "glmmTMB", "MASS", "pbkrtest", "jsonlite")
meta <- list(
  R_version = R.version.string,
  packages = lapply(stats::setNames(pkgs, pkgs), function(p) as.character(packageVersion(p))),
  date = format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z"),
  command = "Rscript tests/reference/make_external.R",
  platform = R.version$platform,
  file = "external_reference.json",
  compare = paste("tests compare with cases[id]$tight, the lower-criterion of two tight refits;",
                  "cases[id]$default is lme4's fit as the source writes it"),
  tight_controls = list(lmer = list(nlopt = "nloptwrap BOBYQA ftol_abs=1e-14 xtol_abs=1e-12 ftol_rel=1e-15 xtol_rel=1e-12",
                                    bobyqa = "minqa bobyqa rhobeg=0.02 rhoend=1e-12"),
                        glmer = list(bobyqa = "tolPwrss=1e-12, bobyqa rhoend=1e-10 in both stages",
                                     nlopt = "tolPwrss=1e-12, nloptwrap BOBYQA ftol_abs=1e-14 xtol_abs=1e-12 ftol_rel=1e-15 xtol_rel=1e-12 in both stages"))
)
writeLines(toJSON(list(meta = meta, cases = results), auto_unbox = TRUE, digits = NA, null = "null", na = "null",
                  pretty = FALSE),
           OUT_JSON)
n_early <- sum(vapply(results, function(r) isTRUE(r$default_stops_early), TRUE))
cat(sprintf("\n%d cases written to %s; lme4's default stops early on %d of them\n", length(results), OUT_JSON, n_early))
