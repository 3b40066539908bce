"""Regenerate the small input files of the bad-data tests (run: python make_cases.py).

``applications.csv`` is a clean, synthetic loan book of 300 applications; every other file is
that book with one defect a finance file really has. The files are committed; this script
documents exactly how each was made.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def clean() -> pd.DataFrame:
    rng = np.random.default_rng(20261129)
    n = 300
    grade = rng.choice(["A", "B", "C", "D"], size=n, p=[0.3, 0.3, 0.25, 0.15])
    income = np.round(rng.lognormal(10.8, 0.5, n), -2)
    amount = np.round(rng.uniform(1_000, 30_000, n), -2)
    rate = np.round(np.select([grade == "A", grade == "B", grade == "C"], [6.5, 10.0, 14.5], 19.0)
                    + rng.normal(0, 1, n), 2)
    balance = np.round(rng.normal(2_000, 3_000, n), 0)
    # strong enough that the model's holdout ROC AUC is above 0.5 beyond noise on its 90 rows (the
    # gate's sanity rule): the true score's ROC AUC is 0.80 (it was 0.71, and a fitted model 0.62)
    logit = -2.8 + 1.5 * (grade == "C") + 2.6 * (grade == "D") - 1.6 * np.log(income / 50_000) + amount / 20_000
    status = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "bad", "good")
    opened = pd.date_range("2021-01-04", periods=n, freq="D").strftime("%Y-%m-%d")
    return pd.DataFrame({
        "application_id": np.arange(1, n + 1), "opened": opened, "income": income, "amount": amount,
        "rate": rate, "balance": balance, "grade": grade, "status": status,
    })


def main() -> None:
    base = clean()
    base.to_csv(HERE / "applications.csv", index=False)

    text = base.copy()
    text["income"] = text["income"].map(lambda v: f"{v:,.0f}")  # "54,300": thousands separators, no format declared
    text.to_csv(HERE / "numbers_as_text.csv", index=False)

    formatted = base.copy()
    formatted["amount"] = formatted["amount"].map(lambda v: f"${v:,.0f}")  # "$12,400"
    formatted["rate"] = formatted["rate"].map(lambda v: f"{v}%")  # "12.5%"
    formatted["balance"] = formatted["balance"].map(lambda v: f"({abs(v):,.0f})" if v < 0 else f"{v:,.0f}")  # "(350)"
    formatted.to_csv(HERE / "formatted_numbers.csv", index=False)

    wrong = formatted.copy()
    wrong.loc[[5, 17, 60], "amount"] = ["12,400", "EUR 3,000", "n/a"]  # not in the declared currency format
    wrong.to_csv(HERE / "wrong_number_format.csv", index=False)

    dates = base.copy()
    dates.loc[[3, 4, 200], "opened"] = ["05/01/2021", "Jan 6 2021", "2021.07.23"]
    dates.to_csv(HERE / "mixed_dates.csv", index=False)

    base.head(0).to_csv(HERE / "empty.csv", index=False)

    single = base.copy()
    single["status"] = "good"
    single.to_csv(HERE / "single_class.csv", index=False)

    missing = base.copy()
    missing["income"] = np.nan
    missing.to_csv(HERE / "all_missing_feature.csv", index=False)

    constant = base.copy()
    constant["grade"] = "B"
    constant.to_csv(HERE / "constant_feature.csv", index=False)

    rate = base.copy()
    rate.loc[rate.index[:200], "status"] = "bad"  # two thirds bad, far outside the expected range
    rate.to_csv(HERE / "event_rate_out_of_range.csv", index=False)

    sentinels = base.copy()
    sentinels.loc[[2, 9, 33, 41], "income"] = 999999  # the source system's "unknown income" code
    sentinels.to_csv(HERE / "sentinels.csv", index=False)

    invalid = base.copy()
    invalid["rate"] = invalid["rate"].astype(object)
    invalid.loc[[10, 50, 120], "rate"] = [55.0, -3.0, 99.0]  # outside the declared [0, 40]
    invalid.loc[200, "rate"] = "unknown"  # text in a numeric column
    invalid.loc[[7, 80], "grade"] = "Z"  # not among the allowed grades
    invalid.to_csv(HERE / "invalid_values.csv", index=False)


if __name__ == "__main__":
    main()
