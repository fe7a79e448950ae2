-- The finance dashboard: sales per day and product category, net of refunds.
-- Cancelled and abandoned orders are not sales.
select
    order_date,
    coalesce(category, 'unknown') as category,
    count(distinct order_id) as orders,
    sum(quantity) as units,
    round(sum(line_amount), 2) as gross_revenue,
    round(sum(refund_amount), 2) as refunds,
    round(sum(net_amount), 2) as net_revenue
from {{ ref('fct_orders') }}
where not is_cancelled_or_abandoned
group by order_date, coalesce(category, 'unknown')
