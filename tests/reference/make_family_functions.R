# R's link functions and family functions at chosen points (tests/test_families.py).
# make.link's linkinv and mu.eta, with their clamping at extreme linear predictors; binomial() and
# poisson()'s variance, dev.resids and aic, the pieces lme4's glmResp evaluates.
# Run from the repository root: Rscript tests/reference/make_family_functions.R
suppressMessages(library(jsonlite))

etas <- c(-40, -12, -8.2, -1.5, 0, 0.7, 3, 8.2, 12, 40)
links <- list()
for (name in c("logit", "probit", "cloglog", "log", "identity", "inverse", "sqrt")) {
  lk <- make.link(name)
  eta <- switch(name, inverse = c(0.05, 0.5, 2, 40), sqrt = c(0.01, 0.5, 2, 40), etas)
  mu <- lk$linkinv(eta)
  # JSON keeps 15 significant digits: g of a mean near 0 or 1 would magnify their rounding
  ok <- switch(name, logit = , probit = , cloglog = mu > 1e-4 & mu < 1 - 1e-4, log = , inverse = , sqrt = mu > 0,
               TRUE)
  links[[name]] <- list(eta = eta, linkinv = mu, mu_eta = lk$mu.eta(eta),
                        mu = mu[ok], linkfun = lk$linkfun(mu[ok]))
}

y <- c(0, 0.25, 0.5, 1, 1, 0.1)
mu <- c(0.2, 0.3, 0.5, 0.9, 0.999, 0.05)
wt <- c(4, 4, 2, 1, 10, 10)
b <- binomial()
binom <- list(y = y, mu = mu, wt = wt, variance = b$variance(mu), dev_resids = b$dev.resids(y, mu, wt),
              aic = b$aic(y, wt, mu, wt, sum(b$dev.resids(y, mu, wt))))
yc <- c(0, 1, 3, 7, 0, 12)
muc <- c(0.5, 1.2, 2.5, 6, 1e-3, 15)
wtc <- c(1, 1, 2, 1, 3, 0.5)
p <- poisson()
pois <- list(y = yc, mu = muc, wt = wtc, variance = p$variance(muc), dev_resids = p$dev.resids(yc, muc, wtc),
             aic = p$aic(yc, NULL, muc, wtc, NULL))

res <- list(
  meta = list(R_version = R.version.string,
              packages = list(stats = as.character(packageVersion("stats")),
                              jsonlite = as.character(packageVersion("jsonlite"))),
              date = format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z"),
              command = "Rscript tests/reference/make_family_functions.R",
              file = "family_functions_reference.json"),
  links = links, binomial = binom, poisson = pois)
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, na = "null", null = "null", pretty = TRUE),
           "tests/reference/family_functions_reference.json")
cat("wrote tests/reference/family_functions_reference.json\n")
