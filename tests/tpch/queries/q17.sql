-- TPC-H Q17, small-quantity-order revenue. Parameters: BRAND = Brand#23 (the validation
-- value), CONTAINER = SM PACK (not the validation value, MED BOX).
-- Why: at SF 0.01, the suite's default, none of the 2,000 parts is a Brand#23 in a MED BOX,
-- so the spec's validation parameters answer only NULL and the comparison checks nothing.
-- The spec lets qgen pick any BRAND Brand#MN (M, N in 1..5) and any CONTAINER of its list
-- (SM, LG, MED, JUMBO, WRAP x CASE, BOX, BAG, JAR, PKG, PACK, CAN, DRUM). BRAND keeps its
-- validation value; CONTAINER is the one with the most qualifying lineitems for Brand#23 at
-- SF 0.01 (tpchgen-cli data): SM PACK, 6 parts, all 6 with qualifying lines, 17 lines in
-- all, avg_yearly 8656.39 on DuckDB and SQLite alike. Fixed here, so runs are repeatable;
-- at larger scale factors it has more data still (docs/tpch.md).
select
    sum(l_extendedprice) / 7.0 as avg_yearly
from
    lineitem,
    part
where
    p_partkey = l_partkey
    and p_brand = 'Brand#23'
    and p_container = 'SM PACK'
    and l_quantity < (
        select
            0.2 * avg(l_quantity)
        from
            lineitem
        where
            l_partkey = p_partkey
    )
