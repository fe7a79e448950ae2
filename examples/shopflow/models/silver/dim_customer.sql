-- One row per customer with lifetime order figures.
with order_totals as (
    select
        customer_id,
        min(order_ts) as first_order_at,
        max(order_ts) as last_order_at,
        count(distinct order_id) as lifetime_orders,
        sum(net_amount) as lifetime_net_revenue
    from {{ ref('fct_orders') }}
    where not is_cancelled_or_abandoned
    group by customer_id
)
select
    c.customer_id,
    c.email_hash,
    c.country,
    c.acquisition_channel,
    c.segment,
    c.created_at,
    t.first_order_at,
    t.last_order_at,
    coalesce(t.lifetime_orders, 0) as lifetime_orders,
    coalesce(t.lifetime_net_revenue, 0) as lifetime_net_revenue
from {{ ref('stg_customers') }} c
left join order_totals t on t.customer_id = c.customer_id
