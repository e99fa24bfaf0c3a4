#!/usr/bin/env python3
"""Generates the sample files of the trading batch (examples/trading/incoming/*/*.csv).

A small online coffee-gear shop: fourteen months of orders (2025-10-01 .. 2026-11-30), the shipment of
each order (carrier, shipped, promised and delivered dates; no delivered date = not delivered yet),
reviews of some delivered orders (points 1..5), and the US federal public holidays of 2025 and 2026.
The files are the state of the shop on 2026-11-30, the day before the batch runs (--as-of 2026-12-01).

A handful of rows are deliberately invalid (see INVALID below): the batch reports them and loads the
rest. Deterministic: Python 3 standard library only, a fixed seed; running it again rewrites the same
bytes. Usage: python3 examples/trading/generate.py
"""

import csv
import datetime as dt
import math
import random
from pathlib import Path

SEED = 20261201
FIRST_DAY = dt.date(2025, 10, 1)
LAST_DAY = dt.date(2026, 11, 30)  # the day the files were extracted
OUT = Path(__file__).resolve().parent / "incoming"

# name, unit price (USD), popularity weight, largest usual quantity
PRODUCTS = [
    ("Espresso Beans 1kg", 24.50, 16, 4),
    ("Paper Filters 100", 4.50, 12, 3),
    ("Ceramic Mug", 12.00, 11, 4),
    ("Pour-Over Kettle", 39.00, 6, 1),
    ("French Press", 29.90, 7, 1),
    ("Burr Grinder", 89.00, 4, 1),
    ("Milk Frother", 19.50, 6, 1),
    ("Tea Sampler", 15.00, 8, 2),
    ("Travel Tumbler", 22.00, 7, 2),
    ("Digital Scale", 27.00, 4, 1),
    ("Cold Brew Jar", 18.00, 5, 2),
    ("Gift Card", 25.00, 5, 3),
]

CARRIERS = [("UPS", 3), ("FedEx", 3), ("USPS", 5)]  # carrier, promised days after the order

COMMENTS = {
    1: ["Arrived broken.", "Never again", "Late, and the box was crushed"],
    2: ["Not as described", "Took forever to arrive", "Meh, cheap feel"],
    3: ["OK", "Does the job", "Fine, but pricey"],
    4: ["Good value", "Nice, would buy again", "Solid, fast delivery"],
    5: ["Excellent!", "Perfect, \"best purchase this year\"", "Love it, highly recommended"],
}


def nth_weekday(year, month, weekday, n):
    """The n-th `weekday` (Monday = 0) of a month; n = -1 is the last one."""
    if n > 0:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = dt.date(year, month + 1, 1) - dt.timedelta(days=1) if month < 12 else dt.date(year, 12, 31)
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def us_federal_holidays(year):
    """5 U.S.C. 6103: the eleven holidays, plus the observed weekday when a fixed date is on a weekend."""
    fixed = [
        (dt.date(year, 1, 1), "New Year's Day"),
        (dt.date(year, 6, 19), "Juneteenth National Independence Day"),
        (dt.date(year, 7, 4), "Independence Day"),
        (dt.date(year, 11, 11), "Veterans Day"),
        (dt.date(year, 12, 25), "Christmas Day"),
    ]
    moving = [
        (nth_weekday(year, 1, 0, 3), "Birthday of Martin Luther King, Jr."),
        (nth_weekday(year, 2, 0, 3), "Washington's Birthday"),
        (nth_weekday(year, 5, 0, -1), "Memorial Day"),
        (nth_weekday(year, 9, 0, 1), "Labor Day"),
        (nth_weekday(year, 10, 0, 2), "Columbus Day"),
        (nth_weekday(year, 11, 3, 4), "Thanksgiving Day"),
    ]
    days = fixed + moving
    for day, name in fixed:
        if day.weekday() == 5:
            days.append((day - dt.timedelta(days=1), f"{name} (observed)"))
        elif day.weekday() == 6:
            days.append((day + dt.timedelta(days=1), f"{name} (observed)"))
    return sorted(days)


def poisson(rng, mean):
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def daterange(first, last):
    d = first
    while d <= last:
        yield d
        d += dt.timedelta(days=1)


def write(name, header, rows):
    path = OUT / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    print(f"{path.relative_to(OUT.parent)}: {len(rows)} rows")


def main():
    rng = random.Random(SEED)
    holidays = us_federal_holidays(2025) + us_federal_holidays(2026)
    holiday_days = {d for d, _ in holidays}
    customers = [f"C{n:04d}" for n in rng.sample(range(1, 10000), 180)]
    names = [p[0] for p in PRODUCTS]
    weights = [p[2] for p in PRODUCTS]
    price = {p[0]: p[1] for p in PRODUCTS}
    most = {p[0]: p[3] for p in PRODUCTS}

    # Orders: about 1.1 a day, three times as many on public holidays (the shop runs holiday sales),
    # half again as many in November and December.
    orders = []
    for day in daterange(FIRST_DAY, LAST_DAY):
        mean = 1.1 * (3 if day in holiday_days else 1) * (1.5 if day.month in (11, 12) else 1)
        for _ in range(poisson(rng, mean)):
            product = rng.choices(names, weights)[0]
            orders.append([day, rng.choice(customers), product, rng.randint(1, most[product])])
    # An office restocking on Thanksgiving 2026: a big day for the beans.
    orders.append([dt.date(2026, 11, 26), "C0042", "Espresso Beans 1kg", 12])
    orders.sort(key=lambda o: o[0])
    order_rows = [
        [100001 + i, d.isoformat(), c, p, q, f"{price[p]:.2f}"] for i, (d, c, p, q) in enumerate(orders)
    ]

    # Shipments: one per order. Shipped 0-1 days after the order; promised by the carrier's days; most
    # arrive on the promised day, some early, some late, a few are lost; a delivery after the
    # extraction day is not known yet (empty).
    ship_rows = []
    delivered_on = {}
    for order_id, (day, _, _, _) in zip((r[0] for r in order_rows), orders):
        carrier, days = rng.choice(CARRIERS)
        shipped = min(day + dt.timedelta(days=rng.randint(0, 1)), LAST_DAY)
        promised = day + dt.timedelta(days=days)
        r = rng.random()
        if r < 0.03:
            delivered = None  # lost
        elif r < 0.18:
            delivered = promised + dt.timedelta(days=rng.randint(1, 6))
        elif r < 0.43:
            delivered = promised - dt.timedelta(days=rng.randint(1, 2))
        else:
            delivered = promised
        if delivered is not None and delivered < shipped:
            delivered = shipped
        if delivered is not None and delivered > LAST_DAY:
            delivered = None  # in transit
        delivered_on[order_id] = (promised, delivered)
        ship_rows.append(
            [order_id, carrier, shipped.isoformat(), promised.isoformat(), delivered.isoformat() if delivered else ""]
        )

    # Reviews: about a third of the delivered orders, 1-14 days after the delivery; late ones score lower.
    review_rows = []
    for order_id, (promised, delivered) in delivered_on.items():
        if delivered is None or rng.random() >= 0.35:
            continue
        written = delivered + dt.timedelta(days=rng.randint(1, 14))
        if written > LAST_DAY:
            continue
        late = delivered > promised
        points = rng.choices([1, 2, 3, 4, 5], [4, 3, 3, 2, 1] if late else [1, 1, 2, 5, 6])[0]
        review_rows.append([len(review_rows) + 1, order_id, written.isoformat(), points, rng.choice(COMMENTS[points])])

    holiday_rows = [[d.isoformat(), name] for d, name in holidays]

    # INVALID: the rows the validator rejects, placed among the good ones.
    order_rows.insert(40, [199001, "2026-02-30", "C0815", "Ceramic Mug", 2, "12.00"])  # no such day
    order_rows.insert(120, [199002, "03/14/2026", "C0815", "Tea Sampler", 1, "15.00"])  # not %Y-%m-%d
    order_rows.insert(200, [199003, "2026-04-18", "C1234", "Ceramic Mug", -2, "12.00"])  # quantity below 1
    order_rows.insert(280, [199004, "2026-06-02", "C1234", "Espresso Beans 250g", 1, "8.00"])  # not a product
    dup = list(order_rows[300])
    dup[4] = dup[4] + 5
    order_rows.insert(305, dup)  # the same order_id again: the first row is kept
    review_rows[10][3] = 6  # points above 5
    review_rows[50][3] = "four"  # not an integer
    review_rows[90][2] = ""  # review_date is required
    ship_rows[150][4] = "pending"  # not a date (an empty field means not delivered)
    ship_rows[250][3] = "2026-13-02"  # no month 13
    christmas = next(i for i, r in enumerate(holiday_rows) if r[0] == "2025-12-25")
    holiday_rows.insert(christmas + 1, ["2025-12-25", "Christmas"])  # the same date twice

    write("orders/orders.csv", ["order_id", "order_date", "customer", "product", "quantity", "unit_price"], order_rows)
    write("reviews/reviews.csv", ["review_id", "order_id", "review_date", "points", "comment"], review_rows)
    write("shipments/shipments.csv", ["order_id", "carrier", "shipped", "promised", "delivered"], ship_rows)
    write("holidays/holidays.csv", ["date", "name"], holiday_rows)


if __name__ == "__main__":
    main()
