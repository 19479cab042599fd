-- TPC-H Q13, customer distribution. Validation parameters: WORD1 = special,
-- WORD2 = requests.
-- SQLite variant: SQLite has no column list on a derived table's alias (AS c_orders
-- (c_custkey, c_count)), so the count is named inside the subquery. That moves a name from
-- one clause into another, a restructuring rather than a token rewrite, so it stays here.
select
    c_count,
    count(*) as custdist
from
    (
        select
            c_custkey,
            count(o_orderkey) as c_count
        from
            customer
            left outer join orders on c_custkey = o_custkey
            and o_comment not like '%special%requests%'
        group by
            c_custkey
    ) as c_orders
group by
    c_count
order by
    custdist desc,
    c_count desc
