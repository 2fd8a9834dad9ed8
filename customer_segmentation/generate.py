"""Deterministic synthetic invoice lines in the shape of the UCI "Online Retail" data.

Command line (from the project folder)::

    python -m customer_segmentation.generate --rows 60000 --seed 42 \\
        --output data/sample/online_retail_sample.csv \\
        [--format csv|parquet] [--encoding latin-1|utf-8] \\
        [--start 2010-12-01 --end 2011-12-09]

Python::

    from customer_segmentation.generate import generate
    generate(rows=60000, seed=42, output="sample.csv")  # returns 60000, the data rows written

The CSV is laid out like the common Kaggle copy: header
``InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country``, dates
like ``12/1/2010 8:26``, customer ids like ``17850.0`` (empty for guests), ISO-8859-1 unless
``utf-8`` is asked for; ``.csv.gz`` is gzipped. Parquet has the same columns, typed.
The format is inferred from the suffix (``.csv``, ``.csv.gz``, ``.parquet``, else csv).

The data carries the quirks of the real export at about its rates (per 541,909 lines):
guest lines, ``C`` cancellations of earlier sales, ``A`` bad-debt adjustments, stock
write-offs, price-0 lines, missing descriptions, non-product stock codes, two huge orders
cancelled right after, exact duplicate lines, ``Unspecified`` and ``European Community``
countries, a pound sign and accented letters. Files of at least ``GUARANTEE_MIN_ROWS`` rows
always hold every quirk at least once.

Why SQL: every line is computed by DuckDB and streamed to disk with ``COPY``, so 10M lines
take seconds and memory stays flat. Why ``hash`` and not ``random()``: each random choice is
a hash of (seed, entity key, tag), so nothing depends on thread scheduling, and the same
(rows, seed, start, end) always gives a byte-identical file.
"""

from __future__ import annotations

import argparse
import codecs
import datetime as dt
import gzip
import hashlib
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

HEADER = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
]
REAL_LINES = 541_909  # lines in the UCI file: the unit of every rate below
GUARANTEE_MIN_ROWS = 10_000  # from here on every quirk appears at least once
FIRST_INVOICE = 536365
FIRST_CUSTOMER = 12346
N_PRODUCTS = 3_900
POPULARITY_SKEW = 1.55  # product rank = N * u**skew: top product ~0.5% of lines, as in the data
DUP_RATE = 0.0104  # raw rate; consecutive duplicates are suppressed, leaving ~1% of lines
GUEST_SHARE = 0.245  # of planned lines; guest one-line specials bring it to ~25%
LINES_PER_CUSTOMER = 96.0  # customers planned = customer lines / this: ~1 per ~125 lines
WRITEOFF_RATE = 0.0025
ZERO_PRICE_RATE = 0.0022  # standalone price-0 lines; with write-offs ~0.47% of lines cost 0
UK = "United Kingdom"
FORMATS = ("csv", "parquet")
HEADER_ROW_GROUP = 8192  # invoices per unit of parallel work in the final COPY
MEMORY_LIMIT = os.environ.get("GEN_MEM", "2GB")

# Key spaces keep every planned invoice's key unique without a global counter.
_GUEST_KEY = 1 << 40
_CANCEL_KEY = 1 << 41
_SOLO_KEY = 1 << 42

# Lines per trading day by month of year, after the real data: growth, a November peak.
_MONTH_WEIGHT = [95, 80, 95, 85, 100, 100, 105, 95, 135, 160, 235, 180]
# ISO weekday Monday..Sunday; the shop never trades on Saturday.
_DOW_WEIGHT = [100, 105, 100, 115, 85, 0, 75]
_HOUR_CDF = [
    (7, 0.005), (8, 0.035), (9, 0.10), (10, 0.21), (11, 0.325), (12, 0.47), (13, 0.60),
    (14, 0.72), (15, 0.835), (16, 0.92), (17, 0.965), (18, 0.982), (19, 0.994), (20, 1.0),
]  # fmt: skip
# Quantities: mostly 1-24 with packs of 6/12/24 common, a thin tail of bulk orders.
_QTY_CDF = [
    (1, 0.30), (2, 0.44), (3, 0.51), (4, 0.58), (5, 0.61), (6, 0.69), (8, 0.71), (10, 0.75),
    (12, 0.85), (16, 0.87), (20, 0.89), (24, 0.93), (25, 0.94), (36, 0.95), (48, 0.965),
    (72, 0.975), (96, 0.985), (100, 0.99), (144, 0.995), (288, 0.998), (480, 1.0),
]  # fmt: skip
_POST_PRICE_CDF = [(18.0, 0.5), (28.0, 0.7), (40.0, 0.85), (15.0, 0.95), (35.0, 1.0)]

# Customer countries (share of customers). ``European Community`` and ``Unspecified`` also
# get one forced customer each in guaranteed files.
_CUSTOMER_COUNTRIES = [
    (UK, 0.893), ("Germany", 0.022), ("France", 0.020), ("EIRE", 0.004), ("Spain", 0.007),
    ("Netherlands", 0.003), ("Belgium", 0.0057), ("Switzerland", 0.0048),
    ("Portugal", 0.0043), ("Australia", 0.0021), ("Norway", 0.0023), ("Italy", 0.0034),
    ("Channel Islands", 0.0021), ("Finland", 0.0027), ("Cyprus", 0.0018), ("Sweden", 0.0018),
    ("Austria", 0.0025), ("Denmark", 0.0021), ("Japan", 0.0018), ("Poland", 0.0014),
    ("USA", 0.0009), ("Israel", 0.0009), ("Unspecified", 0.0008), ("Canada", 0.0009),
    ("Greece", 0.0009), ("Malta", 0.0005), ("United Arab Emirates", 0.0005),
    ("Bahrain", 0.0005), ("Lithuania", 0.0003), ("Czech Republic", 0.0003),
    ("Lebanon", 0.0003), ("RSA", 0.0003), ("Saudi Arabia", 0.0003), ("Singapore", 0.0003),
    ("Iceland", 0.0003), ("Brazil", 0.0003), ("European Community", 0.0002),
]  # fmt: skip
# Guest checkouts are nearly all from the UK; Hong Kong only ever appears as a guest.
_GUEST_COUNTRIES = [
    (UK, 0.977), ("EIRE", 0.006), ("Hong Kong", 0.004), ("Unspecified", 0.002),
    ("Switzerland", 0.003), ("France", 0.003), ("Israel", 0.002), ("Portugal", 0.002),
    ("Bahrain", 0.001),
]  # fmt: skip
_WRITEOFF_TEXT = [
    ("damaged", 0.12), ("check", 0.10), ("?", 0.05), ("wet damaged", 0.03), ("lost", 0.03),
    ("Damaged", 0.04), ("sold as set on dotcom", 0.08), (None, 0.55),
]  # fmt: skip


@dataclass(frozen=True)
class Special:
    """A non-product stock code placed ``real_count`` times per 541,909 lines.

    mode: ``add`` appends a line to a kept sale invoice of class ``host``; ``sale`` makes a
    one-line invoice for the customer (or guest) of such a host; ``cancel`` makes a one-line
    ``C`` invoice for the host's customer, dated after the host. ``qty``/``price`` are SQL
    over ``i`` (item number) and ``x1``..``x4`` (uniforms in [0, 1)).
    """

    code: str
    description: str
    real_count: float
    mode: str
    host: str
    qty: str
    price: str


SPECIALS = [
    Special("M", "Manual", 460, "sale", "any",
            "CASE WHEN x1 < 0.8 THEN 1 ELSE 1 + floor(x2 * 12) END",
            "round(0.2 + pow(x3, 3) * 600, 2)"),
    Special("m", "Manual", 1, "sale", "guest", "1", "2.55"),
    Special("D", "Discount", 77, "cancel", "cust", "-1", "round(5 + pow(x3, 2) * 150, 2)"),
    Special("CRUK", "CRUK Commission", 16, "cancel", "cust", "-1",
            "round(1.6 + pow(x3, 2) * 500, 2)"),
    Special("S", "SAMPLES", 63, "sale", "guest", "1", "round(1 + pow(x3, 2) * 120, 2)"),
    Special("BANK CHARGES", "Bank Charges", 37, "sale", "cust", "1", "15.0"),
    Special("AMAZONFEE", "AMAZON FEE", 34, "sale", "guest", "1",
            "CASE WHEN i = 0 THEN 17836.46 ELSE round(5 + pow(x3, 3) * 6000, 2) END"),
    Special("C2", "CARRIAGE", 144, "add", "foreign", "1", "50.0"),
    Special("PADS", "PADS TO MATCH ALL CUSHIONS", 4, "add", "cust", "1", "0.001"),
    Special("DCGSSBOY", "BOYS PARTY BAG", 11, "add", "guest", "1 + floor(x1 * 3)", "3.29"),
    Special("DCGSSGIRL", "GIRLS PARTY BAG", 13, "add", "guest", "1 + floor(x1 * 3)", "3.29"),
    Special("DCGS0003", "BOXED GLASS ASHTRAY", 4, "add", "guest", "1", "2.46"),
    Special("DCGS0069", "OOH LA LA DOGS COLLAR", 2, "add", "guest", "1", "15.79"),
    Special("DCGS0070", "CAMOUFLAGE DOG COLLAR", 2, "add", "guest", "1", "12.72"),
    Special("DCGS0076", "SUNJAR LED NIGHT NIGHT LIGHT", 2, "add", "guest", "1", "16.13"),
    Special("gift_0001_10", "Dotcomgiftshop Gift Voucher £10.00", 9, "add", "guest", "1", "8.33"),
    Special("gift_0001_20", "Dotcomgiftshop Gift Voucher £20.00", 10, "add", "guest", "1", "16.67"),
    Special("gift_0001_30", "Dotcomgiftshop Gift Voucher £30.00", 8, "add", "guest", "1", "25.0"),
    Special("gift_0001_40", "Dotcomgiftshop Gift Voucher £40.00", 3, "add", "guest", "1", "33.33"),
    Special("gift_0001_50", "Dotcomgiftshop Gift Voucher £50.00", 4, "add", "guest", "1", "41.67"),
]  # fmt: skip
# Rate-driven codes inside ordinary invoices (not in SPECIALS): POST, DOT.
NON_PRODUCT_CODES = sorted({s.code for s in SPECIALS} | {"POST", "DOT", "B"})

# Best sellers of the real shop (popularity rank = position), plus the two products of the
# huge cancelled orders and a few accented names (kept at ranks that show up in small files).
_FIXED_PRODUCTS: list[tuple[int, str, str, float]] = [
    (0, "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 2.55),
    (1, "22423", "REGENCY CAKESTAND 3 TIER", 12.75),
    (2, "85099B", "JUMBO BAG RED RETROSPOT", 1.95),
    (3, "47566", "PARTY BUNTING", 4.95),
    (4, "20725", "LUNCH BAG RED RETROSPOT", 1.65),
    (5, "84879", "ASSORTED COLOUR BIRD ORNAMENT", 1.69),
    (6, "22720", "SET OF 3 CAKE TINS PANTRY DESIGN ", 4.95),
    (7, "22197", "POPCORN HOLDER", 0.85),
    (8, "21212", "PACK OF 72 RETROSPOT CAKE CASES", 0.55),
    (9, "20727", "LUNCH BAG  BLACK SKULL.", 1.65),
    (10, "22383", "LUNCH BAG SUKI DESIGN ", 1.65),
    (11, "23203", "JUMBO BAG DOILEY PATTERNS", 2.08),
    (12, "22086", "PAPER CHAIN KIT 50'S CHRISTMAS ", 2.95),
    (13, "84991", "60 TEATIME FAIRY CAKE CASES", 0.55),
    (25, "22960", "JAM MAKING SET WITH JARS", 4.25),
    (31, "23166", "MEDIUM CERAMIC TOP STORAGE JAR", 1.25),
    (40, "22839", "SET OF 3 CAFÉ MUGS", 4.95),
    (90, "21069", "CRÈME BRÛLÉE DISH", 1.25),
    (170, "21172", "PARTY METAL SIGN, FRENCH CAFÉ", 1.45),
    (400, "22912", "PÂTISSERIE CAKE TIN", 3.75),
    (700, "84558A", "3D DOG PICTURE PLAYING CARDS", 2.95),
]
_HUGE_ORDERS = [  # (stock code, description, quantity, unit price), as in the real data
    ("23843", "PAPER CRAFT , LITTLE BIRDIE", 80995, 2.08),
    ("23166", "MEDIUM CERAMIC TOP STORAGE JAR", 74215, 1.04),
]

_COLOURS = [
    "RED", "PINK", "BLUE", "WHITE", "IVORY", "GREEN", "BLACK", "CREAM", "SILVER", "GOLD",
    "PURPLE", "ORANGE", "YELLOW", "LIGHT PINK", "SKY BLUE", "ANTIQUE SILVER", "PASTEL",
    "CHOCOLATE", "TURQUOISE", "LILAC", "GREY", "NATURAL", "BLUE/WHITE", "RED/WHITE",
]  # fmt: skip
_MOTIFS = [
    "RETROSPOT", "VINTAGE", "SPOTTY", "HEART", "POLKADOT", "PAISLEY", "REGENCY", "SKULL",
    "BIRD", "STRAWBERRY", "DOLLY GIRL", "SPACEBOY", "WOODLAND", "BAROQUE", "FLORAL",
    "CHRISTMAS", "SCANDINAVIAN", "ENGLISH ROSE", "SWALLOW", "LOVE", "PANTRY", "FAIRY CAKE",
    "CIRCUS PARADE", "DOILEY", "TOADSTOOL", "OWL", "UNION JACK", "GINGHAM", "BUTTERFLY",
    "CHERRY BLOSSOM", "LEAF", "DAISY", "HEN HOUSE", "SUKI", "ALPHABET", "LONDON", "PARIS",
    "VICTORIAN", "EDWARDIAN", "JUNGLE", "PIRATE", "BALLERINA", "TEA PARTY", "GARDEN",
    "ROSES", "ZINC HEART", "SWEETHEART", "PEACE", "HOME SWEET HOME", "KEEP CALM",
]  # fmt: skip
_ITEMS = [
    "T-LIGHT HOLDER", "LUNCH BAG", "CAKE CASES", "MUG", "TEA TOWEL", "CUSHION COVER",
    "DOORMAT", "CANDLE", "BUNTING", "NAPKINS", "WATER BOTTLE", "LANTERN", "PHOTO FRAME",
    "JAM JAR", "GIFT WRAP", "CHALKBOARD", "PURSE", "HANDBAG", "PENCILS", "NOTEBOOK",
    "CAKE STAND", "TRINKET BOX", "HOT WATER BOTTLE", "WALL CLOCK", "MIRROR", "STORAGE JAR",
    "TIN", "BOWL", "PLATE", "BEAKER", "APRON", "OVEN GLOVE", "SHOPPING BAG", "PARASOL",
    "WASHBAG", "PAPER CUPS", "PAPER PLATES", "PLACEMATS", "COASTERS", "HANGING DECORATION",
    "GARLAND", "WALL ART", "METAL SIGN", "DRAWER KNOB", "COAT HOOK", "CHARM", "BRACELET",
    "NECKLACE", "HAIR CLIP", "EGG CUP", "TEAPOT", "SPOON SET", "WREATH", "STAR", "BELL",
    "BAUBLE", "FRIDGE MAGNET", "KEY RING", "STICKER SHEET", "RIBBONS", "GIFT BAG",
    "GIFT BOX", "BOTTLE OPENER", "DOOR STOP", "BIRD FEEDER", "PLANTER", "WATERING CAN",
    "PICNIC BASKET", "JIGSAW", "SKIPPING ROPE", "SPINNING TOP", "MONEY BOX", "NIGHT LIGHT",
    "LAMP", "FAIRY LIGHTS", "CANDLE POT", "SOAP DISH", "TISSUES", "WRAPPING PAPER",
    "GREETING CARD", "PEG BAG", "SHOE SHINE BOX", "RECIPE BOX", "SNACK BOX",
]  # fmt: skip
_SIZES = ["SMALL", "LARGE", "MEDIUM", "MINI", "JUMBO"]
_MATERIALS = [
    "CERAMIC", "GLASS", "ENAMEL", "WOODEN", "METAL", "ZINC", "WICKER", "FELT", "PAPER",
    "TIN", "ACRYLIC", "CRYSTAL", "PORCELAIN", "RUSTIC", "FRENCH", "HANGING",
]  # fmt: skip
_PRICE_POINTS = [
    (0.29, 2), (0.39, 3), (0.42, 6), (0.55, 5), (0.65, 6), (0.72, 4), (0.79, 5), (0.83, 4),
    (0.85, 8), (1.25, 12), (1.45, 6), (1.65, 10), (1.69, 5), (1.95, 9), (2.08, 6), (2.1, 7),
    (2.46, 4), (2.55, 8), (2.95, 10), (3.25, 5), (3.39, 3), (3.75, 7), (4.15, 3), (4.25, 6),
    (4.95, 7), (5.95, 4), (6.35, 2), (6.75, 3), (7.95, 3), (8.5, 2), (9.95, 2), (10.95, 1),
    (12.75, 2), (14.95, 1),
]  # fmt: skip


# --------------------------------------------------------------------------- helpers


def _unit(seed: int, *parts: object) -> float:
    """A uniform in [0, 1) from the seed and labels; stable across Python versions."""
    digest = hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _pick(u: float, weighted: Sequence[tuple[object, float]]) -> object:
    total = sum(w for _, w in weighted)
    acc = 0.0
    for value, weight in weighted:
        acc += weight / total
        if u < acc:
            return value
    return weighted[-1][0]


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    """The single value of a query (fetchall: DuckDB 2 keeps a half-read result open)."""
    return con.execute(sql).fetchall()[0][0]


def _sql_str(value: str | None) -> str:
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def _cdf_case(expr: str, cdf: Sequence[tuple[object, float]], literal=repr) -> str:
    """A CASE mapping a uniform ``expr`` to values by cumulative thresholds."""
    whens = " ".join(f"WHEN {expr} < {p!r} THEN {literal(v)}" for v, p in cdf[:-1])
    return f"(CASE {whens} ELSE {literal(cdf[-1][0])} END)"


def _weights_case(expr: str, weighted: Sequence[tuple[str | None, float]]) -> str:
    total = sum(w for _, w in weighted)
    cdf, acc = [], 0.0
    for value, weight in weighted:
        acc += weight / total
        cdf.append((value, round(acc, 9)))
    return _cdf_case(expr, cdf, literal=_sql_str)


def infer_format(output: str | Path) -> str:
    """``parquet`` for a ``.parquet`` file, ``csv`` otherwise (also ``.csv.gz``)."""
    return "parquet" if str(output).lower().endswith(".parquet") else "csv"


# --------------------------------------------------------------------------- catalogue


def build_catalogue(seed: int) -> pa.Table:
    """~3,900 products in popularity order: code, description, and three price tiers.

    Customers pay ``price`` (``bulk_price`` from 48 units), guests (the dotcom shop) pay
    ``guest_price``, about twice as much, as in the real data.
    """
    reserved = {code for _, code, _, _ in _FIXED_PRODUCTS} | {c for c, *_ in _HUGE_ORDERS}
    fixed = {rank: (code, desc, price) for rank, code, desc, price in _FIXED_PRODUCTS}
    used_desc = {desc for _, desc, _ in fixed.values()} | {d for _, d, *_ in _HUGE_ORDERS}
    codes: list[str] = []
    n = 0
    while len(codes) < N_PRODUCTS - len(fixed):
        n += 1
        u = _unit(seed, "code", n)
        v = _unit(seed, "code-num", n)
        if u < 0.62:  # most real codes are 20000-23999
            number = 20000 + int(v * 4000)
        elif u < 0.77:
            number = 84000 + int(v * 2000)
        elif u < 0.85:
            number = 47000 + int(v * 2000)
        elif u < 0.92:
            number = 70000 + int(v * 10000)
        else:
            number = 10000 + int(v * 80000)
        code = str(number)
        w = _unit(seed, "code-suffix", n)
        if w < 0.12:
            code += "ABCDEFGHJKLMNPSW"[int(w / 0.12 * 16)]
        elif w < 0.135:
            code += ["BL", "PK", "GR", "WH", "RD", "BK"][int((w - 0.12) / 0.015 * 6)]
        if code not in reserved:
            reserved.add(code)
            codes.append(code)

    descriptions: list[str] = []
    n = 0
    while len(descriptions) < N_PRODUCTS - len(fixed):
        n += 1
        descriptions_u = [_unit(seed, "desc", n, k) for k in range(6)]
        desc = _description(descriptions_u)
        if desc not in used_desc:
            used_desc.add(desc)
            descriptions.append(desc)

    rows: list[tuple[str, str, float]] = []
    generated = iter(zip(codes, descriptions, strict=True))
    for rank in range(N_PRODUCTS):
        if rank in fixed:
            rows.append(fixed[rank])
        else:
            code, desc = next(generated)
            rows.append((code, desc, float(_pick(_unit(seed, "price", rank), _PRICE_POINTS))))
    prices = [p for _, _, p in rows]
    return pa.table(
        {
            "idx": list(range(1, N_PRODUCTS + 1)),
            "code": [c for c, _, _ in rows],
            "description": [d for _, d, _ in rows],
            "price": prices,
            "bulk_price": [round(p * 0.85, 2) for p in prices],
            "guest_price": [round(p * 2.27, 2) for p in prices],
        }
    )


def _description(u: list[float]) -> str:
    """An upper-case product name from the word lists, in the styles of the real names."""

    def pick(words: list[str], x: float) -> str:
        return words[int(x * len(words))]

    colour, motif, item = pick(_COLOURS, u[1]), pick(_MOTIFS, u[2]), pick(_ITEMS, u[3])
    size, material = pick(_SIZES, u[4]), pick(_MATERIALS, u[5])
    style = u[0]
    if style < 0.22:
        return f"{colour} {motif} {item}"
    if style < 0.40:
        return f"{motif} {item}"
    if style < 0.55:
        return f"{size} {material} {item}"
    if style < 0.65:
        return f"SET OF {[2, 3, 4, 6, 12][int(u[4] * 5)]} {motif} {_plural(item)}"
    if style < 0.72:
        return f"PACK OF {[6, 12, 20, 60, 72][int(u[4] * 5)]} {motif} {_plural(item)}"
    if style < 0.84:
        return f"{size} {colour} {motif} {item}"
    if style < 0.99:
        return f"{material} {colour} {item}"
    if style < 0.995:
        return f"{motif} {item} , {colour}"  # the real names have stray commas
    return f"{item}, {motif} DESIGN"


def _plural(item: str) -> str:
    if item.endswith(("S", "LIGHTS")):
        return item
    if item.endswith(("X", "SH", "CH")):
        return item + "ES"
    return item + "S"


# --------------------------------------------------------------------------- SQL pieces


def _setup_sql(seed: int, start: dt.date, end: dt.date) -> str:
    """Macros (hash uniforms, time of day) and the trading-day distribution ``days``."""
    hour = _cdf_case("a", _HOUR_CDF)
    month_w = "[" + ", ".join(map(str, _MONTH_WEIGHT)) + "]"
    dow_w = "[" + ", ".join(map(str, _DOW_WEIGHT)) + "]"
    return f"""
CREATE OR REPLACE MACRO u1(a, tag) AS
    (hash({seed}::BIGINT, a::BIGINT, tag) % 1000000007) / 1000000007.0;
CREATE OR REPLACE MACRO u2(a, b, tag) AS
    (hash({seed}::BIGINT, a::BIGINT, b::BIGINT, tag) % 1000000007) / 1000000007.0;
CREATE OR REPLACE MACRO tod(a, b) AS to_minutes(({hour} * 60 + floor(b * 60))::BIGINT);
-- Integer weights keep the cumulative sums exact, hence independent of summation order.
CREATE OR REPLACE TABLE days AS
WITH d AS (
    SELECT CAST(g AS DATE) AS dday
    FROM generate_series(TIMESTAMP '{start}', TIMESTAMP '{end}', INTERVAL 1 DAY) t(g)
), w AS (
    SELECT dday, ({month_w}[month(dday)] * {dow_w}[isodow(dday)]
        -- closed over Christmas, as the real shop was
        * CASE WHEN (month(dday) = 12 AND day(dday) >= 24) OR (month(dday) = 1 AND day(dday) <= 3)
               THEN 0 ELSE 1 END)::BIGINT AS w
    FROM d
)
SELECT dday, (sum(w) OVER (ORDER BY dday ROWS UNBOUNDED PRECEDING) - w)::DOUBLE
             / (sum(w) OVER ())::DOUBLE AS lo
FROM w WHERE w > 0;
"""


# A later timestamp for a row of ``src`` with bts (base ts), bday, dd (days later, 0 = same
# day), mm (minutes later on the same day), uh/um (time of day on a later day). Later days
# roll forward to the next trading day; past the end date it stays on the same day.
_AFTER_SQL = """
SELECT s.*, CASE WHEN s.dd = 0 OR d.dday IS NULL
        THEN least(s.bts + to_minutes(s.mm::BIGINT), s.bday + INTERVAL '20 hours 59 minutes')
        ELSE d.dday + tod(s.uh, s.um) END AS ts
FROM (SELECT *, s0.bday + s0.dd::INTEGER AS tday FROM ({src}) s0) s
ASOF LEFT JOIN days d ON s.tday <= d.dday
"""


@dataclass(frozen=True)
class _Plan:
    rows: int
    seed: int
    guaranteed: bool
    budget: int  # lines left for ordinary customer and guest invoices
    items_sql: str  # one row per special / fixed line
    huge_ci: int
    forced: dict[int, str]  # customer index -> forced country


def _count(rows: int, real_count: float, guaranteed: bool) -> int:
    n = round(rows * real_count / REAL_LINES)
    return max(n, 1) if guaranteed else n


def _item_select(
    sid: int,
    n: int,
    code: str,
    descr: str,
    qty: str,
    price: str,
    mode: str,
    host: str | None,
    fixed_ci: str = "NULL",
    group: str = "i",
    add_min: str = "0",
    pos: str | None = None,
) -> str:
    """SQL for ``n`` items of one kind; ``group`` shares dates between items (A lines)."""
    return f"""
SELECT {sid} AS sid, i, {code}::VARCHAR AS code, {descr}::VARCHAR AS descr,
       ({qty})::BIGINT AS qty, ({price})::DOUBLE AS price, '{mode}' AS mode,
       {_sql_str(host)} AS host, ({fixed_ci})::BIGINT AS fixed_ci,
       {pos or f"u2({sid}, {group}, 'pos')"} AS pos, u2({sid}, {group}, 'h') AS uh,
       u2({sid}, {group}, 'm') AS um, ({add_min})::INTEGER AS add_min,
       u2({sid}, i, 'host') AS uhost
FROM (SELECT i::BIGINT AS i, u2({sid}, i, 'x1') AS x1, u2({sid}, i, 'x2') AS x2,
             u2({sid}, i, 'x3') AS x3, u2({sid}, i, 'x4') AS x4
      FROM range({n}) t(i))"""


def _make_plan(rows: int, seed: int) -> _Plan:
    guaranteed = rows >= GUARANTEE_MIN_ROWS
    product = f"1 + floor({N_PRODUCTS} * pow(x1, {POPULARITY_SKEW}))::INTEGER"
    pieces: list[tuple[int, str]] = []  # (lines, sql)
    sid = 0

    def add(n: int, lines_per_item: int, **kw: str | None) -> None:
        nonlocal sid
        sid += 1
        if n > 0:
            pieces.append((n * lines_per_item, _item_select(sid, n, **kw)))  # type: ignore[arg-type]

    add(
        round(rows * WRITEOFF_RATE),
        1,
        code=f"getvariable('pcode')[{product}]",
        descr=_weights_case("x2", _WRITEOFF_TEXT),
        qty="-(CASE WHEN x3 < 0.6 THEN 1 + floor(x4 * 10) WHEN x3 < 0.9 THEN 10 + floor(x4 * 90)"
        " ELSE 100 + floor(pow(x4, 2) * 3000) END)",
        price="0.0",
        mode="sale",
        host=None,
    )
    add(
        round(rows * ZERO_PRICE_RATE),
        1,
        code=f"getvariable('pcode')[{product}]",
        descr=f"CASE WHEN x2 < 0.6 THEN NULL ELSE getvariable('pdesc')[{product}] END",
        qty="1 + floor(pow(x3, 2) * 100)",
        price="0.0",
        mode="sale",
        host=None,
    )
    for spec in SPECIALS:
        add(
            _count(rows, spec.real_count, guaranteed),
            1,
            code=_sql_str(spec.code),
            descr=_sql_str(spec.description),
            qty=spec.qty,
            price=spec.price,
            mode=spec.mode,
            host=spec.host,
        )
    n_customers_hint = max(3, round(rows / 124))
    huge_ci = 0 if guaranteed else -1
    forced: dict[int, str] = {}
    if guaranteed:
        groups = max(1, round(rows / REAL_LINES))
        # Bad-debt adjustments: one positive and two negative prices per group, as in the data.
        add(
            3 * groups,
            1,
            code="'B'",
            descr="'Adjust bad debt'",
            qty="1",
            price="CASE WHEN i % 3 = 0 THEN 1 ELSE -1 END * CASE WHEN i // 3 = 0 THEN 11062.06"
            " ELSE round(1000 + u2(0, i // 3, 'amount') * 14000, 2) END",
            mode="adjust",
            host=None,
            group="i // 3",
            add_min="CASE WHEN i % 3 = 0 THEN 0 ELSE 1 END",
            # mid-year, like the real ones (August), away from the November peak
            pos="0.3 + 0.4 * u2(0, i // 3, 'apos')",
        )
        pairs = max(1, round(rows / 500_000))
        for k, (code, desc, qty, price) in enumerate(_HUGE_ORDERS):
            add(
                pairs,
                2,
                code=_sql_str(code),
                descr=_sql_str(desc),
                qty=str(qty),
                price=repr(price),
                mode="pair",
                host="cust",
                # the first 74,215 pair belongs to customer 12346, who buys nothing else
                fixed_ci=f"CASE WHEN i = 0 THEN {huge_ci} END" if k == 1 else "NULL",
            )
        add(groups, 2, code="'M'", descr="'Manual'", qty="1", price="38970.0", mode="pair",
            host="cust")  # fmt: skip
        spots = [1 + int(_unit(seed, "forced", k) * (n_customers_hint - 1)) for k in range(2)]
        if spots[1] == spots[0]:
            spots[1] = 1 + spots[0] % (n_customers_hint - 1)
        forced = {spots[0]: "European Community", spots[1]: "Unspecified"}
    fixed_lines = sum(lines for lines, _ in pieces)
    items_sql = "\nUNION ALL\n".join(sql for _, sql in pieces) or (
        _item_select(0, 0, "''", "''", "0", "0", "sale", None)
    )
    return _Plan(rows, seed, guaranteed, rows - fixed_lines, items_sql, huge_ci, forced)


def _plan_pool(con: duckdb.DuckDBPyConnection, plan: _Plan, scale: float) -> int | None:
    """Plan customers, their invoices and guest invoices, then trim to ``plan.budget`` lines.

    Trimming drops whole invoice groups (a sale with its cancellation) in hash order, so the
    period still runs to the end date, then fills the remainder with whole or one partial
    cancellation-free invoice. Returns None when done, else the planned lines (too few).
    """
    seed, budget = plan.seed, plan.budget
    target_customer_lines = budget * scale * (1 - GUEST_SHARE)
    n_cust = max(3, math.ceil(target_customer_lines / LINES_PER_CUSTOMER),
                 *(ci + 1 for ci in plan.forced))  # fmt: skip
    n_wholesale, n_regular = round(n_cust * 0.023), round(n_cust * 0.25)
    forced_ci = list(plan.forced) or [-1]
    forced_whens = " ".join(f"WHEN ci = {ci} THEN {_sql_str(c)}" for ci, c in plan.forced.items())
    country = _weights_case("u1(ci, 'country')", _CUSTOMER_COUNTRIES)
    con.execute(f"""
CREATE OR REPLACE TABLE cust AS
WITH r AS (
    SELECT i::BIGINT AS ci,
           row_number() OVER (ORDER BY hash({seed}::BIGINT, i::BIGINT, 'rank'), i) - 1 AS rk
    FROM range({n_cust}) t(i)
)
SELECT ci, ({FIRST_CUSTOMER} + ci)::DOUBLE AS cid,
    -- exact type counts (by hash rank) keep small files close to the target mix
    CASE WHEN ci IN ({", ".join(map(str, forced_ci))}) THEN 1
         WHEN rk < {n_wholesale} THEN 3 WHEN rk < {n_wholesale + n_regular} THEN 2
         ELSE 1 END AS ctype,
    CASE {forced_whens} WHEN FALSE THEN NULL ELSE {country} END AS country
FROM r;

CREATE OR REPLACE TABLE cinv AS
WITH c AS (
    SELECT *,
        CASE WHEN ci = {plan.huge_ci} THEN 0
             WHEN ctype = 3 THEN 24 + floor(u1(ci, 'ninv') * 29)::INTEGER
             WHEN ctype = 2 THEN least(20, 3 + floor(-ln(1 - u1(ci, 'ninv')) * 3.5)::INTEGER)
             WHEN u1(ci, 'ninv') < 0.58 THEN 1 ELSE 2 END AS n_inv,
        -- position of the first purchase on the trading-day distribution
        -- most repeat buyers were already customers when the period starts
        CASE WHEN ctype = 3 THEN u1(ci, 'first') * 0.05
             WHEN ctype = 2 AND u1(ci, 'early') < 0.6 THEN 0.0
             WHEN ctype = 2 THEN u1(ci, 'first') * 0.7
             ELSE u1(ci, 'first') END AS f
    FROM cust
), i AS (
    SELECT c.*, unnest(generate_series(0, n_inv - 1)) AS k FROM c WHERE n_inv > 0
), p AS (
    SELECT ci * 1024 + k AS key, ci, cid, ctype, country, k,
        CASE WHEN ctype = 1 AND k = 0 THEN f
             WHEN ctype = 1 THEN f + (1 - f) * u2(ci, k, 'pos')
             -- regular and wholesale buyers spread their orders evenly: nearly weekly
             ELSE f + (1 - f) * (k + u2(ci, k, 'pos')) / n_inv END AS pos,
        (CASE WHEN ctype = 3 THEN 30 + floor(u2(ci, k, 'nl') * 51)
              ELSE least(400, 1 + floor(-ln(1 - u2(ci, k, 'nl'))
                                       * CASE ctype WHEN 2 THEN 21 ELSE 17 END)) END)::INTEGER AS n,
        u2(ci, k, 'post') < CASE WHEN country = '{UK}' THEN 0.003 ELSE 0.6 END AS pf,
        u2(ci, k, 'canc') < CASE ctype WHEN 3 THEN 0.36 WHEN 2 THEN 0.26 ELSE 0.16 END AS has_c,
        CASE WHEN ci IN ({", ".join(map(str, forced_ci))}) AND k = 0 THEN 1 ELSE 0 END AS prio
    FROM i
)
SELECT p.*, d.dday, d.dday + tod(u1(key, 'h'), u1(key, 'm')) AS ts,
    CASE WHEN has_c THEN least(n, 1 + floor(-ln(1 - u1(key, 'cn')) * 2.2)::INTEGER)
         ELSE 0 END AS cn,
    floor(u1(key, 'coff') * n)::INTEGER AS coff
FROM p ASOF JOIN days d ON p.pos >= d.lo;
""")
    customer_lines = _scalar(con, "SELECT coalesce(sum(n + cn), 0) FROM cinv")
    mean_guest_lines = 35.5
    n_guest = round(customer_lines * GUEST_SHARE / (1 - GUEST_SHARE) / mean_guest_lines)
    guest_country = _weights_case("u1(g.key, 'gc')", _GUEST_COUNTRIES)
    con.execute(f"""
CREATE OR REPLACE TABLE ginv AS
WITH g AS (SELECT {_GUEST_KEY} + i AS key, u1(i, 'gpos') AS pos FROM range({n_guest}) t(i))
SELECT g.key, least(1000, 1 + floor(-ln(1 - u1(g.key, 'gnl')) * 35))::INTEGER AS n,
    u1(g.key, 'dot') < 0.19 AS df, {guest_country} AS country,
    d.dday + tod(u1(g.key, 'h'), u1(g.key, 'm')) AS ts
FROM g ASOF JOIN days d ON g.pos >= d.lo;

CREATE OR REPLACE TABLE kept AS
WITH units AS (
    SELECT key, n + cn AS lines, cn = 0 AS can_partial, prio FROM cinv
    UNION ALL SELECT key, n, TRUE, 0 FROM ginv
), f AS (
    SELECT *, sum(lines) OVER (ORDER BY prio DESC, hash({seed}::BIGINT, key, 'trim'), key
                               ROWS UNBOUNDED PRECEDING) <= {budget} AS full1
    FROM units
), d AS (
    SELECT {budget} - coalesce(sum(lines) FILTER (WHERE full1), 0) AS deficit FROM f
), p AS (
    SELECT *, sum(lines) OVER (ORDER BY hash({seed}::BIGINT, key, 'fill'), key
                               ROWS UNBOUNDED PRECEDING) AS cum2
    FROM f WHERE NOT full1 AND can_partial
)
SELECT key, lines AS kept FROM f WHERE full1
UNION ALL
SELECT key, least(lines, deficit - (cum2 - lines))::INTEGER FROM p, d WHERE cum2 - lines < deficit;
""")
    total = _scalar(con, "SELECT coalesce(sum(kept), 0) FROM kept")
    if total == budget:
        return None
    return customer_lines + _scalar(con, "SELECT coalesce(sum(n), 0) FROM ginv")


def _build_headers(con: duckdb.DuckDBPyConnection, plan: _Plan) -> None:
    """All kept invoices with what their lines need, numbered in time order, in ``hdr``."""
    seed = plan.seed
    con.execute(f"""
CREATE OR REPLACE TABLE sales AS
SELECT c.key, 'cust' AS src, c.cid, c.ctype AS ct, c.country, c.ts, c.dday, c.pf,
       FALSE AS df, least(c.n, k.kept)::INTEGER AS nb
FROM cinv c JOIN kept k USING (key)
UNION ALL
SELECT g.key, 'guest', NULL, 0, g.country, g.ts, CAST(g.ts AS DATE), FALSE, g.df, k.kept
FROM ginv g JOIN kept k USING (key);

CREATE OR REPLACE TABLE hostc AS
WITH x AS (
    SELECT key, 'any' AS class FROM sales
    UNION ALL SELECT key, 'cust' FROM sales WHERE src = 'cust'
    UNION ALL SELECT key, 'foreign' FROM sales WHERE src = 'cust' AND country <> '{UK}'
    UNION ALL SELECT key, 'guest' FROM sales WHERE src = 'guest'
)
SELECT class, key,
    row_number() OVER (PARTITION BY class ORDER BY hash({seed}::BIGINT, key, 'host'), key) - 1
        AS rk
FROM x;
CREATE OR REPLACE TABLE items AS {plan.items_sql};
""")
    counts = dict(con.execute("SELECT class, count(*) FROM hostc GROUP BY class").fetchall())
    # Small files may lack a host class: fall back to a wider one.
    fallback = {"foreign": ["foreign", "cust", "any"], "cust": ["cust", "any"],
                "guest": ["guest", "any"], "any": ["any"]}  # fmt: skip
    effective = {c: next((f for f in ch if counts.get(f)), None) for c, ch in fallback.items()}
    needed = _scalar(con, "SELECT count(*) FROM items WHERE host IS NOT NULL")
    if needed and not counts.get("any"):
        raise RuntimeError("no invoice to attach special lines to; ask for more rows")
    eclass = (
        "CASE it.host "
        + " ".join(f"WHEN '{c}' THEN {_sql_str(e)}" for c, e in effective.items())
        + " END"
    )
    ncase = "CASE it.eclass " + " ".join(f"WHEN '{c}' THEN {n}" for c, n in counts.items()) + " END"
    solo_key = f"{_SOLO_KEY} + it.sid::BIGINT * {1 << 30} + it.i * 2"
    extra_type = "STRUCT(code VARCHAR, descr VARCHAR, qty BIGINT, price DOUBLE)"
    canc_sql = _AFTER_SQL.format(
        src=f"""
    SELECT c.key AS pkey, c.key + {_CANCEL_KEY} AS key, c.cn, c.coff, c.ts AS bts,
        c.dday AS bday,
        CASE WHEN u1(c.key, 'csame') < 0.35 THEN 0
             ELSE 1 + floor(-ln(1 - u1(c.key, 'cdays')) * 6)::INTEGER END AS dd,
        1 + floor(u1(c.key, 'cmin') * 120)::INTEGER AS mm,
        u1(c.key, 'ch') AS uh, u1(c.key, 'cm') AS um
    FROM cinv c JOIN sales s USING (key) WHERE c.cn > 0"""
    )
    solo_cancel_sql = _AFTER_SQL.format(
        src=f"""
    SELECT {solo_key} AS key, it.cid, it.country, it.code, it.descr, it.qty, it.price,
        it.hts AS bts, it.hday AS bday,
        CASE WHEN u2(it.sid, it.i, 'csame') < 0.35 THEN 0
             ELSE 1 + floor(-ln(1 - u2(it.sid, it.i, 'cdays')) * 6)::INTEGER END AS dd,
        1 + floor(u2(it.sid, it.i, 'cmin') * 120)::INTEGER AS mm, it.uh, it.um
    FROM items2 it WHERE mode = 'cancel'"""
    )
    con.execute(f"""
CREATE OR REPLACE TABLE items2 AS
WITH e AS (SELECT it.*, {eclass} AS eclass FROM items it),
h AS (
    SELECT it.*, hc.key AS hkey
    FROM e it LEFT JOIN hostc hc
        ON hc.class = it.eclass AND hc.rk = floor(it.uhost * {ncase if counts else "0"})
)
SELECT h.*, coalesce(fc.cid, hs.cid) AS cid, coalesce(fc.country, hs.country, '{UK}') AS country,
       hs.ts AS hts, hs.dday AS hday, d.dday AS oday,
       least(d.dday + tod(h.uh, h.um) + to_minutes(h.add_min::BIGINT),
             d.dday + INTERVAL '20 hours 59 minutes') AS ots
FROM h LEFT JOIN sales hs ON hs.key = h.hkey
       LEFT JOIN cust fc ON fc.ci = h.fixed_ci
       ASOF JOIN days d ON h.pos >= d.lo;

CREATE OR REPLACE TABLE extras AS
SELECT hkey, list({{'code': code, 'descr': descr, 'qty': qty, 'price': price}}
                  ORDER BY sid, i)::{extra_type}[] AS extra
FROM items2 WHERE mode = 'add' GROUP BY hkey;

CREATE OR REPLACE TABLE canc AS
{canc_sql};

CREATE OR REPLACE TABLE solo AS
SELECT {solo_key} AS key, CASE WHEN mode = 'adjust' THEN 'A' ELSE '' END AS pre, 0 AS ord,
       ots AS ts, CASE WHEN mode = 'adjust' THEN NULL ELSE cid END AS cid, country,
       code, descr, qty, price
FROM items2 it WHERE mode IN ('sale', 'adjust', 'pair')
UNION ALL
-- a mistaken order is cancelled a few minutes later by the same customer
SELECT {solo_key} + 1, 'C', 1,
       least(ots + to_minutes((3 + floor(u2(it.sid, it.i, 'cmin') * 20))::BIGINT),
             oday + INTERVAL '20 hours 59 minutes'),
       cid, country, code, descr, -qty, price
FROM items2 it WHERE mode = 'pair'
UNION ALL
SELECT key, 'C', 1, ts, cid, country, code, descr, qty, price
FROM ({solo_cancel_sql});

CREATE OR REPLACE TABLE w.hdr AS
WITH h AS (
    SELECT s.key, '' AS pre, 0 AS ord, s.ts, s.cid, s.country, s.key AS ck, s.ct, s.pf, s.df,
           s.nb AS pn, 0 AS coff, FALSE AS is_c, s.nb,
           coalesce(e.extra, []::{extra_type}[]) AS extra
    FROM sales s LEFT JOIN extras e ON e.hkey = s.key
    UNION ALL
    SELECT c.key, 'C', 1, c.ts, p.cid, p.country, p.key, p.ct, p.pf, p.df, p.nb, c.coff, TRUE,
           c.cn, []::{extra_type}[]
    FROM canc c JOIN sales p ON p.key = c.pkey
    UNION ALL
    SELECT key, pre, ord, ts, cid, country, key, 1, FALSE, FALSE, 1, 0, FALSE, 0,
           [{{'code': code, 'descr': descr, 'qty': qty, 'price': price}}]::{extra_type}[]
    FROM solo
)
SELECT *, {FIRST_INVOICE} - 1
          + row_number() OVER (ORDER BY ts, ord, hash({seed}::BIGINT, key, 'seq'), key) AS no,
       strftime(ts, '%-m/%-d/%Y %-H:%M') AS ds
FROM h
ORDER BY no;
""")


def _lines_sql(fmt: str) -> str:
    """The invoice lines, one row per line, in invoice order (the order of ``hdr``).

    Ordinary lines are pure functions of (content key, source line): a cancellation line
    recomputes the line of the sale it reverses, and a duplicate line recomputes the line
    before it, so both match exactly without any join.
    """
    qty = {k: _cdf_case(x, _QTY_CDF) for k, x in
           {"w": "(0.5 + 0.5 * uq)", "g": "(0.6 * uq)", "n": "uq"}.items()}  # fmt: skip
    post_price = _cdf_case("u2(ck, sl, 'pp')", _POST_PRICE_CDF)
    date = "ds" if fmt == "csv" else "ts"
    return f"""
SELECT
    pre || no::VARCHAR AS InvoiceNo,
    CASE WHEN NOT base THEN struct_extract(x, 'code') WHEN is_post THEN 'POST'
         WHEN is_dot THEN 'DOT' ELSE getvariable('pcode')[pi] END AS StockCode,
    CASE WHEN NOT base THEN struct_extract(x, 'descr') WHEN is_post THEN 'POSTAGE'
         WHEN is_dot THEN 'DOTCOM POSTAGE' ELSE getvariable('pdesc')[pi] END AS Description,
    (CASE WHEN NOT base THEN struct_extract(x, 'qty')
          WHEN is_c THEN -(CASE WHEN q0 = 1 OR u2(key, j, 'full') < 0.7 THEN q0
                                ELSE 1 + floor(u2(key, j, 'part') * (q0 - 1)) END)
          ELSE q0 END)::BIGINT AS Quantity,
    {date} AS InvoiceDate,
    (CASE WHEN NOT base THEN struct_extract(x, 'price') WHEN is_post THEN {post_price}
          WHEN is_dot THEN round(100 + 1400 * pow(u2(ck, sl, 'dp'), 2), 2)
          WHEN ct > 0 AND u2(ck, sl, 'zero') < 0.0001 THEN 0.0
          WHEN ct = 0 THEN getvariable('pguest')[pi]
          WHEN q0 >= 48 THEN getvariable('pbulk')[pi]
          ELSE getvariable('pprice')[pi] END)::DOUBLE AS UnitPrice,
    cid AS CustomerID,
    country AS Country
FROM (
    SELECT *,
        (CASE WHEN is_post THEN 1 + floor(pow(uq, 3) * 5) WHEN is_dot THEN 1
              WHEN ct = 3 THEN {qty["w"]} WHEN ct = 0 THEN {qty["g"]}
              ELSE {qty["n"]} END)::BIGINT AS q0
    FROM (
        SELECT *, 1 + floor({N_PRODUCTS} * pow(u2(ck, sl, 'prod'), {POPULARITY_SKEW}))::INTEGER
                      AS pi,
               u2(ck, sl, 'qty') AS uq, pf AND sl = 1 AS is_post, df AND sl = 1 AS is_dot
        FROM (
            -- a line is an exact copy of the one before it, never of a copy
            SELECT *, CASE WHEN cl > 1 AND u2(ck, cl, 'dup') < {DUP_RATE}
                                AND u2(ck, cl - 1, 'dup') >= {DUP_RATE}
                           THEN cl - 1 ELSE cl END AS sl
            FROM (
                SELECT *, j <= nb AS base,
                       CASE WHEN is_c THEN 1 + (coff + j - 1) % greatest(pn, 1) ELSE j END
                           AS cl,
                       CASE WHEN j > nb THEN extra[j - nb] END AS x
                FROM (SELECT *, unnest(generate_series(1, nb + len(extra))) AS j FROM w.hdr)
            )
        )
    )
)"""


# --------------------------------------------------------------------------- output


def _transcode_in_place(path: Path, encoding: str, chunk: int = 1 << 24) -> None:
    """Re-encode a UTF-8 file in place, streaming; the target never needs more bytes.

    Latin-1 takes at most as many bytes per character as UTF-8, so the write position never
    overtakes the read position and one file (no second copy) suffices.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    read_pos = write_pos = 0
    with open(path, "r+b") as f:
        while True:
            f.seek(read_pos)
            data = f.read(chunk)
            read_pos += len(data)
            text = decoder.decode(data, final=not data)
            if text:
                out = text.encode(encoding)
                if out != data or write_pos != read_pos - len(data):
                    f.seek(write_pos)
                    f.write(out)
                write_pos += len(out)
            if not data:
                break
        f.truncate(write_pos)


def _gzip_file(src: Path, dest: Path, encoding: str) -> None:
    """Gzip ``src`` (UTF-8) into ``dest`` in ``encoding``; mtime 0 keeps output reproducible."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(src, "rb") as fin, open(dest, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
            while data := fin.read(1 << 24):
                gz.write(decoder.decode(data).encode(encoding))
            gz.write(decoder.decode(b"", final=True).encode(encoding))


def _normalise_encoding(encoding: str) -> str:
    name = codecs.lookup(encoding).name
    if name not in ("iso8859-1", "utf-8"):
        raise ValueError(f"encoding must be latin-1 or utf-8, not {encoding!r}")
    return name


def _run(
    rows: int,
    seed: int,
    output: str | Path,
    fmt: str | None,
    encoding: str,
    start: str,
    end: str,
    threads: int | None = None,
) -> int:
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise ValueError(f"rows must be a non-negative integer, not {rows!r}")
    if not -(2**63) <= int(seed) < 2**63:
        raise ValueError("seed must fit in 64 bits")
    seed = int(seed)
    start_d, end_d = dt.date.fromisoformat(str(start)), dt.date.fromisoformat(str(end))
    if end_d < start_d:
        raise ValueError(f"end {end_d} is before start {start_d}")
    output = Path(output)
    fmt = (fmt or infer_format(output)).lower()
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
    encoding = _normalise_encoding(encoding)
    gzipped = fmt == "csv" and output.name.lower().endswith(".gz")
    output.parent.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="generate-", dir=output.parent) as tmp:
        config = {
            "temp_directory": str(Path(tmp) / "spill"),
            "preserve_insertion_order": True,
            # bounded: the planning tables spill to disk rather than grow with --rows
            "memory_limit": MEMORY_LIMIT,
        }
        if threads:
            config["threads"] = threads
        con = duckdb.connect(config=config)
        try:
            # The invoice headers live in a file with small row groups: the ordered COPY
            # buffers whole row groups' worth of lines, so small ones keep memory flat.
            hdr_db = str(Path(tmp) / "headers.duckdb").replace("'", "''")
            con.execute(f"ATTACH '{hdr_db}' AS w (ROW_GROUP_SIZE {HEADER_ROW_GROUP})")
            con.execute(_setup_sql(seed, start_d, end_d))
            n_days = _scalar(con, "SELECT count(*) FROM days")
            if n_days == 0:
                raise ValueError(f"no trading day between {start_d} and {end_d}")
            con.register("catalogue", build_catalogue(seed))
            for var, col in [("pcode", "code"), ("pdesc", "description"), ("pprice", "price"),
                             ("pbulk", "bulk_price"), ("pguest", "guest_price")]:  # fmt: skip
                list_sql = f"SELECT list({col} ORDER BY idx) FROM catalogue"
                con.execute(f"SET VARIABLE {var} = ({list_sql})")
            plan = _make_plan(rows, seed)
            if plan.budget < 0:
                raise RuntimeError("too few rows for the guaranteed special lines")
            scale = 1.06
            for _ in range(60):
                planned = _plan_pool(con, plan, scale)
                if planned is None:
                    break
                # too small: grow by the shortfall (deterministic, depends only on the inputs)
                scale *= max(1.03, 1.03 * plan.budget / max(planned, 1))
            else:
                raise RuntimeError(f"could not plan {rows} rows")
            _build_headers(con, plan)
            for table in ("cust", "cinv", "ginv", "kept", "sales", "hostc", "items", "items2",
                          "extras", "canc", "solo"):  # fmt: skip
                con.execute(f"DROP TABLE {table}")  # free their memory for the COPY
            staged = Path(tmp) / ("lines.parquet" if fmt == "parquet" else "lines.csv")
            options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
            target = str(staged).replace("'", "''")
            con.execute(f"COPY ({_lines_sql(fmt)}) TO '{target}' ({options})")
            written = _scalar(con, "SELECT coalesce(sum(nb + len(extra)), 0)::BIGINT FROM w.hdr")
        finally:
            con.close()
        if written != rows:
            raise RuntimeError(f"planned {written} rows instead of {rows}")
        if gzipped:
            _gzip_file(staged, Path(tmp) / "lines.csv.gz", encoding)
            staged = Path(tmp) / "lines.csv.gz"
        elif fmt == "csv" and encoding != "utf-8":
            _transcode_in_place(staged, encoding)
        # the staging folder sits next to the output, so this is an atomic rename
        os.replace(staged, output)
    return int(written)


def generate(
    rows: int,
    seed: int,
    output: str | Path,
    fmt: str | None = None,
    encoding: str = "latin-1",
    start: str = "2010-12-01",
    end: str = "2011-12-09",
) -> int:
    """Write ``rows`` synthetic invoice lines to ``output`` and return the rows written.

    ``fmt`` is ``csv`` or ``parquet`` (default: from the suffix); ``encoding`` applies to
    CSV only. The same (rows, seed, start, end) always gives a byte-identical file.
    """
    return _run(rows, seed, output, fmt, encoding, start, end)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="python -m customer_segmentation.generate",
        description="Write deterministic synthetic invoice lines shaped like UCI Online Retail.",
    )
    parser.add_argument("--rows", type=int, required=True, help="data rows to write, exactly")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output", required=True, help=".csv, .csv.gz or .parquet")
    parser.add_argument("--format", choices=FORMATS, help="default: from the output suffix")
    parser.add_argument("--encoding", default="latin-1", help="latin-1 (default) or utf-8")
    parser.add_argument("--start", default="2010-12-01", help="first day, YYYY-MM-DD")
    parser.add_argument("--end", default="2011-12-09", help="last day, YYYY-MM-DD")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    try:
        written = generate(args.rows, args.seed, args.output, args.format, args.encoding,
                           args.start, args.end)  # fmt: skip
    except ValueError as exc:
        parser.error(str(exc))
    print(f"wrote {written} rows to {args.output} in {time.perf_counter() - began:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
