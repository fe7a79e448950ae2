-- Revenue per month and acquisition channel.
select
    date_trunc('month', f.order_ts) as month,
    coalesce(c.acquisition_channel, 'unknown') as acquisition_channel,
    count(distinct f.order_id) as orders,
    count(distinct f.customer_id) as customers,
    round(sum(f.line_amount), 2) as gross_revenue,
    round(sum(f.refund_amount), 2) as refunds,
    round(sum(f.net_amount), 2) as net_revenue
from {{ ref('fct_orders') }} f
left join {{ ref('stg_customers') }} c on c.customer_id = f.customer_id
where not f.is_cancelled_or_abandoned
group by date_trunc('month', f.order_ts), coalesce(c.acquisition_channel, 'unknown')
