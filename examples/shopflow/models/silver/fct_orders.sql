-- One row per order line: orders joined to their items, products and payments, net of refunds.
-- Refunds are allocated to an order's lines in proportion to each line's amount.
with items as (
    select
        *,
        row_number() over (partition by order_item_id order by _ingested_at desc) as copy_rank
    from {{ source('shop_app', 'order_items') }}
),
products as (
    select product_id, category, row_number() over (partition by product_id order by updated_at desc) as version_rank
    from {{ source('shop_app', 'products') }}
),
payments as (
    select
        *,
        row_number() over (partition by payment_id order by updated_at desc) as version_rank
    from {{ source('shop_app', 'payments') }}
),
order_payments as (
    select
        order_id,
        sum(case when kind = 'payment' then amount else 0 end) as paid,
        sum(case when kind = 'refund' then amount else 0 end) as refunded
    from payments
    where version_rank = 1
    group by order_id
),
lines as (
    select
        o.order_id,
        i.order_item_id,
        o.customer_id,
        o.status,
        o.order_ts,
        o.order_date,
        o.is_cancelled_or_abandoned,
        i.product_id,
        p.category,
        i.quantity,
        i.unit_price,
        round(i.quantity * i.unit_price, 2) as line_amount,
        sum(i.quantity * i.unit_price) over (partition by o.order_id) as order_items_total,
        coalesce(op.paid, 0) as order_paid,
        coalesce(op.refunded, 0) as order_refunded
    from {{ ref('stg_orders') }} o
    join items i on i.order_id = o.order_id and i.copy_rank = 1
    left join products p on p.product_id = i.product_id and p.version_rank = 1
    left join order_payments op on op.order_id = o.order_id
)
select
    order_id,
    order_item_id,
    customer_id,
    status,
    order_ts,
    order_date,
    is_cancelled_or_abandoned,
    product_id,
    category,
    quantity,
    unit_price,
    line_amount,
    case when order_items_total > 0 then order_refunded * (line_amount / order_items_total) else 0 end as refund_amount,
    line_amount - case when order_items_total > 0 then order_refunded * (line_amount / order_items_total) else 0 end as net_amount,
    order_paid > 0 as is_paid
from lines
