-- TPC-H Q10, returned item reporting. Validation parameter: DATE = 1993-10-01.
-- The spec returns the first 20 rows.
-- SQLite variant: SQLite has no DATE literals and no INTERVAL arithmetic; dates are ISO
-- text (which orders correctly as text) and date(d, '+N months') adds an interval.
select
    c_custkey,
    c_name,
    sum(l_extendedprice * (1 - l_discount)) as revenue,
    c_acctbal,
    n_name,
    c_address,
    c_phone,
    c_comment
from
    customer,
    orders,
    lineitem,
    nation
where
    c_custkey = o_custkey
    and l_orderkey = o_orderkey
    and o_orderdate >= '1993-10-01'
    and o_orderdate < date('1993-10-01', '+3 months')
    and l_returnflag = 'R'
    and c_nationkey = n_nationkey
group by
    c_custkey,
    c_name,
    c_acctbal,
    c_phone,
    n_name,
    c_address,
    c_comment
order by
    revenue desc
limit 20
