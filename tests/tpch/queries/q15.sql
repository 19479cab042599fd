-- TPC-H Q15, top supplier. Validation parameter: DATE = 1996-01-01.
-- The spec's text creates and drops a view revenue0; this is its approved variant with the
-- view as a WITH clause (spec appendix B), one statement that two concurrent workers can run
-- on a shared server without fighting over a view name.
with revenue0 (supplier_no, total_revenue) as (
    select
        l_suppkey,
        sum(l_extendedprice * (1 - l_discount))
    from
        lineitem
    where
        l_shipdate >= date '1996-01-01'
        and l_shipdate < date '1996-01-01' + interval '3' month
    group by
        l_suppkey
)
select
    s_suppkey,
    s_name,
    s_address,
    s_phone,
    total_revenue
from
    supplier,
    revenue0
where
    s_suppkey = supplier_no
    and total_revenue = (
        select
            max(total_revenue)
        from
            revenue0
    )
order by
    s_suppkey
