-- TPC-H Q6, forecasting revenue change. Validation parameters: DATE = 1994-01-01,
-- DISCOUNT = 0.06, QUANTITY = 24.
-- SQLite variant: the discount bounds are written out. SQLite computes 0.06 + 0.01 in binary
-- floating point as 0.06999999999999999, which drops every line with a discount of 0.07
-- (DuckDB computes the spec's DECIMAL arithmetic exactly); no dialect rewrite can know that.
-- The dates are left to the translation (dialect.py), as in the spec's text.
-- test_wrong_variant_is_caught runs the translated spec's text on SQLite to prove the
-- comparison sees that difference.
select
    sum(l_extendedprice * l_discount) as revenue
from
    lineitem
where
    l_shipdate >= date '1994-01-01'
    and l_shipdate < date '1994-01-01' + interval '1' year
    and l_discount between 0.05 and 0.07
    and l_quantity < 24
