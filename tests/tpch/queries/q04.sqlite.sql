-- TPC-H Q4, order priority checking. Validation parameter: DATE = 1993-07-01.
-- SQLite variant: SQLite has no DATE literals and no INTERVAL arithmetic; dates are ISO
-- text (which orders correctly as text) and date(d, '+N months') adds an interval.
select
    o_orderpriority,
    count(*) as order_count
from
    orders
where
    o_orderdate >= '1993-07-01'
    and o_orderdate < date('1993-07-01', '+3 months')
    and exists (
        select
            *
        from
            lineitem
        where
            l_orderkey = o_orderkey
            and l_commitdate < l_receiptdate
    )
group by
    o_orderpriority
order by
    o_orderpriority
